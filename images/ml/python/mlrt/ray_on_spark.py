"""Ray on Spark with an early answer when the cluster cannot hold the Ray cluster asked for.

  from mlrt.ray_on_spark import setup_ray_cluster      # same arguments as ray.util.spark.setup_ray_cluster
  setup_ray_cluster(max_worker_nodes=2, num_cpus_worker_node=2, num_gpus_worker_node=0)

ray.util.spark.setup_ray_cluster starts one Ray worker node per Spark task of a background job. Asked for more
nodes than the application's executors have room for, it waits 120 s for them, logs a warning and carries on
with fewer. This wrapper counts the room first, the way Ray does (task slots of the resource profile one worker
node takes), and raises ValueError naming both numbers and the fixes; otherwise it calls Ray's function as is.
"""

from __future__ import annotations


def worker_node_slots(spark, num_cpus_worker_node: int | None, num_gpus_worker_node: int | None) -> int:
    """How many Ray worker nodes of this size the Spark application's executors can run at once."""
    from ray.util.spark.cluster_init import _create_resource_profile
    from ray.util.spark.utils import get_max_num_concurrent_tasks

    profile = None
    if num_cpus_worker_node is not None:
        profile = _create_resource_profile(num_cpus_worker_node, num_gpus_worker_node or 0)
    return get_max_num_concurrent_tasks(spark.sparkContext, profile)


def setup_ray_cluster(*, max_worker_nodes: int, min_worker_nodes: int | None = None, **kwargs):
    from pyspark.sql import SparkSession
    from ray.util.spark import MAX_NUM_WORKER_NODES
    from ray.util.spark import setup_ray_cluster as ray_setup_ray_cluster

    spark = SparkSession.getActiveSession()
    if spark is not None and max_worker_nodes != MAX_NUM_WORKER_NODES:
        wanted = max_worker_nodes if min_worker_nodes is None else min_worker_nodes
        cpus, gpus = kwargs.get("num_cpus_worker_node"), kwargs.get("num_gpus_worker_node")
        room = worker_node_slots(spark, cpus, gpus)
        if wanted > room:
            size = f"of {cpus} CPU(s) each " if cpus is not None else ""
            raise ValueError(
                f"Ray on Spark: {wanted} worker node(s) {size}asked for, but this Spark application's executors "
                f"have room for {room}. Ask for at most {room}, set min_worker_nodes lower to let the Ray cluster "
                "grow as executors come, or give the application more executors or cores "
                "(ray.util.spark itself would wait 120 s and start fewer)."
            )
    return ray_setup_ray_cluster(max_worker_nodes=max_worker_nodes, min_worker_nodes=min_worker_nodes, **kwargs)
