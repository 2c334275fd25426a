"""Nothing phones home: an ML example (Ray on Spark with MLflow) runs in the jupyter container, headless, while
every packet that leaves the compose network is recorded on its bridge by tcpdump (tests/cluster/conftest.py:
recorded_egress): a TCP connection opened, a UDP datagram sent (DNS queries to the host's resolver included:
Docker's embedded DNS forwards them from the container's own address, so a lookup of a telemetry host shows even
where the name does not resolve). The MLflow server, the Spark master and workers, the metastore and the object
store serve the run, so their calls are recorded too. Not one may leave: docs/security.md lists the switches
(MLflow, Ray, Hugging Face, pip) and how to opt back in. The getting-started notebook runs in the browser test,
under the same recording."""

from __future__ import annotations

import time
import uuid

from tests.cluster.conftest import compose, recorded_egress

NOTEBOOKS = ("13-ray-on-spark",)  # getting-started: the browser test runs it under the same recording


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
