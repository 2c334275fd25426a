"""Host-side tests. The repository root is on sys.path (pytest's rootdir: `tests` is a package), so tests import
the build tooling as `tooling.*`, the user scripts as `scripts.*` and the Kubernetes test cluster as
`tests.k8s_cluster.*`."""

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
