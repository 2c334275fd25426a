"""The release's NetworkPolicies (templates/networkpolicy.yaml and each component's networkpolicy.yaml): default deny,
every workload under it, Spark's and Ray on Spark's flows, the generated flows document."""

from __future__ import annotations

from tooling import k8s

from .chart import check_network_policies_default_deny_and_allow_spark


def test_network_policies_default_deny_and_allow_spark(docs):
    check_network_policies_default_deny_and_allow_spark(docs)


def test_every_workload_is_covered_by_the_default_deny(docs):
    for doc in docs:
        if doc["kind"] in {"Deployment", "StatefulSet"}:
            labels = doc["spec"]["template"]["metadata"]["labels"]
            assert labels["app.kubernetes.io/instance"] == k8s.RELEASE, doc["metadata"]["name"]


def test_ray_on_spark_opens_drivers_to_their_executors_only(docs):
    policy = next(d for d in docs if d["kind"] == "NetworkPolicy" and d["metadata"]["name"] == "mlrt-ray-on-spark")
    assert policy["spec"]["podSelector"]["matchLabels"]["mlrt.io/spark-role"] == "driver"
    (rule,) = policy["spec"]["ingress"]
    (peer,) = rule["from"]
    assert peer["podSelector"]["matchLabels"]["app.kubernetes.io/component"] == "executor" and "ports" not in rule
    off = k8s.render(sets=["networkPolicy.rayOnSpark=false"])
    assert "mlrt-ray-on-spark" not in off


def test_network_flows_doc_is_current():
    assert k8s.FLOWS_DOC.read_text() == k8s.flows_doc_text(), "run `make k8s-docs`"
