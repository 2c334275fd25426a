"""The chart's catalog section (templates/catalog/): the Hive metastore every Spark session of the release shares,
over the bundled PostgreSQL or an external one, rendered offline."""

from __future__ import annotations

import pytest

from tooling import k8s

from .chart import by, conf, env_of, pod_specs, render, render_notes


def test_every_driver_shares_the_release_s_metastore_by_default():
    docs = render()
    spark_conf = conf(docs)
    # the one Spark configuration of the release: the notebook, the Connect server, helm test's pod and
    # submitted drivers (cluster mode gets the client's properties) all read it
    assert "spark.sql.catalogImplementation                  hive" in spark_conf
    assert "spark.hadoop.hive.metastore.uris                 thrift://mlrt-metastore:9083" in spark_conf
    assert "org.apache.spark.sql.delta.catalog.DeltaCatalog" in spark_conf  # Delta over the shared catalog
    metastore = by(docs, "Deployment", "mlrt-metastore")["spec"]["template"]["spec"]
    container = metastore["containers"][0]
    assert container["image"].startswith("mlrt/spark:")
    assert container["args"] == ["python", "-m", "mlrt.metastore", "serve"] and "command" not in container
    # a metastore waiting for its database is alive (not restarted into a back-off) but not ready (no endpoint)
    alive = {"command": ["python", "-m", "mlrt.metastore", "alive"]}
    assert container["livenessProbe"]["exec"] == alive and container["startupProbe"]["exec"] == alive
    assert container["readinessProbe"]["tcpSocket"] == {"port": "thrift"}
    env = env_of(metastore)
    assert env["MLRT_METASTORE_DB_URL"] == "jdbc:postgresql://mlrt-catalog-db:5432/metastore"
    assert env["MLRT_WAREHOUSE_DIR"] == "s3a://lake/warehouse"
    ports = by(docs, "Service", "mlrt-metastore")["spec"]["ports"]
    assert ports == [{"name": "thrift", "port": 9083, "targetPort": "thrift"}]


def test_the_bundled_database_keeps_its_claim_and_takes_its_account_as_files():
    docs = render()
    assert by(docs, "PersistentVolumeClaim", "mlrt-catalog-db")["metadata"]["annotations"] == {
        "helm.sh/resource-policy": "keep"
    }
    secret = by(docs, "Secret", "mlrt-catalog-db")
    assert set(secret["data"]) == {"username", "password"}
    specs = dict(pod_specs(docs))
    for name in ("Deployment/mlrt-catalog-db", "Deployment/mlrt-metastore"):
        spec = specs[name]
        mounted = [v for v in spec["volumes"] if v.get("secret", {}).get("secretName") == "mlrt-catalog-db"]
        assert mounted, f"{name} does not mount the account"
        # the password is never an environment variable
        assert not [e for e in spec["containers"][0].get("env", []) if "valueFrom" in e], name
    database = specs["Deployment/mlrt-catalog-db"]
    assert database["containers"][0]["image"].startswith("mlrt/postgres:")
    assert env_of(database)["MLRT_POSTGRES_PASSWORD_FILE"].startswith("/etc/mlrt/catalog-db/")
    # the server's socket directory is writable under a read-only root
    assert {"name": "socket", "mountPath": "/run/postgresql"} in database["containers"][0]["volumeMounts"]


def test_only_drivers_reach_the_metastore_and_only_the_metastore_reaches_its_database():
    docs = render()
    policies = {d["metadata"]["name"]: d["spec"] for d in docs if d["kind"] == "NetworkPolicy"}
    metastore = policies["mlrt-metastore"]
    assert metastore["ingress"] == [
        {
            "from": [{"podSelector": {"matchLabels": {
                "app.kubernetes.io/name": "mlrt", "app.kubernetes.io/instance": "mlrt", "mlrt.io/spark-role": "driver",
            }}}],
            "ports": [{"port": 9083}],
        }
    ]  # fmt: skip
    assert metastore["egress"][0]["to"][0]["podSelector"]["matchLabels"]["app.kubernetes.io/component"] == "catalog-db"
    database = policies["mlrt-catalog-db"]
    assert database["ingress"][0]["from"][0]["podSelector"]["matchLabels"]["app.kubernetes.io/component"] == "metastore"
    driver_egress = policies["mlrt-driver"]["egress"]
    assert any(
        rule["to"][0].get("podSelector", {}).get("matchLabels", {}).get("app.kubernetes.io/component") == "metastore"
        and rule["ports"] == [{"port": 9083}]
        for rule in driver_egress
    )


def test_an_external_database_with_an_existing_secret():
    docs = render(
        "catalog.database.url=jdbc:postgresql://db.example.org:6543/hms?sslmode=require",
        "catalog.database.existingSecret=hms-account",
        "catalog.database.egressCIDR=192.0.2.0/24",
    )
    assert not [d for d in docs if d["metadata"]["name"] == "mlrt-catalog-db"]
    metastore = by(docs, "Deployment", "mlrt-metastore")["spec"]["template"]["spec"]
    assert env_of(metastore)["MLRT_METASTORE_DB_URL"] == "jdbc:postgresql://db.example.org:6543/hms?sslmode=require"
    items = [{"key": "username", "path": "username"}, {"key": "password", "path": "password"}]
    assert {"name": "account", "secret": {"secretName": "hms-account", "items": items}} in metastore["volumes"]
    egress = by(docs, "NetworkPolicy", "mlrt-metastore")["spec"]["egress"]
    assert egress == [{"to": [{"ipBlock": {"cidr": "192.0.2.0/24"}}], "ports": [{"port": 6543}]}]


def test_catalog_off_leaves_each_session_its_own_catalog():
    docs = render("catalog.enabled=false")
    assert not [d for d in docs if "metastore" in d["metadata"]["name"] or "catalog" in d["metadata"]["name"]]
    assert "hive.metastore.uris" not in conf(docs) and "catalogImplementation" not in conf(docs)


@pytest.mark.parametrize(
    "sets, message",
    [
        (["catalog.database.url=jdbc:postgresql://db:5432/hms"], "set catalog.database.existingSecret"),
        (["catalog.database.url=mysql://db/hms"], "/catalog/database/url"),
        (["catalog.database.egressCIDR=everywhere"], "/catalog/database/egressCIDR"),
    ],
)
def test_bad_catalog_values_fail_naming_the_fix(sets, message):
    with pytest.raises(RuntimeError) as err:
        k8s.render(sets=sets)
    assert message in str(err.value), str(err.value)


def test_notes_name_the_catalog_and_its_kept_claim():
    notes = render_notes([])
    assert "thrift://x-mlrt-metastore:9083" in notes and "x-mlrt-catalog-db is kept by `helm uninstall`" in notes
    assert "Table catalog" not in render_notes(["catalog.enabled=false"])
