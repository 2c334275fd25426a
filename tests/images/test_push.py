"""`make push REGISTRY=...` against a real registry: CNCF Distribution's `registry` (built from Go modules,
REGISTRY_VERSION) on 127.0.0.1 with htpasswd logins, the small images (objectstore, postgres). Not logged in: a
clear refusal naming `docker login`. Logged in: every tag of each image is in the registry, by the digest the
local image has, and the command prints the chart's `--set image.registry=...`."""

from __future__ import annotations

import base64
import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import warnings

import pytest

from scripts import push
from tests.conftest import ROOT
from tooling import versions

SMALL = ["objectstore", "postgres"]
USER, PASSWORD = "mlrt", "push-test-password"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def api(port: int, path: str, method: str = "GET", headers: dict | None = None):
    auth = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/v2/{path}",
        method=method,
        headers={"Authorization": f"Basic {auth}", **(headers or {})},
    )
    return urllib.request.urlopen(request, timeout=30)


@pytest.fixture(scope="module")
def registry(tmp_path_factory):
    subprocess.run(["bash", str(ROOT / "tooling" / "install-go-tools.sh"), "registry"], check=True, timeout=1800)
    tmp = tmp_path_factory.mktemp("registry")
    port = free_port()
    # htpasswd takes bcrypt hashes only (Distribution reads $2a$/$2b$ alike): the C library's, through crypt
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # crypt leaves Python in 3.13; the host venv is 3.11
        import crypt

        hashed = crypt.crypt(PASSWORD, crypt.mksalt(crypt.METHOD_BLOWFISH))
    (tmp / "htpasswd").write_text(f"{USER}:{hashed}\n")
    (tmp / "config.yml").write_text(
        json.dumps(
            {
                "version": 0.1,
                "log": {"level": "warn"},
                "storage": {"filesystem": {"rootdirectory": str(tmp / "data")}},
                "http": {"addr": f"127.0.0.1:{port}"},
                "auth": {"htpasswd": {"realm": "mlrt-push-test", "path": str(tmp / "htpasswd")}},
            }
        )
    )
    proc = subprocess.Popen([str(versions.TOOLS_BIN / "registry"), "serve", str(tmp / "config.yml")],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)  # fmt: skip
    deadline = time.monotonic() + 30
    while True:
        try:
            api(port, "").close()
            break
        except (urllib.error.URLError, ConnectionError):
            assert proc.poll() is None and time.monotonic() < deadline, proc.stderr.read() if proc.poll() else "slow"
            time.sleep(0.3)
    docker_config = tmp / "docker"  # a client config of its own: not logged in, whatever this host's user is
    docker_config.mkdir()
    yield port, {**os.environ, "DOCKER_CONFIG": str(docker_config)}
    proc.terminate()
    proc.wait(timeout=30)
    target = f"127.0.0.1:{port}/team/mlrt/"
    names = subprocess.run(["docker", "image", "ls", "--format", "{{.Repository}}:{{.Tag}}"], capture_output=True,
                           text=True).stdout.split()  # fmt: skip
    pushed = [n for n in names if n.startswith(target)]
    if pushed:
        subprocess.run(["docker", "image", "rm", *pushed], capture_output=True)


def make_push(registry: str, env: dict, *names: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "scripts.push", registry, *names], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=900)  # fmt: skip


def test_push_needs_a_login_then_puts_every_tag_in_the_registry(registry):
    port, env = registry
    where = f"127.0.0.1:{port}/team"
    refused = make_push(where, env, *SMALL)
    assert refused.returncode == 2, refused.stderr
    assert "refused the push" in refused.stderr and f"run `docker login 127.0.0.1:{port}`" in refused.stderr

    login = subprocess.run(["docker", "login", f"127.0.0.1:{port}", "-u", USER, "--password-stdin"], input=PASSWORD,
                           env=env, capture_output=True, text=True, timeout=60)  # fmt: skip
    assert login.returncode == 0, login.stderr
    started = time.monotonic()
    done = make_push(where, env, *SMALL)
    print(f"pushed {SMALL} in {time.monotonic() - started:.0f} s")
    assert done.returncode == 0, done.stderr[-3000:]
    assert f"--set image.registry={where}" in done.stdout

    version = versions.load()["MLRT_VERSION"]
    for name in SMALL:
        tags = push.local_tags(name, version)
        assert len(tags) >= 2, tags  # the version and the computed tag
        with api(port, f"team/mlrt/{name}/tags/list") as response:
            assert sorted(json.load(response)["tags"]) == tags
        inspect = ["docker", "image", "inspect", "--format", "{{json .RepoDigests}}", f"mlrt/{name}:{version}"]
        digests = json.loads(subprocess.run(inspect, capture_output=True, text=True).stdout)
        accept = "application/vnd.docker.distribution.manifest.v2+json, application/vnd.oci.image.manifest.v1+json"
        with api(port, f"team/mlrt/{name}/manifests/{version}", "HEAD", {"Accept": accept}) as response:
            served = response.headers["Docker-Content-Digest"]
        assert f"{where}/mlrt/{name}@{served}" in digests, (served, digests)


def test_push_names_a_bad_registry_or_image():
    assert "is not host[:port][/path]" in make_push("https://reg.example.com", dict(os.environ)).stderr
    assert "unknown image base" in make_push("reg.example.com/team", dict(os.environ), "base").stderr
