"""Run a function on a module right after its first import, without importing it earlier (it may take seconds,
or never be needed): a meta-path finder that wraps the module's loader. Used by mlrt.ray_usage (every Python
process of the ml images, through mlrt-ray-usage.pth) and mlrt.mlflow_links (notebook kernels)."""

from __future__ import annotations

import importlib.abc
import importlib.util
import sys
from collections.abc import Callable


class _After(importlib.abc.MetaPathFinder):
    def __init__(self, name: str, then: Callable) -> None:
        self.name, self.then = name, then

    def find_spec(self, name, path, target=None):
        if name != self.name:
            return None
        sys.meta_path.remove(self)
        try:
            spec = importlib.util.find_spec(name)
        except Exception:
            return None
        if spec is None or spec.loader is None or not hasattr(spec.loader, "exec_module"):
            return spec
        exec_module, then = spec.loader.exec_module, self.then

        def exec_and_then(module):
            exec_module(module)
            then(module)

        spec.loader.exec_module = exec_and_then
        return spec


def after_import(name: str, then: Callable) -> None:
    """then(module) once `name` is imported: now if it already is, else right after its import."""
    if name in sys.modules:
        then(sys.modules[name])
    elif not any(isinstance(f, _After) and f.name == name for f in sys.meta_path):
        sys.meta_path.insert(0, _After(name, then))
