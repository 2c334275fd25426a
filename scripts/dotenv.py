"""Write .env for docker compose: the image tag from versions.env plus generated secrets.

JUPYTER_TOKEN, SPARK_AUTH_SECRET, the object store's key pair (MLRT_S3_ACCESS_KEY, MLRT_S3_SECRET_KEY), the
Spark Connect server's token (SPARK_CONNECT_TOKEN) and the MLflow server's admin account (MLFLOW_ADMIN_USERNAME,
"admin" unless set, and MLFLOW_ADMIN_PASSWORD) and the catalog database's account (MLRT_CATALOG_DB_USERNAME, "mlrt",
and MLRT_CATALOG_DB_PASSWORD) are generated once and kept on later runs (an existing value is never
replaced); MLRT_VERSION always follows versions.env. Other lines a user added are kept. MLRT_PIP_CA_BUNDLE, the CA
bundle pip trusts in the containers (docs/libraries.md), is written once as the one the image build uses
(MLRT_CA_BUNDLE, SSL_CERT_FILE, REQUESTS_CA_BUNDLE or PIP_CERT), when there is one; set it empty for none.

MLRT_ACCOUNTS_DIGEST (a sha256 of those accounts, rewritten on every run) labels each compose container: compose
hands secrets to a container when it creates it and does not compare their content, so without the label a
changed account (a new clone's .env, a rotated password) would meet containers still running with the old one.

  python -m scripts.dotenv            create or update .env
  python -m scripts.dotenv --url      also print the JupyterLab login URL
"""

from __future__ import annotations

import argparse
import hashlib
import os
import re
import secrets
from pathlib import Path

from tooling import versions
from tooling.images import CA_ENV_VARS

ENV_FILE = versions.ROOT / ".env"
# name -> bytes of randomness
GENERATED = {
    "JUPYTER_TOKEN": 24,
    "SPARK_AUTH_SECRET": 32,
    "MLRT_S3_ACCESS_KEY": 10,
    "MLRT_S3_SECRET_KEY": 20,
    "SPARK_CONNECT_TOKEN": 24,
    "MLFLOW_ADMIN_PASSWORD": 24,
    "MLRT_CATALOG_DB_PASSWORD": 24,
}
# name -> value written when missing
DEFAULTS = {"MLFLOW_ADMIN_USERNAME": "admin", "MLRT_CATALOG_DB_USERNAME": "mlrt"}
DIGEST = "MLRT_ACCOUNTS_DIGEST"
PIP_CA = "MLRT_PIP_CA_BUNDLE"
_LINE = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)=(.*)$")


def read(path: Path) -> tuple[list[str], dict[str, str]]:
    if not path.exists():
        return [], {}
    lines = path.read_text().splitlines()
    values = {}
    for line in lines:
        match = _LINE.match(line.strip())
        if match:
            values[match.group(1)] = match.group(2)
    return lines, values


def host_ca_bundle() -> str | None:
    """The CA bundle the image build trusts (tooling/images.py), as an absolute path, or None."""
    for var in CA_ENV_VARS:
        value = os.environ.get(var)
        if value and Path(value).is_file():
            return str(Path(value).resolve())
    return None


def update(path: Path = ENV_FILE) -> dict[str, str]:
    lines, values = read(path)
    wanted = {"MLRT_VERSION": versions.load()["MLRT_VERSION"]}
    for key, size in GENERATED.items():
        if not values.get(key):
            wanted[key] = secrets.token_hex(size)
    for key, value in DEFAULTS.items():
        if not values.get(key):
            wanted[key] = value
    if PIP_CA not in values and (ca := host_ca_bundle()):
        wanted[PIP_CA] = ca
    wanted[DIGEST] = accounts_digest({**values, **wanted})
    out = []
    for line in lines:
        match = _LINE.match(line.strip())
        if match and match.group(1) in wanted:
            out.append(f"{match.group(1)}={wanted.pop(match.group(1))}")
        else:
            out.append(line)
    out += [f"{key}={value}" for key, value in wanted.items()]
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write("\n".join(out) + "\n")
    os.chmod(path, 0o600)
    return read(path)[1]


def accounts_digest(values: dict[str, str]) -> str:
    """One digest of every generated secret and account name: it changes when any of them does."""
    accounts = "\n".join(f"{key}={values.get(key, '')}" for key in sorted([*GENERATED, *DEFAULTS]))
    return hashlib.sha256(accounts.encode()).hexdigest()[:16]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", action="store_true", help="print the JupyterLab login URL")
    args = parser.parse_args()
    values = update()
    if args.url:
        print(f"JupyterLab: http://127.0.0.1:8888/lab?token={values['JUPYTER_TOKEN']}")
        print("Spark UI, history, MLflow, master: JupyterLab's launcher (mlrt cluster), behind the same token")
        print("  direct: history http://127.0.0.1:18080  MLflow http://127.0.0.1:5000  master JSON :8080/json/")
        print(f"  MLflow's login: {values['MLFLOW_ADMIN_USERNAME']} / MLFLOW_ADMIN_PASSWORD in .env")
        print("Object store (S3): http://127.0.0.1:8333 (buckets lake, mlflow; key pair in .env)")
        print(f"Spark Connect: sc://localhost:15002/;token={values['SPARK_CONNECT_TOKEN']}")


if __name__ == "__main__":
    main()
