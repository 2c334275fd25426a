"""The deployment's table catalog: a Hive metastore (Spark's own Hive 2.3 jars) over PostgreSQL.

  python -m mlrt.metastore serve    write hive-site.xml (private), make sure the schema is there, then run the
                                     Thrift server on MLRT_METASTORE_PORT (9083) while the database answers (below)
  python -m mlrt.metastore schema   only the schema step: created once when the database has none (DataNucleus'
                                     SchemaTool over hive-metastore's package.jdo: every table, not only those a
                                     first session touches), its version recorded; otherwise left as it is, and the
                                     server's own check (hive.metastore.schema.verification) refuses a mismatch
  python -m mlrt.metastore alive    exit 0 when the Thrift port answers or the database does not (serve then waits
                                     for it), else 1: a liveness probe that restarts a hung server, not a waiting one

The server serves only while its database answers. Hive's metastore turns a database error in `get_database` into
"no such database" (ObjectStore.getDatabase), so with the database gone a long-running metastore would tell every
session that its schemas do not exist (SCHEMA_NOT_FOUND at once, measured) instead of failing. `serve` probes the
database's port every PROBE_S seconds; after MISSES failed probes it stops the Thrift server (sessions then fail at
once: the metastore does not answer, and the notebook kernels name it) and starts it again, schema checked, when
the database answers. At start it waits for the database the same way, saying so, instead of exiting (a restart
loop's back-off would delay the catalog's return by minutes); a wrong account or schema still ends it, named.

Environment:
  MLRT_METASTORE_DB_URL              jdbc:postgresql://HOST:5432/DATABASE
  MLRT_METASTORE_DB_CREDENTIALS_DIR  a directory holding username and password (files: never the environment or
                                     a command line)
  MLRT_WAREHOUSE_DIR                 where managed tables live (e.g. s3a://lake/warehouse); S3A reads the key pair
                                     the image's entrypoint wrote to ~/.aws from MLRT_S3_CREDENTIALS_DIR
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path
from xml.sax.saxutils import escape

SPARK_JARS = Path(os.environ.get("SPARK_HOME", "/opt/spark")) / "jars"
SCHEMA_VERSION = "2.3.0"  # what Hive 2.3.x's metastore checks against the VERSION table
CONF_DIR = Path.home() / ".mlrt-metastore"


class MetastoreError(Exception):
    """A problem the operator has to fix; the message names the fix."""


def setting(name: str, pattern: str = r".+", example: str = "") -> str:
    value = os.environ.get(name, "")
    if not re.fullmatch(pattern, value):
        raise MetastoreError(f"{name}={value!r} is not set or not valid{f'; e.g. {example}' if example else ''}")
    return value


def credentials() -> tuple[str, str]:
    directory = Path(setting("MLRT_METASTORE_DB_CREDENTIALS_DIR"))
    values = []
    for name in ("username", "password"):
        path = directory / name
        value = path.read_text().strip() if path.is_file() else ""
        if not value:
            raise MetastoreError(f"{path} is missing or empty: the metastore's database account (username, password)")
        values.append(value)
    return values[0], values[1]


def db_url() -> str:
    return setting(
        "MLRT_METASTORE_DB_URL", r"jdbc:postgresql://[^/\s]+/\w+(\?\S*)?", "jdbc:postgresql://postgres:5432/metastore"
    )


def properties() -> dict[str, str]:
    url = db_url()
    user, password = credentials()
    return {
        "javax.jdo.option.ConnectionURL": with_timeouts(url),
        "javax.jdo.option.ConnectionDriverName": "org.postgresql.Driver",
        "javax.jdo.option.ConnectionUserName": user,
        "javax.jdo.option.ConnectionPassword": password,
        # Hive's own DataNucleus settings (HiveConf's defaults): the schema's table and column names follow them
        # (without datanucleus1, SchemaTool names COLUMNS_V2's index column differently and every CREATE fails).
        "datanucleus.identifierFactory": "datanucleus1",
        "datanucleus.rdbms.useLegacyNativeValueStrategy": "true",
        "datanucleus.schema.autoCreateAll": "false",
        # Spark ships no BoneCP (Hive's default); DBCP fails a call in seconds when the database is gone (HikariCP
        # waited 30 s for a connection on every try: 3 minutes in all)
        "datanucleus.connectionPoolingType": "DBCP",
        "hive.metastore.schema.verification": "true",
        "hive.async.log.enabled": "false",  # else it wants LMAX disruptor, which Spark does not ship
        # The database down: a call fails after 2 tries 1 s apart (Hive's default is 10 tries 2 s apart), so the
        # session's DDL gets the error within seconds instead of hanging
        "hive.hmshandler.retry.attempts": "2",
        "hive.hmshandler.retry.interval": "1000ms",
        "hive.metastore.warehouse.dir": os.environ.get("MLRT_WAREHOUSE_DIR", "file:/tmp/warehouse"),
        # S3A for the warehouse (a managed table's directory is made and dropped here); the key pair is the one
        # the image's entrypoint wrote to ~/.aws (the SDK's default chain)
        **s3a(),
    }


def with_timeouts(url: str) -> str:
    """The JDBC URL with the driver's connect and login timeouts (seconds) unless it sets them: a database that is
    gone fails a call in seconds instead of the operating system's TCP timeout."""
    extra = [f"{k}={v}" for k, v in DB_TIMEOUTS.items() if f"{k}=" not in url]
    return url + ("&" if "?" in url else "?") + "&".join(extra) if extra else url


DB_TIMEOUTS = {"connectTimeout": "5", "loginTimeout": "10"}


def s3a() -> dict[str, str]:
    """The spark-defaults' spark.hadoop.fs.s3a.* (credentials through the SDK's default chain included), plus the
    deployment's endpoint and region."""
    out = {}
    defaults = Path(os.environ.get("SPARK_DEFAULTS_FILE") or "/opt/mlrt/conf/spark-defaults.conf")
    if defaults.is_file():
        for line in defaults.read_text().splitlines():
            if line.startswith("spark.hadoop.fs.s3a."):
                key, _, value = line.partition(" ")
                out[key.removeprefix("spark.hadoop.")] = value.strip()
    out["fs.s3a.endpoint.region"] = os.environ.get("MLRT_S3_REGION", "us-east-1")
    if endpoint := os.environ.get("MLRT_S3_ENDPOINT"):
        out |= {"fs.s3a.endpoint": endpoint, "fs.s3a.path.style.access": "true"}
    return out


def private_file(path: Path, text: str) -> Path:
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(text)
    return path


def hive_site(props: dict[str, str]) -> Path:
    body = "".join(f"<property><name>{escape(k)}</name><value>{escape(v)}</value></property>" for k, v in props.items())
    # Hive looks for hive-log4j2.properties on the classpath (its own default logs to /tmp/<user>/hive.log): the
    # container's log gets the metastore's log instead
    private_file(CONF_DIR / "hive-log4j2.properties", LOG4J2)
    return private_file(CONF_DIR / "hive-site.xml", f"<configuration>{body}</configuration>\n")


LOG4J2 = """status = WARN
appender.console.type = Console
appender.console.name = console
appender.console.target = SYSTEM_ERR
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = %d{yy/MM/dd HH:mm:ss} %p %c{1}: %m%n
rootLogger.level = INFO
rootLogger.appenderRef.console.ref = console
logger.datanucleus.name = DataNucleus
logger.datanucleus.level = WARN
logger.bonecp.name = com.jolbox.bonecp
logger.bonecp.level = WARN
"""


def classpath() -> str:
    return f"{CONF_DIR}:{SPARK_JARS}/*"


def java(*args: str, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(["java", "-Xmx256m", "-cp", classpath(), *args], capture_output=True, text=True, **kwargs)


def database(props: dict[str, str]):
    """A JDBC connection to the metastore's database (a JVM through py4j, with Spark's jars and the driver)."""
    from py4j.java_gateway import GatewayParameters, JavaGateway, launch_gateway

    port = launch_gateway(classpath=classpath(), die_on_exit=True, javaopts=["-Xmx128m"])
    jvm = JavaGateway(gateway_parameters=GatewayParameters(port=port, auto_convert=True)).jvm
    try:
        return jvm.java.sql.DriverManager.getConnection(
            props["javax.jdo.option.ConnectionURL"],
            props["javax.jdo.option.ConnectionUserName"],
            props["javax.jdo.option.ConnectionPassword"],
        )
    except Exception as err:  # py4j's error carries the driver's message
        reason = str(err).split("\n")[1] if "\n" in str(err) else str(err)
        reason = reason.strip().lstrip(": ")
        raise MetastoreError(
            f"cannot reach the metastore's database at {props['javax.jdo.option.ConnectionURL']}: {reason.strip()}; "
            f"check that it runs and the account in MLRT_METASTORE_DB_CREDENTIALS_DIR"
        ) from None


def recorded_version(connection) -> str | None:
    tables = connection.getMetaData().getTables(None, None, "VERSION", None)
    if not tables.next():
        return None
    rows = connection.createStatement().executeQuery('SELECT "SCHEMA_VERSION" FROM "VERSION"')
    return rows.getString(1) if rows.next() else None


def schema(props: dict[str, str]) -> str:
    """Create the schema when the database has none; say what was done."""
    connection = database(props)
    try:
        found = recorded_version(connection)
        if found == SCHEMA_VERSION:
            return f"schema {found} present"
        if found is not None:
            raise MetastoreError(
                f"the metastore's database holds schema {found}, this metastore (Hive 2.3) needs {SCHEMA_VERSION}: "
                f"point MLRT_METASTORE_DB_URL at the database this deployment created, or restore it from its backup"
            )
        with tempfile.TemporaryDirectory() as tmp:
            work = Path(tmp)
            datanucleus = {k: v for k, v in props.items() if k.startswith(("javax.jdo", "datanucleus"))}
            datanucleus["datanucleus.schema.autoCreateAll"] = "true"  # SchemaTool's own run only
            settings = private_file(
                work / "datanucleus.properties", "".join(f"{k}={v}\n" for k, v in datanucleus.items())
            )
            with zipfile.ZipFile(next(SPARK_JARS.glob("hive-metastore-*.jar"))) as z:
                (work / "package.jdo").write_bytes(z.read("package.jdo"))
            done = java("org.datanucleus.store.schema.SchemaTool", "-create", "-api", "JDO", "-props", str(settings),
                        str(work / "package.jdo"), cwd=work, timeout=300)  # fmt: skip
        if done.returncode != 0 or "completed successfully" not in done.stdout:
            raise MetastoreError(f"creating the metastore schema failed: {_reason(done)}")
        insert = connection.prepareStatement(
            'INSERT INTO "VERSION" ("VER_ID", "SCHEMA_VERSION", "VERSION_COMMENT") VALUES (1, ?, ?)'
        )
        insert.setString(1, SCHEMA_VERSION)
        insert.setString(2, "created by mlrt.metastore")
        insert.executeUpdate()
        return f"schema {SCHEMA_VERSION} created"
    finally:
        connection.close()


def _reason(done: subprocess.CompletedProcess) -> str:
    lines = [line for line in (done.stdout + done.stderr).splitlines() if "Exception" in line or "ERROR" in line]
    return (lines[0] if lines else (done.stdout + done.stderr).strip()[-500:]).strip()


PROBE_S = 2.0  # how often the database's port is probed
MISSES = 2  # failed probes in a row that stop the Thrift server
# PostgreSQL's and its JDBC driver's words for a database that is not (yet, or any more) taking logins
TRANSIENT = re.compile(r"starting up|shutting down|Connection refused|connection attempt failed|timed out", re.I)


def log(message: str) -> None:
    print(f"mlrt-metastore: {message}", file=sys.stderr, flush=True)


def database_address(url: str) -> tuple[str, int]:
    match = re.match(r"jdbc:postgresql://([^/:?]+)(?::(\d+))?/", url)
    if not match:
        raise MetastoreError(f"cannot read host and port from {url}")
    return match.group(1), int(match.group(2) or 5432)


def answers(address: tuple[str, int]) -> bool:
    try:
        with socket.create_connection(address, timeout=PROBE_S):
            return True
    except OSError:
        return False


class Supervisor:
    """Runs `command` (the Thrift server) while `address` answers; see the module's docstring."""

    def __init__(self, command: list[str], address: tuple[str, int], check=lambda: None):
        self.command, self.address, self.check = command, address, check
        self.child: subprocess.Popen | None = None
        self.stopping = False

    def stop(self, *_) -> None:
        self.stopping = True
        self.end_child()

    def end_child(self) -> None:
        if self.child and self.child.poll() is None:
            self.child.terminate()
            try:
                self.child.wait(30)
            except subprocess.TimeoutExpired:
                self.child.kill()
                self.child.wait()

    def wait_for_database(self) -> None:
        waited = 0.0
        while not self.stopping and not answers(self.address):
            if waited % 30 < PROBE_S:
                log(f"waiting for the database at {self.address[0]}:{self.address[1]} (not answering)")
            time.sleep(PROBE_S)
            waited += PROBE_S

    def checked(self, within_s: float = 60) -> None:
        """The account and the schema, named when wrong (at once: a refused account or a schema of another version
        does not mend itself); a database that answers its port but not yet its logins (starting up, shutting down)
        gets within_s seconds."""
        deadline = time.monotonic() + within_s
        while True:
            try:
                return self.check()
            except MetastoreError as err:
                if not TRANSIENT.search(str(err)) or time.monotonic() > deadline or self.stopping:
                    raise
                time.sleep(PROBE_S)

    def run(self) -> int:
        while True:
            self.wait_for_database()
            if self.stopping:
                return 0
            self.checked()
            self.child = subprocess.Popen(self.command)
            misses = 0
            while self.child.poll() is None and not self.stopping and misses < MISSES:
                time.sleep(PROBE_S)
                misses = 0 if answers(self.address) else misses + 1
            if self.stopping:
                self.end_child()
                return 0
            if misses < MISSES:  # the server ended on its own
                return self.child.returncode
            log(
                f"the database at {self.address[0]}:{self.address[1]} stopped answering: the metastore stops serving "
                "until it answers again (sessions fail at once meanwhile, naming the metastore)"
            )
            self.end_child()


def schema_step() -> None:
    """`schema` in a child process, for `serve`: its JDBC connection's JVM (py4j) ends with it; in the long-running
    server each check (at start, after every database outage) would leave one behind (~150 MB each)."""
    done = subprocess.run([sys.executable, "-m", "mlrt.metastore", "schema"], capture_output=True, text=True)
    said = [line for line in done.stderr.splitlines() if line.startswith("mlrt-metastore: ")]
    if done.returncode:
        error = said[-1].removeprefix("mlrt-metastore: ").removeprefix("ERROR: ") if said else done.stderr[-2000:]
        raise MetastoreError(error)
    for line in said:
        print(line, file=sys.stderr, flush=True)


def alive(port: int, database: tuple[str, int]) -> bool:
    """`serve` is alive when its Thrift port answers, or when its database does not (it then waits for the database
    by design: restarting it would not bring the catalog back sooner, and a restart loop's back-off would delay it)."""
    return answers(("localhost", port)) or not answers(database)


def main() -> None:
    command = sys.argv[1] if len(sys.argv) > 1 else "serve"
    if command not in ("serve", "schema", "alive"):
        raise SystemExit(__doc__)
    try:
        port = setting("MLRT_METASTORE_PORT", r"\d+") if os.environ.get("MLRT_METASTORE_PORT") else "9083"
        if command == "alive":
            raise SystemExit(0 if alive(int(port), database_address(db_url())) else 1)
        props = properties()
        hive_site(props)
        if command == "schema":
            log(schema(props))
            return
        server = ["java", "-cp", classpath(), "org.apache.hadoop.hive.metastore.HiveMetaStore", "-p", port]
        supervisor = Supervisor(server, database_address(props["javax.jdo.option.ConnectionURL"]), schema_step)
        signal.signal(signal.SIGTERM, supervisor.stop)
        signal.signal(signal.SIGINT, supervisor.stop)
        raise SystemExit(supervisor.run())
    except MetastoreError as err:
        raise SystemExit(f"mlrt-metastore: ERROR: {err}") from None


if __name__ == "__main__":
    main()
