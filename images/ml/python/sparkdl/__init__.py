"""Compatibility shim for notebooks written for Databricks' `sparkdl`: `from sparkdl import HorovodRunner`."""

from mlrt.horovod import HorovodRunner

__all__ = ["HorovodRunner"]
