"""The chart's Spark Connect component (templates/connect/): off by default; on, a driver Deployment whose token
comes from a kept Secret as a file (never an argument or an environment value), with its executors on demand."""

from __future__ import annotations

from .chart import by, env_of, render


def test_connect_is_off_by_default():
    docs = render()
    assert not [d for d in docs if d["metadata"]["name"].endswith("-connect")]


def test_connect_server_is_a_driver_with_its_token_from_a_secret_file():
    docs = render("connect.enabled=true")
    pod = by(docs, "Deployment", "mlrt-connect")["spec"]["template"]
    assert pod["metadata"]["labels"]["mlrt.io/spark-role"] == "driver"
    spec = pod["spec"]
    container = spec["containers"][0]
    assert container["image"].startswith("mlrt/ml:")
    assert container["args"][:3] == ["python", "-m", "mlrt.connect_server"]
    assert "--conf=spark.dynamicAllocation.enabled=true" in container["args"]
    assert "--conf=spark.kubernetes.executor.podNamePrefix=mlrt-connect" in container["args"]
    assert not any("token" in a.lower() for a in container["args"]), "the token must not be on the command line"
    env = env_of(spec)
    assert env["MLRT_CONNECT_TOKEN_FILE"] == "/etc/mlrt/connect/token"
    # Kubernetes would otherwise set MLRT_CONNECT_PORT=tcp://<ip>:15002 from the Service's name.
    assert spec["enableServiceLinks"] is False and env["MLRT_CONNECT_PORT"] == "15002"
    assert not any("TOKEN" in k for k in env if k != "MLRT_CONNECT_TOKEN_FILE")
    volume = next(v for v in spec["volumes"] if v["name"] == "connect-token")
    assert volume["secret"]["secretName"] == "mlrt-connect"
    secret = by(docs, "Secret", "mlrt-connect")
    assert secret["data"]["token"]
    service = by(docs, "Service", "mlrt-connect")
    assert service["spec"]["ports"][0]["port"] == 15002


def test_connect_uses_an_existing_secret_instead_of_generating_one():
    docs = render("connect.enabled=true", "connect.existingSecret=my-connect-token")
    assert not [d for d in docs if d["kind"] == "Secret" and d["metadata"]["name"] == "mlrt-connect"]
    spec = by(docs, "Deployment", "mlrt-connect")["spec"]["template"]["spec"]
    volume = next(v for v in spec["volumes"] if v["name"] == "connect-token")
    assert volume["secret"]["secretName"] == "my-connect-token"


def test_connect_clients_are_the_ingress_peers_on_its_grpc_port():
    docs = render("connect.enabled=true")
    (rule,) = by(docs, "NetworkPolicy", "mlrt-connect")["spec"]["ingress"]
    assert rule["ports"] == [{"port": 15002}] and rule["from"] == [{"podSelector": {}}]
