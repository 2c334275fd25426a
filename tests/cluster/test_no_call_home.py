"""Nothing phones home: the getting-started notebook and an ML example (Ray on Spark with MLflow) run in the
jupyter container, headless, while every packet that leaves the compose network is recorded on its bridge by
tcpdump: a TCP connection opened, a UDP datagram sent (DNS queries to the host's resolver included: Docker's
embedded DNS forwards them from the container's own address, so a lookup of a telemetry host shows even where
the name does not resolve). The MLflow server, the Spark master and workers, the metastore and the object store
serve those runs, so their calls are recorded too. Not one may leave: docs/security.md lists the switches
(MLflow, Ray, Hugging Face, pip) and how to opt back in."""

from __future__ import annotations

import json
import re
import shutil
import signal
import subprocess
import time
import uuid
from contextlib import contextmanager

import pytest

from tests.cluster.conftest import compose
from tests.conftest import ROOT

NOTEBOOKS = ("00-getting-started", "13-ray-on-spark")
# A new connection (SYN without ACK) or any UDP datagram, to an address outside the network.
CAPTURE = "ip and not dst net {subnet} and (udp or (tcp[tcpflags] & (tcp-syn|tcp-ack) == tcp-syn))"
PACKET = re.compile(r"IP (?P<src>\d+\.\d+\.\d+\.\d+)\.\d+ > (?P<dst>\d+\.\d+\.\d+\.\d+)\.(?P<port>\d+): (?P<rest>.*)")


def compose_network() -> tuple[str, str, dict[str, str]]:
    """The jupyter container's network: its bridge interface, its subnet and its members' names by address."""
    container = compose("ps", "-q", "jupyter").stdout.strip()
    networks = json.loads(subprocess.check_output(["docker", "inspect", "-f", "{{json .NetworkSettings.Networks}}",
                                                   container], text=True))  # fmt: skip
    (name,) = networks
    info = json.loads(subprocess.check_output(["docker", "network", "inspect", name], text=True))[0]
    bridge = info["Options"].get("com.docker.network.bridge.name") or f"br-{info['Id'][:12]}"
    members = {c["IPv4Address"].split("/")[0]: c["Name"] for c in info["Containers"].values()}
    return bridge, info["IPAM"]["Config"][0]["Subnet"], members


def outbound(lines: list[str], members: dict[str, str]) -> list[str]:
    """What tcpdump recorded, one line per packet: which container, to where, and what (a DNS question's name)."""
    found = []
    for line in lines:
        if m := PACKET.search(line):
            who = members.get(m["src"], m["src"])
            found.append(f"{who} -> {m['dst']}:{m['port']} {m['rest'][:120]}")
    return found


@contextmanager
def recorded_egress():
    """Record, while the block runs, what leaves the compose network; the list is filled when the block ends."""
    tcpdump = shutil.which("tcpdump")
    if tcpdump is None:
        pytest.fail("no tcpdump on this host: run `make test-host-tools` (installs Debian's) to record egress")
    bridge, subnet, members = compose_network()
    log = ROOT / ".cache" / "egress.txt"
    log.parent.mkdir(exist_ok=True)
    lines: list[str] = []
    with log.open("w") as out:
        proc = subprocess.Popen([tcpdump, "-l", "-n", "-i", bridge, CAPTURE.format(subnet=subnet)],
                                stdout=out, stderr=subprocess.PIPE, text=True)  # fmt: skip
        time.sleep(1)
        if proc.poll() is not None:
            pytest.fail(f"tcpdump on {bridge} did not start (it needs root): {proc.stderr.read()}")
        try:
            yield lines
        finally:
            proc.send_signal(signal.SIGINT)
            proc.wait(timeout=30)
    lines.extend(outbound(log.read_text().splitlines(), members))


def test_notebooks_make_no_call_beyond_the_cluster():
    """As a user runs them: `jupyter nbconvert --execute` in the container, so the kernels see the container's
    environment only (a kernel under pytest would not: MLflow and others stay quiet under PYTEST_CURRENT_TEST)."""
    out = f"/tmp/mlrt-no-call-home-{uuid.uuid4().hex[:8]}"
    with recorded_egress() as egress:
        for name in NOTEBOOKS:
            started = time.monotonic()
            ran = compose(
                "exec", "-T", "jupyter", "jupyter", "nbconvert", "--to", "notebook", "--execute",
                "--ExecutePreprocessor.timeout=600", "--output-dir", out,
                f"/opt/mlrt/examples/{name}.ipynb", check=False, timeout=900,
            )  # fmt: skip
            print(f"{name}: {time.monotonic() - started:.0f} s")
            assert ran.returncode == 0, ran.stdout[-3000:] + ran.stderr[-6000:]
    assert egress == [], "calls beyond the compose network while the notebooks ran:\n" + "\n".join(egress)
