"""Store a secret for dbutils.secrets on the compose cluster (docs/dbutils.md).

  python -m scripts.secret SCOPE KEY        (make secret SCOPE=... KEY=...; the value on stdin, or asked for)
  python -m scripts.secret --delete SCOPE KEY

The value is read from stdin (typed without echo at a terminal), never from the command line or the environment,
and written as <scope>/<key> (mode 600, owned by the images' uid) into the cluster's `secrets` volume, which the
JupyterLab and jobs containers mount read-only at /opt/mlrt/secrets. On Kubernetes a scope is a Secret named in the
chart's `secretScopes` (`kubectl create secret generic <scope> --from-file=<key>=...`).
"""

from __future__ import annotations

import argparse
import getpass
import re
import subprocess
import sys

from tooling import versions

NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")
VOLUME = "mlrt_secrets"  # the compose project's (name: mlrt) volume `secrets`
WRITE = """
import os, sys
scope, key, delete = sys.argv[1], sys.argv[2], sys.argv[3] == "1"
folder = os.path.join("/opt/mlrt/secrets", scope)
path = os.path.join(folder, key)
if delete:
    if not os.path.exists(path):
        sys.exit(f"no secret {key!r} in scope {scope!r}")
    os.unlink(path)
    if not os.listdir(folder):
        os.rmdir(folder)
    sys.exit(0)
os.makedirs(folder, exist_ok=True)
os.chown("/opt/mlrt/secrets", 185, 185)
os.chmod("/opt/mlrt/secrets", 0o700)
os.chown(folder, 185, 185)
os.chmod(folder, 0o700)
fd = os.open(path + ".new", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
os.write(fd, sys.stdin.buffer.read())
os.close(fd)
os.chown(path + ".new", 185, 185)
os.replace(path + ".new", path)
"""


class BadInput(Exception):
    pass


def check_name(what: str, value: str) -> str:
    if not NAME.match(value or ""):
        raise BadInput(f"{what}={value!r}: use letters, digits, '_', '-' and '.' (not starting with '.' or '-')")
    return value


def volume_exists() -> bool:
    return subprocess.run(["docker", "volume", "inspect", VOLUME], capture_output=True).returncode == 0


def write(scope: str, key: str, value: bytes | None) -> None:
    if not volume_exists():
        raise BadInput(f"the compose cluster's volume {VOLUME} is not there; run `make up` first")
    image = f"mlrt/notebook:{versions.load()['MLRT_VERSION']}"
    mode = "0" if value is not None else "1"
    command = ["docker", "run", "--rm", "-i", "--user", "0", "--network", "none", "--entrypoint", "python",
               "-v", f"{VOLUME}:/opt/mlrt/secrets", image, "-c", WRITE, scope, key, mode]  # fmt: skip
    done = subprocess.run(command, input=value or b"", capture_output=True)
    if done.returncode:
        raise BadInput(done.stderr.decode(errors="replace").strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="make secret", description=__doc__.split("\n\n")[0])
    parser.add_argument("scope")
    parser.add_argument("key")
    parser.add_argument("--delete", action="store_true")
    args = parser.parse_args(argv)
    try:
        scope, key = check_name("SCOPE", args.scope), check_name("KEY", args.key)
        if args.delete:
            write(scope, key, None)
            print(f"secret: deleted {scope}/{key}", file=sys.stderr)
            return 0
        if sys.stdin.isatty():
            value = getpass.getpass(f"value of {scope}/{key}: ").encode()
        else:
            value = sys.stdin.buffer.read()
        if not value.strip():
            raise BadInput("the secret's value is empty; give it on stdin, e.g. `make secret ... < file`")
        write(scope, key, value.rstrip(b"\r\n"))
        print(f"secret: stored {scope}/{key} ({len(value.rstrip())} bytes); dbutils.secrets.get({scope!r}, {key!r})",
              file=sys.stderr)  # fmt: skip
        return 0
    except BadInput as error:
        print(f"make secret: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
