"""Today's Databricks ML stack on the cluster: Ray on Spark, Optuna trials through MLflow's MlflowSparkStudy,
LightGBM, DeepSpeed through DeepspeedTorchDistributor and a Hugging Face transformers model trained under
TorchDistributor; each with evidence that the work ran on >= 2 executor hosts, never on the driver."""

from __future__ import annotations

import os
import time
import uuid

import pytest

from conftest import DRIVER_HOST, MIN_EXECUTORS, busy_executors, ran_on_executors, registered_executors

# Ray on Spark runs on Spark's standalone, YARN and local masters only: ray.util.spark (2.60.0) refuses a k8s://
# master before it starts anything. On Kubernetes Ray has its own operator (KubeRay); the chart does not ship it.
RAY_NOT_ON_KUBERNETES = (
    "Ray on Spark does not support a Kubernetes master (ray.util.spark: standalone, local-cluster, YARN and local "
    "only); the refusal is tested instead"
)


def on_kubernetes(spark) -> bool:
    return spark.sparkContext.master.startswith("k8s://")


def test_ray_on_spark_fans_out_over_executors_and_gives_the_slots_back(spark):
    if on_kubernetes(spark):
        pytest.skip(RAY_NOT_ON_KUBERNETES)
    import ray
    from ray.util.spark import setup_ray_cluster, shutdown_ray_cluster

    executors = registered_executors(spark)
    cores = int(spark.sparkContext.getConf().get("spark.executor.cores", "2"))
    # One Ray worker node per executor: each takes all of its executor's cores.
    setup_ray_cluster(
        max_worker_nodes=len(executors), num_cpus_worker_node=cores, num_gpus_worker_node=0, num_cpus_head_node=0
    )
    try:
        ray.init(log_to_driver=False)
        nodes = [n for n in ray.nodes() if n["Alive"] and n["Resources"].get("CPU")]

        @ray.remote(num_cpus=1)
        def where(i):
            import socket
            import time

            time.sleep(0.5)
            return i * i, socket.gethostname()

        results = ray.get([where.remote(i) for i in range(4 * len(executors))])
    finally:
        ray.shutdown()
        shutdown_ray_cluster()
    hosts = {host for _, host in results}
    assert [r for r, _ in results] == [i * i for i in range(4 * len(executors))]
    assert len(nodes) >= MIN_EXECUTORS, f"Ray on Spark: worker nodes {[n['NodeManagerAddress'] for n in nodes]}"
    assert len(hosts) >= MIN_EXECUTORS and DRIVER_HOST not in hosts, f"Ray on Spark: tasks ran on {hosts}"
    # The background Spark job that held the Ray nodes goes (its tasks are killed, which takes a moment as each
    # Ray node exits): then every executor's slots are free and a job gets every executor again.
    deadline = time.monotonic() + 60
    while (busy := busy_executors(spark)) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert not busy, f"after shutdown_ray_cluster, executors still run tasks after 60 s: {busy}"
    with ran_on_executors(spark, "Spark after shutdown_ray_cluster"):
        assert spark.sparkContext.parallelize(range(1000), 8).map(lambda x: x * 2).sum() == 999000


def test_ray_on_spark_on_kubernetes_is_refused_at_once_with_the_reason(spark):
    """What a user who tries Ray on Spark on the chart's cluster sees: Ray's own refusal, before anything starts."""
    import time

    from ray.util.spark import setup_ray_cluster

    if not on_kubernetes(spark):
        pytest.skip("the cluster's master is not Kubernetes: Ray on Spark runs here (the fan-out test)")
    started = time.monotonic()
    with pytest.raises(RuntimeError, match="Ray on Spark only supports spark cluster in standalone mode"):
        setup_ray_cluster(max_worker_nodes=1, num_cpus_worker_node=1, num_gpus_worker_node=0)
    assert time.monotonic() - started < 30
    with ran_on_executors(spark, "Spark after the refused Ray cluster"):
        assert spark.sparkContext.parallelize(range(100), 4).sum() == 4950


def test_ray_on_spark_refuses_more_worker_nodes_than_the_cluster_has_at_once(spark):
    import time

    from mlrt.ray_on_spark import setup_ray_cluster

    cores = int(spark.sparkContext.getConf().get("spark.executor.cores", "2"))
    room = len(registered_executors(spark))
    started = time.monotonic()
    expected = rf"{room + 3} worker node\(s\) of {cores} CPU\(s\) each asked for.*room for {room}"
    with pytest.raises(ValueError, match=expected):
        setup_ray_cluster(max_worker_nodes=room + 3, num_cpus_worker_node=cores, num_gpus_worker_node=0)
    assert time.monotonic() - started < 30, "the answer took as long as Ray's own 120 s wait"


@pytest.mark.example("14-optuna-mlflow-spark-study")
def test_optuna_trials_run_on_executors_through_mlflow_spark_study(spark):
    import mlflow
    import optuna
    from mlflow.optuna.storage import MlflowStorage
    from mlflow.pyspark.optuna.study import MlflowSparkStudy
    from mlflow.tracking import MlflowClient

    experiment = mlflow.set_experiment(f"mlrt-smoke-optuna-{uuid.uuid4().hex[:8]}")

    def objective(trial):
        import socket

        x = trial.suggest_float("x", -10, 10)
        trial.set_user_attr("host", socket.gethostname())
        return (x - 2.0) ** 2

    storage = MlflowStorage(experiment_id=experiment.experiment_id)
    study = MlflowSparkStudy("mlrt-smoke", storage, sampler=optuna.samplers.TPESampler(seed=7))
    with ran_on_executors(spark, "Optuna MlflowSparkStudy") as evidence:
        study.optimize(objective, n_trials=24, n_jobs=4)
    trials = study.trials
    assert len(trials) == 24 and all(t.state.name == "COMPLETE" for t in trials)
    assert abs(study.best_params["x"] - 2.0) < 1.0, f"Optuna: best {study.best_params}, want x near 2"
    hosts = {t.user_attrs["host"] for t in trials}
    assert DRIVER_HOST not in hosts and DRIVER_HOST not in evidence.hosts, f"Optuna: trials ran on {hosts}"
    runs = MlflowClient().search_runs([experiment.experiment_id], max_results=100)
    assert len(runs) >= 24, f"Optuna: {len(runs)} runs recorded in the tracking server, want the 24 trials"


@pytest.mark.example("15-lightgbm")
def test_lightgbm_search_runs_on_executors(spark):
    from joblib import parallel_backend
    from joblibspark import register_spark
    from lightgbm import LGBMClassifier
    from sklearn.datasets import make_classification
    from sklearn.model_selection import GridSearchCV, train_test_split

    register_spark()
    x, y = make_classification(n_samples=2000, n_features=12, n_informative=6, random_state=0)
    x_train, x_test, y_train, y_test = train_test_split(x, y, random_state=0)
    search = GridSearchCV(
        LGBMClassifier(n_jobs=1, verbose=-1),
        {"num_leaves": [7, 15], "n_estimators": [50, 100]},
        cv=3,
    )
    with ran_on_executors(spark, "LightGBM (joblibspark)"), parallel_backend("spark", n_jobs=4):
        search.fit(x_train, y_train)
    accuracy = search.score(x_test, y_test)
    assert accuracy > 0.88, f"LightGBM: held-out accuracy {accuracy:.3f}"


def deepspeed_main():
    import socket

    import deepspeed
    import torch
    import torch.distributed as dist

    torch.manual_seed(0)
    model = torch.nn.Linear(8, 1)
    config = {
        "train_micro_batch_size_per_gpu": 8,
        # torch's own AdamW (DeepSpeed's fused Adam needs CUDA); ZeRO stage 1 shards its state over the ranks.
        "optimizer": {"type": "AdamW", "params": {"lr": 0.1, "torch_adam": True}},
        "zero_optimization": {"stage": 1},
    }
    engine, _, _, _ = deepspeed.initialize(model=model, model_parameters=model.parameters(), config=config)
    rank, world = dist.get_rank(), dist.get_world_size()
    generator = torch.Generator().manual_seed(rank)
    target = torch.arange(8, dtype=torch.float32)
    losses = []
    for _ in range(40):
        x = torch.randn(8, 8, generator=generator)
        loss = ((engine(x).squeeze(-1) - x @ target) ** 2).mean()
        engine.backward(loss)
        engine.step()
        losses.append(loss.item())
    hosts = [None] * world
    dist.all_gather_object(hosts, socket.gethostname())
    weights = [None] * world
    dist.all_gather_object(weights, engine.module.weight.detach().tolist())
    return {
        "world": world,
        "hosts": hosts,
        "accelerator": deepspeed.get_accelerator().device_name(),
        "backend": dist.get_backend(),
        "weights_equal": all(w == weights[0] for w in weights),
        "losses": losses,
    }


def test_deepspeed_torch_distributor_on_cpu_executors(spark):
    from pyspark.ml.deepspeed.deepspeed_distributor import DeepspeedTorchDistributor

    distributor = DeepspeedTorchDistributor(numGpus=1, nnodes=2, localMode=False, useGpu=False)
    result = distributor.run(deepspeed_main)
    assert result["world"] == 2 and result["accelerator"] == "cpu", result
    assert len(set(result["hosts"])) == 2 and DRIVER_HOST not in result["hosts"], result["hosts"]
    assert result["weights_equal"], "DeepSpeed: ranks diverged"
    first, last = sum(result["losses"][:5]) / 5, sum(result["losses"][-5:]) / 5
    assert last < first / 2, f"DeepSpeed: loss did not fall: {result['losses']}"


def transformers_main():
    import io
    import socket

    import torch
    import torch.distributed as dist
    from torch.nn.parallel import DistributedDataParallel
    from transformers import BertConfig, BertForSequenceClassification

    dist.init_process_group("gloo")
    rank, world = dist.get_rank(), dist.get_world_size()
    config = BertConfig(
        vocab_size=32, hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32,
        max_position_embeddings=16, num_labels=2,
    )  # fmt: skip
    torch.manual_seed(rank)  # different initial weights: DDP must broadcast rank 0's
    model = DistributedDataParallel(BertForSequenceClassification(config))
    optimizer = torch.optim.AdamW(model.parameters(), lr=5e-3)
    generator = torch.Generator().manual_seed(100 + rank)
    losses = []
    for _ in range(30):
        ids = torch.randint(4, 32, (16, 8), generator=generator)
        labels = (ids[:, 0] >= 18).long()  # the class is in the first token
        out = model(input_ids=ids, labels=labels)
        optimizer.zero_grad()
        out.loss.backward()
        optimizer.step()
        losses.append(out.loss.item())
    hosts = [None] * world
    dist.all_gather_object(hosts, socket.gethostname())
    state = {k: v.detach().clone() for k, v in model.module.state_dict().items()}
    states = [None] * world
    dist.all_gather_object(states, state)
    equal = all(all(torch.equal(s[k], states[0][k]) for k in state) for s in states)
    dist.destroy_process_group()
    buffer = io.BytesIO()
    torch.save(state, buffer)
    return {"hosts": hosts, "equal": equal, "losses": losses, "state": buffer.getvalue(), "config": config.to_dict()}


@pytest.mark.example("17-transformers-torch-distributor")
def test_transformers_model_trained_under_torch_distributor_is_logged_to_mlflow(spark, tmp_path):
    import io

    import mlflow
    import torch
    from pyspark.ml.torch.distributor import TorchDistributor
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import BertConfig, BertForSequenceClassification, PreTrainedTokenizerFast

    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # nothing is downloaded: model and tokenizer are built here
    result = TorchDistributor(num_processes=2, local_mode=False, use_gpu=False).run(transformers_main)
    assert len(set(result["hosts"])) == 2 and DRIVER_HOST not in result["hosts"], result["hosts"]
    assert result["equal"], "transformers/TorchDistributor: the two ranks ended with different weights"
    assert sum(result["losses"][-5:]) < sum(result["losses"][:5]), f"loss did not fall: {result['losses']}"

    model = BertForSequenceClassification(BertConfig.from_dict(result["config"]))
    model.load_state_dict(torch.load(io.BytesIO(result["state"])))
    model.eval()
    vocab = {"[PAD]": 0, "[UNK]": 1, "[CLS]": 2, "[SEP]": 3, **{f"w{i}": i for i in range(4, 32)}}
    backend = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    backend.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=backend, unk_token="[UNK]", pad_token="[PAD]")
    mlflow.set_experiment(f"mlrt-smoke-transformers-{uuid.uuid4().hex[:8]}")
    with mlflow.start_run():
        info = mlflow.transformers.log_model(
            transformers_model={"model": model, "tokenizer": tokenizer}, name="model", task="text-classification"
        )
    loaded = mlflow.transformers.load_model(info.model_uri, return_type="components")
    ids = torch.randint(4, 32, (4, 8), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        assert torch.allclose(loaded["model"](input_ids=ids).logits, model(input_ids=ids).logits)
    text = " ".join(f"w{i}" for i in ids[0].tolist())
    assert loaded["tokenizer"](text)["input_ids"] == ids[0].tolist()
