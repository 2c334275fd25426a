"""Sessions share the compose cluster: two notebooks' sessions take all 8 cores (4 each), go idle, and a third
session (a Spark Connect client) still runs its job, because an idle notebook gives its executors back
(mlrt.idle_executors, here after 5 s); the first notebook's next cell gets executors again and runs. Two kernels of
the image (its IPython config, as JupyterLab starts them) and the Connect client run in the jupyter container.
Without the release the Connect job would wait for as long as the notebooks live."""

from __future__ import annotations

import json
import time

from scripts import dotenv
from tests.cluster.conftest import compose

LIMIT_S = 180
SCRIPT = r"""
import json, os, threading, time
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


def remote_job():
    from pyspark.sql import SparkSession

    remote = SparkSession.builder.remote(CONNECT).create()
    try:
        return str(remote.range(0, 1000, numPartitions=4).selectExpr("sum(id) AS s").collect()[0]["s"])
    finally:
        remote.stop()


timed("connect", remote_job)
timed("a_again", lambda: cell(kernels["a"][1], JOB))
print(json.dumps(result), flush=True)
for manager, client in kernels.values():
    client.stop_channels()
    manager.shutdown_kernel(now=True)
"""


def test_idle_notebooks_give_their_executors_back_so_a_third_session_runs():
    token = dotenv.read(dotenv.ENV_FILE)[1]["SPARK_CONNECT_TOKEN"]
    prelude = f"LIMIT = {LIMIT_S}\nCONNECT = 'sc://spark-connect:15002/;token={token}'\n"
    started = time.monotonic()
    # the script (with the token) on stdin: no secret on a command line
    ran = compose("exec", "-T", "jupyter", "python", "-", stdin=prelude + SCRIPT, check=False, timeout=4 * LIMIT_S)
    lines = [line for line in ran.stdout.splitlines() if line.startswith("{")]
    assert lines, f"no result ({ran.returncode}):\n{ran.stdout[-3000:]}\n{ran.stderr[-3000:]}"
    result = json.loads(lines[-1])
    print(f"{time.monotonic() - started:.0f} s in all; each step: {result['timings']}")
    assert "SUM 85344" in result["a"] and "SUM 85344" in result["b"], result
    assert result["connect"] == str(sum(range(1000))), f"the third session's job: {result['connect']}"
    assert "gave its 2 executors back while idle" in result["a_again"] and "SUM 85344" in result["a_again"], result
    assert ran.returncode == 0, ran.stderr[-3000:]
