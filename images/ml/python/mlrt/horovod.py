"""HorovodRunner: run a Horovod training function across the Spark cluster, as Databricks' sparkdl does.

    from mlrt.horovod import HorovodRunner      # or: from sparkdl import HorovodRunner
    hr = HorovodRunner(np=2)                     # np > 0: np processes on the executors
    result = hr.run(train_fn, epochs=3)          # train_fn(**kwargs); returns rank 0's return value

np < 0 runs -np processes locally on the driver (for debugging), np == 0 is refused. Horovod 0.28.1's Keras
integration needs tf-keras, so every Horovod process gets TF_USE_LEGACY_KERAS=1 before TensorFlow loads.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

HOROVOD_ENV = {"TF_USE_LEGACY_KERAS": "1"}


class HorovodRunner:
    def __init__(self, *, np: int, driver_log_verbosity: str = "log_callback_only"):
        if not isinstance(np, int) or np == 0:
            raise ValueError(
                "HorovodRunner(np=N): N > 0 runs N processes on the executors, N < 0 runs -N "
                "processes on the driver; np=0 is not allowed"
            )
        self.num_processor = np
        self.driver_log_verbosity = driver_log_verbosity

    def run(self, main: Callable[..., Any], **kwargs: Any) -> Any:
        env = {**os.environ, **HOROVOD_ENV}
        if self.num_processor < 0:
            return self._run_local(main, kwargs, -self.num_processor, env)
        import horovod.spark

        verbose = 2 if self.driver_log_verbosity == "all" else 1
        results = horovod.spark.run(main, kwargs=kwargs, num_proc=self.num_processor, env=env, verbose=verbose)
        return results[0]

    @staticmethod
    def _run_local(main: Callable[..., Any], kwargs: dict[str, Any], num_proc: int, env: dict[str, str]) -> Any:
        from horovod.runner import run

        results = run(main, kwargs=kwargs, np=num_proc, hosts=f"localhost:{num_proc}", use_gloo=True, env=env)
        return results[0]
