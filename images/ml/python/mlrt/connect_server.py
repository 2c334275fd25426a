"""Run a Spark Connect server (the Databricks Connect equivalent) that only clients with its token may use.

  python -m mlrt.connect_server [spark-submit options ...]

A long-running driver of the cluster the image's Spark conf names (spark.master): its executors run where the
notebooks' do, with the same Python environment. Remote clients connect with
`sc://<host>:15002/;token=<token>` (pyspark-client or pyspark[connect] at the cluster's Spark version).

The token: MLRT_CONNECT_TOKEN_FILE names a file holding it (a compose secret, a Kubernetes Secret's key). Spark's
own pre-shared-key interceptor checks every call against SPARK_CONNECT_AUTHENTICATE_TOKEN, which this module
sets from the file just before it execs spark-submit: never a command-line argument or a Spark property (the
Spark UI's Environment page lists those). A client without the token, or with another, gets UNAUTHENTICATED.

Spark's Python client sends a token only over TLS, or in the clear to `localhost` (gRPC local credentials):
reach the server through a port published on 127.0.0.1 or a `kubectl port-forward`, or put a TLS-terminating
proxy (an Ingress) in front of it.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

SERVER_CLASS = "org.apache.spark.sql.connect.service.SparkConnectServer"
DEFAULT_PORT = 15002


class ConfigError(SystemExit):
    def __init__(self, message: str):
        super().__init__(f"mlrt.connect_server: {message}")


def read_token(environ: dict[str, str]) -> str:
    name = environ.get("MLRT_CONNECT_TOKEN_FILE", "")
    if not name:
        raise ConfigError(
            "MLRT_CONNECT_TOKEN_FILE is not set: point it at a file holding the token clients must present "
            "(make up generates SPARK_CONNECT_TOKEN in .env; the chart keeps one in a Secret)"
        )
    try:
        token = Path(name).read_text().strip()
    except OSError as err:
        raise ConfigError(
            f"MLRT_CONNECT_TOKEN_FILE={name} cannot be read ({err.strerror}); mount the token there"
        ) from err
    if len(token) < 16:
        raise ConfigError(f"the token in {name} is {len(token)} characters; use at least 16 random characters")
    return token


def command(argv: list[str], environ: dict[str, str]) -> list[str]:
    port = environ.get("MLRT_CONNECT_PORT", str(DEFAULT_PORT))
    if not port.isdigit():
        raise ConfigError(f"MLRT_CONNECT_PORT={port} is not a port number")
    spark_home = environ.get("SPARK_HOME", "")
    submit = str(Path(spark_home) / "bin" / "spark-submit") if spark_home else "spark-submit"
    return [
        submit,
        "--class",
        SERVER_CLASS,
        "--name",
        environ.get("MLRT_CONNECT_APP_NAME", "Spark Connect server"),
        "--conf",
        f"spark.connect.grpc.binding.port={port}",
        *argv,
        "spark-internal",
    ]


def main(argv: list[str] | None = None) -> None:
    environ = dict(os.environ)
    token = read_token(environ)
    cmd = command(sys.argv[1:] if argv is None else argv, environ)
    environ["SPARK_CONNECT_AUTHENTICATE_TOKEN"] = token
    sys.stdout.flush()
    os.execvpe(cmd[0], cmd, environ)


if __name__ == "__main__":
    main()
