"""Shared by the host-side checks of the running compose cluster."""

from __future__ import annotations

import json
import re
import shutil
import signal
import subprocess
import threading
import time
import uuid
from contextlib import contextmanager

import pytest
import requests

from scripts import dotenv
from tests.conftest import ROOT


def compose(*args: str, check: bool = True, timeout: int = 300) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["docker", "compose", *args], cwd=ROOT, capture_output=True, text=True, check=check, timeout=timeout
    )


def master_state() -> dict:
    """The Spark master's JSON state (workers, active applications), from its published UI port."""
    return requests.get("http://127.0.0.1:8080/json/", timeout=10).json()


def alive_workers() -> list[dict]:
    return [w for w in master_state()["workers"] if w["state"] == "ALIVE"]


MLFLOW = "http://127.0.0.1:5000"


def mlflow_account() -> tuple[str, str]:
    """The MLflow server's admin account (make up generates it in .env)."""
    values = dotenv.read(dotenv.ENV_FILE)[1]
    return values["MLFLOW_ADMIN_USERNAME"], values["MLFLOW_ADMIN_PASSWORD"]


@pytest.fixture(scope="module")
def token() -> str:
    return dotenv.read(dotenv.ENV_FILE)[1]["JUPYTER_TOKEN"]


def refused_driver(code: str, refusal: str, limit: int = 90) -> tuple[str, str]:
    """Run a driver (Python code that prints JOB-RAN once a job ran) in the jupyter container that the cluster
    must refuse, until `refusal` (a regular expression) shows in its log or `limit` seconds pass, then stop it.
    Spark's standalone client tries the master three times, 20 s apart, before it gives up: once the first
    refusal is logged the rest is waiting. Returns (stdout, stderr)."""
    marker = f"mlrt-refused-{uuid.uuid4().hex[:8]}"
    command = ["docker", "compose", "exec", "-T", "jupyter", "timeout", str(limit), "python", "-c", code, marker]
    proc = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    out: list[str] = []
    reader = threading.Thread(target=lambda: out.extend(proc.stdout), daemon=True)
    reader.start()
    err: list[str] = []
    for line in proc.stderr:
        err.append(line)
        if re.search(refusal, line):
            compose("exec", "-T", "jupyter", "pkill", "-f", marker, check=False)
            break
    proc.wait(timeout=limit + 60)
    err.extend(proc.stderr)
    reader.join(10)
    return "".join(out), "".join(err)


# --- what leaves the compose network (the no-call-home checks: test_no_call_home.py, test_browser.py) ------------

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
