"""Sessions share the compose cluster: two notebooks' sessions take all 8 cores (4 each), go idle, and a third
session (a Spark Connect client) still runs its job, because an idle notebook gives its executors back
(mlrt.idle_executors, here after 5 s); the first notebook's next cell gets executors again and runs. Two kernels of
the image (its IPython config, as JupyterLab starts them) run in the jupyter container, the Connect client on the
host (an IDE's place: the server's TLS-less port is published on 127.0.0.1 only).
Without the release the Connect job would wait for as long as the notebooks live."""

from __future__ import annotations

import json
import subprocess
import threading
import time

from scripts import dotenv
from tests.conftest import ROOT

LIMIT_S = 180
SCRIPT = r"""
import json, os, sys, threading, time
from jupyter_client.manager import KernelManager

os.environ["MLRT_SESSION_IDLE_RELEASE_S"] = "5"
JOB = "print('SUM', spark.sparkContext.parallelize(range(64), 8).map(lambda x: x * x).sum())"
result = {"timings": {}}


def kernel():
    manager = KernelManager(kernel_name="python3")
    manager.start_kernel(cwd="/tmp")
    client = manager.client()
    client.start_channels()
    client.wait_for_ready(timeout=120)
    return manager, client


def cell(client, code):
    out = []

    def hook(msg):
        content = msg["content"]
        if msg["msg_type"] == "stream":
            out.append(content["text"])
        elif msg["msg_type"] == "error":
            out.append("ERROR " + "\n".join(content["traceback"]))

    client.execute_interactive(code, timeout=LIMIT, output_hook=hook)
    return "".join(out)


def timed(name, work):
    started = time.monotonic()
    done = []
    thread = threading.Thread(target=lambda: done.append(work()), daemon=True)
    thread.start()
    thread.join(LIMIT)
    result["timings"][name] = round(time.monotonic() - started, 1)
    result[name] = done[0] if done else f"still waiting after {LIMIT} s"
    if not done:
        print(json.dumps(result), flush=True)
        os._exit(3)


kernels = {}
for name in ("a", "b"):
    kernels[name] = kernel()
    session = "from pyspark.sql import SparkSession\n"
    session += f"spark = SparkSession.builder.appName('mlrt-idle-{name}').getOrCreate()"
    timed(name, lambda: cell(kernels[name][1], session + "\n" + JOB))


print(json.dumps({"phase": "idle", **result}), flush=True)
sys.stdin.readline()  # the test ran the third session's job meanwhile
timed("a_again", lambda: cell(kernels["a"][1], JOB))
print(json.dumps(result), flush=True)
for manager, client in kernels.values():
    client.stop_channels()
    manager.shutdown_kernel(now=True)
"""


def remote_job(url: str) -> str:
    from pyspark.sql import SparkSession

    remote = SparkSession.builder.remote(url).create()
    try:
        return str(remote.range(0, 1000, numPartitions=4).selectExpr("sum(id) AS s").collect()[0]["s"])
    finally:
        remote.stop()


def test_idle_notebooks_give_their_executors_back_so_a_third_session_runs():
    """The notebooks' kernels run in the jupyter container; the third session is a Spark Connect client on the host
    (as an IDE's), run while they idle."""
    token = dotenv.read(dotenv.ENV_FILE)[1]["SPARK_CONNECT_TOKEN"]
    command = ["docker", "compose", "exec", "-T", "jupyter", "python", "-c", f"LIMIT = {LIMIT_S}\n" + SCRIPT]
    notebooks = subprocess.Popen(command, cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, text=True)  # fmt: skip
    try:
        idle = json.loads(next(line for line in notebooks.stdout if line.startswith("{")))
        assert idle.get("phase") == "idle", idle
        assert "SUM 85344" in idle["a"] and "SUM 85344" in idle["b"], idle
        done: list[str] = []
        started = time.monotonic()
        third = threading.Thread(target=lambda: done.append(remote_job(f"sc://localhost:15002/;token={token}")))
        third.daemon = True
        third.start()
        third.join(LIMIT_S)
        waited = time.monotonic() - started
        assert done == [str(sum(range(1000)))], f"the third session's job after {waited:.0f} s: {done or 'waiting'}"
        notebooks.stdin.write("go on\n")
        notebooks.stdin.flush()
        out, err = notebooks.communicate(timeout=2 * LIMIT_S)
    finally:
        notebooks.kill()
    result = json.loads([line for line in out.splitlines() if line.startswith("{")][-1])
    print(f"sessions a, b: {idle['timings']}; the third (Connect) job {waited:.0f} s; a again: {result['timings']}")
    assert "gave its 2 executors back while idle" in result["a_again"] and "SUM 85344" in result["a_again"], result
    assert notebooks.returncode == 0, err[-3000:]
