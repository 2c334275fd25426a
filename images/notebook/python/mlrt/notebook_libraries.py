"""IPython kernel extension: `%pip` installs notebook-scoped libraries, which reach the session's executors.

  %pip install pyfiglet==1.0.2            names and pins, `-r requirements.txt`, a wheel in the workspace or at
  %pip install s3a://lake/wheels/x.whl    s3a:// (any pip argument that is a file or a place may be s3a://)
  %pip uninstall pyfiglet                 only what this notebook installed; the runtime's packages stay
  %pip list | freeze | show ...           pip as usual, over this notebook's environment and the runtime's

The kernel's environment is its own (mlrt.libraries.Environment, in a temporary directory): the runtime's pinned
packages stay importable and are never replaced (an install that needs another version of one is refused, naming
it, unless --force-runtime-change); other notebooks do not see it. After each change it is shipped to the kernel's
SparkContext (SparkContext.addArchive), and to every SparkContext the kernel starts later: each executor imports the
same versions from its next task on (mlrt.pyspark_daemon), sessions started before the %pip cell included.

As on Databricks, where detaching a notebook resets its libraries, the environment lives as long as the kernel:
restarting the kernel starts from the runtime's packages again (keep the %pip cells at the top of the notebook).
Spark Connect sessions are not reached (their client ships files with spark.addArtifacts: docs/libraries.md).
"""

from __future__ import annotations

import atexit
import os
import secrets
import shlex
import shutil
import sys
import tempfile
import time
from pathlib import Path

from mlrt import libraries
from mlrt.libraries import LibraryError

ROOT_ENV = "MLRT_NOTEBOOK_LIBRARIES_DIR"


class NotebookLibraries:
    def __init__(self) -> None:
        self.owner = secrets.token_hex(4)
        self.env: libraries.Environment | None = None
        self.version = 0
        self.archive: Path | None = None
        self.shipped: set[tuple[int, str]] = set()

    # the kernel's environment, made on the first %pip
    def environment(self) -> libraries.Environment:
        if self.env is None:
            base = Path(os.environ.get(ROOT_ENV) or tempfile.gettempdir())
            base.mkdir(parents=True, exist_ok=True)
            sweep(base)
            root = Path(tempfile.mkdtemp(prefix=f"mlrt-notebook-libraries-{os.getpid()}-", dir=base))
            atexit.register(shutil.rmtree, root, True)
            self.env = libraries.Environment(root).create()
            libraries.use(str(self.env.site), None)
        return self.env

    def pip(self, line: str) -> None:
        args = shlex.split(line)
        command = args[0] if args else ""
        env = self.environment()
        started = time.monotonic()
        if command == "install":
            changed = libraries.install(env, args[1:], echo)
        elif command == "uninstall":
            changed = libraries.uninstall(env, args[1:], echo)
        else:
            status, _ = env.pip(args, echo)
            if status:
                raise LibraryError(f"pip {command} failed (its message is above)")
            return
        self.publish()
        listed = ", ".join(f"{name}=={version}" for name, version in sorted(changed.items())) or "nothing changed"
        where = (
            "this notebook and its Spark executors"
            if self.context()
            else "this notebook (and the executors of the Spark sessions it starts)"
        )
        verb = "installed" if command == "install" else "removed"
        echo(
            f"mlrt: {verb} for {where}: {listed} ({time.monotonic() - started:.1f} s). Other notebooks do not see it; "
            "restarting the kernel resets this notebook's libraries."
        )

    def publish(self) -> None:
        """A new archive of the environment, the kernel's modules from it forgotten, shipped to the session."""
        env = self.environment()
        self.version += 1
        self.archive = libraries.pack(env, self.owner, self.version)
        libraries.forget(str(env.site))
        libraries.use(None, None)  # import caches: the next import sees what is there now
        context = self.context()
        if context is not None:
            self.ship(context)

    @staticmethod
    def context():
        from pyspark import SparkContext

        return SparkContext._active_spark_context

    def ship(self, context) -> None:
        if self.archive is None:
            return
        key = (id(context), str(self.archive))
        if key not in self.shipped:
            context.addArchive(str(self.archive))
            self.shipped.add(key)


def echo(line: str) -> None:
    print(line, flush=True)


def sweep(base: Path) -> None:
    """Remove environments of kernels that are gone (a kernel killed outright cannot remove its own)."""
    for folder in base.glob("mlrt-notebook-libraries-*-*"):
        try:
            pid = int(folder.name.split("-")[3])
            os.kill(pid, 0)
        except ProcessLookupError:
            shutil.rmtree(folder, ignore_errors=True)
        except (ValueError, IndexError, PermissionError):
            continue


def load_ipython_extension(ipython) -> None:
    libs = NotebookLibraries()

    def pip(line: str) -> None:
        """Install notebook-scoped libraries (this kernel and its Spark executors): mlrt.notebook_libraries."""
        libs.pip(line)

    ipython.register_magic_function(pip, "line", "pip")
    ipython.user_ns.setdefault("_mlrt_libraries", libs)

    from pyspark import SparkContext

    if getattr(SparkContext.__init__, "_mlrt_libraries", False):
        return
    original = SparkContext.__init__

    def __init__(self, *args, **kwargs):
        original(self, *args, **kwargs)
        try:
            libs.ship(self)
        except Exception as exc:  # the session works; only this notebook's libraries are missing on its executors
            print(f"mlrt: this notebook's libraries were not shipped to the new session: {exc!r}", file=sys.stderr)

    __init__._mlrt_libraries = True
    SparkContext.__init__ = __init__
