"""An idle notebook gives its executors back; its next cell gets them again (an IPython kernel extension).

Each notebook's Spark session holds its executors (spark.cores.max: 4 of compose's 8 cores) for as long as its
kernel lives, so two idle notebooks would hold the whole cluster and a third session's jobs would wait. Dynamic
allocation would release them, but Spark refuses barrier stages under it (TorchDistributor, DeepSpeed and
Horovod run barrier stages). So this kernel does what dynamic allocation would, between cells only:

- when no cell has run for MLRT_SESSION_IDLE_RELEASE_S seconds (default 300; 0: never), no job is running, and
  the session caches nothing (no persisted RDD, no cached DataFrame or table: their blocks live on the
  executors), the kernel's SparkContext kills its executors (`killExecutors`, which lowers its target too), so
  the master or Kubernetes gives their cores to other sessions;
- the next cell first asks for as many executors again (`requestExecutors`) and waits until they registered
  (as the session's start does: spark.scheduler.minRegisteredResourcesRatio), saying so under the cell.

Shuffle files on the released executors are gone: a later job that needs them recomputes them (Spark does so).
A session whose data is cached keeps its executors until the kernel is culled (MLRT_KERNEL_IDLE_TIMEOUT_S)."""

from __future__ import annotations

import logging
import os
import threading
import time

log = logging.getLogger(__name__)
CHECK_EVERY_S = 5
BACK_WITHIN_S = 120


def idle_release_seconds(env: dict[str, str] | None = None) -> int:
    value = (os.environ if env is None else env).get("MLRT_SESSION_IDLE_RELEASE_S", "300").strip()
    if not value.isdigit():
        raise ValueError(f"MLRT_SESSION_IDLE_RELEASE_S={value} is not a number of seconds (0 keeps executors)")
    return int(value)


def executor_ids(sc) -> list[str]:
    converters = sc._jvm.scala.jdk.javaapi.CollectionConverters
    return list(converters.asJava(sc._jsc.sc().getExecutorIds()))


def caches_nothing(sc) -> bool:
    jsc = sc._jsc.sc()
    if not jsc.getPersistentRDDs().isEmpty():
        return False
    from pyspark.sql import SparkSession

    spark = SparkSession.getActiveSession()
    return spark is None or spark._jsparkSession.sharedState().cacheManager().isEmpty()


class IdleExecutors:
    def __init__(self, seconds: int):
        self.seconds = seconds
        self.last_cell = time.monotonic()
        self.running = False
        self.released: tuple[object, set[str]] | None = None  # (the SparkContext, the executors it killed)
        self.lock = threading.Lock()

    def context(self):
        from pyspark import SparkContext

        sc = SparkContext._active_spark_context
        if sc is None or not sc.master.startswith(("spark://", "k8s://")):
            return None
        return sc

    def check(self) -> None:
        """Release the executors of an idle session (called from the timer thread)."""
        with self.lock:
            if self.running or self.released or time.monotonic() - self.last_cell < self.seconds:
                return
            sc = self.context()
            if sc is None or sc.statusTracker().getActiveJobsIds() or not caches_nothing(sc):
                return
            ids = executor_ids(sc)
            if not ids:
                return
            converters = sc._jvm.scala.jdk.javaapi.CollectionConverters
            if sc._jsc.sc().killExecutors(converters.asScala(sc._jvm.java.util.ArrayList(ids)).toSeq()):
                self.released = (sc, set(ids))
                log.warning("mlrt: released the session's %d idle executors", len(ids))

    def before_cell(self, *_args) -> None:
        with self.lock:
            self.running = True
            released, self.released = self.released, None
        if released is None:
            return
        sc, killed = released
        if sc is not self.context():
            return  # stopped, or another session since
        count = len(killed)
        print(f"mlrt: this session gave its {count} executors back while idle; getting them again ...", flush=True)
        started = time.monotonic()
        sc._jsc.sc().requestExecutors(count)

        def new() -> int:  # the killed ones may still be listed while they stop
            return len(set(executor_ids(sc)) - killed)

        while new() < count and time.monotonic() - started < BACK_WITHIN_S:
            time.sleep(0.5)
        print(f"mlrt: {new()} executors back in {time.monotonic() - started:.0f} s", flush=True)

    def after_cell(self, *_args) -> None:
        with self.lock:
            self.running = False
            self.last_cell = time.monotonic()

    def watch(self) -> None:
        while True:
            time.sleep(CHECK_EVERY_S)
            try:
                self.check()
            except Exception as exc:  # never let the timer end the kernel's process
                log.warning("mlrt: idle executors check failed: %s", exc)


def load_ipython_extension(ipython) -> None:
    seconds = idle_release_seconds()
    if not seconds or getattr(ipython, "_mlrt_idle_executors", None):
        return
    idle = IdleExecutors(seconds)
    ipython._mlrt_idle_executors = idle
    ipython.events.register("pre_run_cell", idle.before_cell)
    ipython.events.register("post_run_cell", idle.after_cell)
    threading.Thread(target=idle.watch, name="mlrt-idle-executors", daemon=True).start()
