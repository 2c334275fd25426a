"""IPython kernel extension: when a cell fails on the table catalog, say what is wrong under Spark's own error.

- The catalog cannot be reached: Spark raises the Hive client's error (`Unable to instantiate
  ...SessionHiveMetaStoreClient`, or the metastore's `MetaException` when its database is gone), which names a
  class, not the service: the hint names the metastore and how to check it.
- A table whose files are gone from the store (deleted outside Spark): Delta says `DELTA_TABLE_NOT_FOUND ... doesn't
  exist` while `SHOW TABLES` lists it: the hint gives the location the catalog has and the two ways out.
Other errors are shown unchanged.
"""

from __future__ import annotations

import os
import re

# what Spark's Hive client and the metastore say when one of them (or the database behind it) is not there
UNREACHABLE = re.compile(
    r"SessionHiveMetaStoreClient|Could not connect to meta store|MetaException\(message:(The connection attempt failed"
    r"|Connection to \S+ refused|Unable to open a test connection)"
)


GONE = re.compile(r"\[DELTA_TABLE_NOT_FOUND\] Delta table `([^`]+)`\.`([^`]+)` doesn't exist")


def hint(message: str) -> str | None:
    """The hint for an error message, or None when the error is not one of the catalog's."""
    if gone := GONE.search(message):
        return _gone_hint(*gone.groups())
    if not UNREACHABLE.search(message):
        return None
    uri = os.environ.get("MLRT_METASTORE_URI") or _session_uri() or "the metastore"
    return (
        f"mlrt: the table catalog ({uri}) did not answer: the metastore or its database is down or unreachable. "
        "Check it with `docker compose ps metastore postgres` and `docker compose logs metastore` (compose) or "
        "`kubectl get pods -l app.kubernetes.io/component=metastore` and its logs (Kubernetes). Tables' data in the "
        "warehouse is not touched; run the cell again once the metastore is back (docs/catalog.md)."
    )


def _gone_hint(schema: str, table: str) -> str | None:
    """When the catalog still names the table: where it says the files are."""
    try:
        from pyspark.sql import SparkSession

        session = SparkSession.getActiveSession()
        jvm = session._jvm
        ident = jvm.org.apache.spark.sql.catalyst.TableIdentifier(table, jvm.scala.Option.apply(schema))
        location = session._jsparkSession.sessionState().catalog().getTableMetadata(ident).location().toString()
    except Exception:  # no classic session (Spark Connect), or the catalog does not name it: Delta's error stands
        return None
    return (
        f"mlrt: the catalog has {schema}.{table} at {location}, but its files are not there (deleted outside Spark?). "
        f"Restore them there, or `DROP TABLE {schema}.{table}` to remove the catalog's entry (docs/catalog.md)."
    )


def _session_uri() -> str | None:
    try:
        from pyspark.sql import SparkSession

        session = SparkSession.getActiveSession()
        return session.conf.get("spark.hadoop.hive.metastore.uris", None) if session else None
    except Exception:  # no JVM, a stopped session: the hint still helps without the URI
        return None


def _show(shell, etype, value, tb, tb_offset=None):
    shell.showtraceback((etype, value, tb), tb_offset=tb_offset)
    if text := hint(str(value)):
        print(text)


def load_ipython_extension(ipython) -> None:
    from py4j.protocol import Py4JJavaError
    from pyspark.errors import PySparkException

    ipython.set_custom_exc((PySparkException, Py4JJavaError), _show)
