"""Python libraries beyond the image's pinned stack, without rebuilding an image (docs/libraries.md).

  python -m mlrt.libraries cluster    install MLRT_LIBRARIES (pip arguments: pinned names, wheels, `-r FILE`; an
                                      s3a:// URL for any file) once into a layer under MLRT_LIBRARIES_DIR, keyed
                                      by what was asked, and name its site-packages in POINTER (the entrypoint runs
                                      it at start): every Python process of the container, executors, kernels, the
                                      Connect server and `docker exec`/`kubectl exec` sessions alike, puts it on its
                                      path (mlrt._cluster_path, from a .pth file in the image's site-packages). Kept
                                      on a volume, a restart does not download again.

Notebook-scoped libraries (`%pip` in a notebook, mlrt.notebook_libraries): an Environment of the kernel's own, its
site-packages first on the kernel's path. After each change it is zipped into an archive named
mlrt-libs-<owner>-<n>.zip, which the kernel adds to its SparkContext (SparkContext.addArchive: each executor unpacks
it in the application's files directory before its next task). PySpark's daemon is mlrt.pyspark_daemon here
(spark.python.daemon.module in the Spark defaults): before each task, a Python worker puts the newest such
directory first on sys.path (`activate`). So sessions started before the %pip cell get it too, and compiled code
loads (a directory, not a zip import).

Both install through pip in an Environment: a venv without a pip of its own, whose site-packages comes first and
whose .pth file adds the runtime's site-packages after it. pip sees every package of the runtime as installed and
installs only what is missing, into the environment; it never removes a runtime package (they are outside the
environment). Every runtime package (and cluster library) is also a constraint: an install that needs another
version of one is refused, naming it and the version the runtime pins, unless --force-runtime-change is given.

Environment: MLRT_S3_ENDPOINT (an S3-compatible endpoint for s3a:// URLs; credentials from the AWS SDK's default
chain, which the entrypoint feeds), MLRT_LIBRARIES_WHEELHOUSE (an s3a:// prefix or directory of wheels: pip gets
--no-index --find-links, for clusters without an index), and pip's own settings (PIP_INDEX_URL,
PIP_EXTRA_INDEX_URL; the entrypoint writes the deployment's into ~/.config/pip/pip.conf).
"""

from __future__ import annotations

import fcntl
import hashlib
import importlib
import json
import os
import re
import shlex
import shutil
import site
import subprocess
import sys
import sysconfig
import venv
import zipfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

FORCE = "--force-runtime-change"
ARCHIVE = re.compile(r"^mlrt-libs-(?P<owner>[0-9a-z]+)-(?P<n>[0-9]+)\.zip$")
PYTHON_DIR = f"python{sys.version_info[0]}.{sys.version_info[1]}"
# The runtime's own packages: the image's venv (this module's interpreter is the image's Python).
RUNTIME_SITE = sysconfig.get_paths()["purelib"]
PTH = "_mlrt_runtime.pth"
# Where `cluster` names this container's cluster libraries (container-local; mlrt._cluster_path reads it).
POINTER = Path("/tmp/mlrt-cluster-libraries")
LOCKS = Path("/opt/mlrt/locks")  # the image's hash-checked locks: what the runtime pins
DONE = ".mlrt-complete"
# pip options whose value is a file or a place: an s3a:// value is fetched first.
FILE_OPTIONS = {"-r", "--requirement", "-c", "--constraint", "-f", "--find-links"}

Echo = Callable[[str], None]


class LibraryError(Exception):
    """An install or removal that did not happen, with what to do about it (pip's own output came before)."""

    def _render_traceback_(self) -> list[str]:  # IPython shows this instead of a traceback
        return [f"\x1b[31mmlrt: {self}\x1b[0m"]


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def cluster_site() -> str | None:
    """This container's cluster libraries (their site-packages, as POINTER names it), if any."""
    try:
        path = POINTER.read_text().strip()
    except OSError:
        return None
    return path if path and os.path.isdir(path) else None


def layers() -> list[str]:
    """The runtime's site-packages directories, in import order: the image's, then the cluster libraries'."""
    return [RUNTIME_SITE, *filter(None, [cluster_site()])]


def pins(sites: list[str] | None = None) -> dict[str, tuple[str, str]]:
    """canonical name -> (name, version) of every package the runtime has; the first layer that has one wins."""
    from importlib import metadata

    found: dict[str, tuple[str, str]] = {}
    for dist in metadata.distributions(path=sites if sites is not None else layers()):
        name = dist.metadata["Name"]
        if name and canonical(name) not in found:
            found[canonical(name)] = (name, dist.version)
    return found


class Environment:
    """A venv layered over the runtime: its site-packages first, the runtime's after it (a .pth file)."""

    def __init__(self, root: Path | str):
        self.root = Path(root)
        self.site = self.root / "lib" / PYTHON_DIR / "site-packages"
        self.python = self.root / "bin" / "python"

    def create(self, below: list[str] | None = None) -> Environment:
        if not (self.root / "pyvenv.cfg").exists():
            venv.EnvBuilder(with_pip=False, symlinks=True).create(self.root)
        (self.site / PTH).write_text("".join(f"{path}\n" for path in (below if below is not None else layers())))
        return self

    def installed(self) -> dict[str, str]:
        """canonical name -> version of what this environment itself holds (not the runtime's)."""
        return {c: v for c, (_, v) in pins([str(self.site)]).items()}

    def constraints(self, pinned: dict[str, tuple[str, str]]) -> Path:
        path = self.root / "runtime-constraints.txt"
        path.write_text("".join(f"{name}=={version}\n" for name, version in sorted(pinned.values())))
        return path

    def pip(self, args: list[str], echo: Echo) -> tuple[int, str]:
        """Run pip in this environment, each line of its output echoed as it comes; (exit status, output)."""
        env = {**os.environ, "PIP_NO_INPUT": "1", "PIP_DISABLE_PIP_VERSION_CHECK": "1", "PIP_PROGRESS_BAR": "off"}
        if "PIP_CACHE_DIR" not in env and "PIP_NO_CACHE_DIR" not in env:
            env.update(pip_cache())
        env.pop("PYTHONHOME", None)
        env.pop("PIP_TARGET", None)
        env.pop("PIP_PREFIX", None)
        env.pop("PIP_USER", None)
        lines: list[str] = []
        with subprocess.Popen(
            [str(self.python), "-m", "pip", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            text=True,
            env=env,
        ) as proc:
            assert proc.stdout is not None
            for line in proc.stdout:
                lines.append(line)
                echo(line.rstrip("\n"))
        return proc.returncode, "".join(lines)


def pip_cache() -> dict[str, str]:
    """pip's download cache on the libraries volume (shared by a deployment's containers), else none."""
    cache = Path(os.environ.get("MLRT_LIBRARIES_DIR") or "/nonexistent") / ".pip-cache"
    try:
        cache.mkdir(parents=True, exist_ok=True)
        if os.access(cache, os.W_OK):
            return {"PIP_CACHE_DIR": str(cache)}
    except OSError:
        pass
    return {"PIP_NO_CACHE_DIR": "1"}


# ---- s3a:// inputs ----------------------------------------------------------------------------------------------


def _s3():
    import boto3  # the image has it (MLflow's artifact client); imported only when an s3a:// input is given
    from botocore.config import Config

    endpoint = os.environ.get("MLRT_S3_ENDPOINT") or None
    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name=os.environ.get("MLRT_S3_REGION", "us-east-1"),
        config=Config(
            s3={"addressing_style": "path"} if endpoint else {}, connect_timeout=5, retries={"max_attempts": 2}
        ),
    )


def fetch(url: str, into: Path) -> Path:
    """Copy s3a://bucket/key (a file) or s3a://bucket/prefix/ (every file under it) into `into`; the local path."""
    match = re.match(r"^s3a?://([^/]+)/?(.*)$", url)
    if not match:
        raise LibraryError(f"{url}: not an s3a://bucket/key URL")
    bucket, key = match.groups()
    client = _s3()
    into.mkdir(parents=True, exist_ok=True)
    try:
        if key and not key.endswith("/"):
            target = into / key.rsplit("/", 1)[-1]
            client.download_file(bucket, key, str(target))
            return target
        folder = into / (key.strip("/").replace("/", "_") or bucket)
        folder.mkdir(parents=True, exist_ok=True)
        count = 0
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=key):
            for obj in page.get("Contents", []):
                name = obj["Key"][len(key) :]
                if name and "/" not in name:
                    client.download_file(bucket, obj["Key"], str(folder / name))
                    count += 1
        if not count:
            raise LibraryError(f"{url}: no files under that prefix (put the wheels there, or fix the URL)")
        return folder
    except LibraryError:
        raise
    except Exception as exc:  # botocore's errors: no such key or bucket, no credentials, endpoint not answering
        raise LibraryError(
            f"{url}: could not be read from the object store ({type(exc).__name__}: {exc}); check the URL and that "
            f"this container reaches {os.environ.get('MLRT_S3_ENDPOINT') or 'S3'} with the deployment's key pair"
        ) from None


def localize(args: list[str], into: Path) -> list[str]:
    """pip arguments with every s3a:// value (a wheel, `-r`, `-c`, `--find-links`, alone or after `=`) replaced by a
    local copy."""
    out = []
    for arg in args:
        option, sep, value = arg.partition("=") if arg.startswith("-") else ("", "", arg)
        if not sep:
            option, value = "", arg
        if re.match(r"^s3a?://", value):
            value = str(fetch(value, into))
        out.append(f"{option}={value}" if sep else value)
    return out


def wheelhouse_args(into: Path) -> list[str]:
    place = os.environ.get("MLRT_LIBRARIES_WHEELHOUSE", "").strip()
    if not place:
        return []
    local = str(fetch(place if place.endswith("/") else place + "/", into)) if re.match(r"^s3a?://", place) else place
    return ["--no-index", "--find-links", local]


# ---- install, uninstall ------------------------------------------------------------------------------------------


def _packaging():
    """packaging's requirements and specifiers: the library where the image has it, else the copy pip carries."""
    try:
        from packaging import requirements, specifiers
    except ImportError:  # the spark image: pip (pinned in every image) vendors it
        from pip._vendor.packaging import requirements, specifiers
    return requirements, specifiers


def requested(args: list[str]) -> list[tuple[str, str]]:
    """(canonical name, specifier) of each plain requirement among pip install's arguments (files and URLs aside)."""
    requirements, _ = _packaging()
    Requirement, InvalidRequirement = requirements.Requirement, requirements.InvalidRequirement

    out = []
    skip = False
    for arg in args:
        if skip:
            skip = False
            continue
        if arg.startswith("-"):
            skip = arg in FILE_OPTIONS or arg in {"-i", "--index-url", "--extra-index-url", "--trusted-host"}
            continue
        try:
            req = Requirement(arg)
        except InvalidRequirement:
            continue  # a path or URL: pip reads it, and the constraints still hold
        out.append((canonical(req.name), str(req.specifier)))
    return out


def guard(args: list[str], pinned: dict[str, tuple[str, str]], notebook: bool = True) -> None:
    """Refuse, before pip runs, a requirement that asks for another version of a runtime package."""
    SpecifierSet = _packaging()[1].SpecifierSet

    for name, spec in requested(args):
        if name in pinned and spec and not SpecifierSet(spec).contains(pinned[name][1], prereleases=True):
            raise LibraryError(refusal([name], pinned, notebook))


def refusal(names: list[str], pinned: dict[str, tuple[str, str]], notebook: bool = True) -> str:
    listed = ", ".join(f"{pinned[n][0]}=={pinned[n][1]}" for n in names)
    why = (
        f"refused: this needs another version of {listed}, which the runtime pins (the driver and every executor run "
        f"that version; another one breaks what the runtime's own libraries expect of it). Keep the runtime's version"
    )
    if notebook:
        return f"{why}, or add {FORCE} to install it in this notebook's environment anyway, at your own risk."
    return f"{why}: cluster libraries cannot replace the runtime's packages (build an image for that)."


def install(env: Environment, args: list[str], echo: Echo, notebook: bool = True) -> dict[str, str]:
    """pip install ARGS into env; what changed there (canonical name -> version). LibraryError when it failed."""
    force = notebook and FORCE in args
    args = [a for a in args if a != FORCE]
    pinned = pins()
    if not force:
        guard(args, pinned, notebook)
    downloads = env.root / "downloads"
    args = localize(args, downloads) + wheelhouse_args(downloads)
    before = env.installed()
    command = ["install", *args]
    if not force:
        command += ["--constraint", str(env.constraints(pinned))]
    status, output = env.pip(command, echo)
    if status:
        clashes = sorted({canonical(n) for n in re.findall(r"\(constraint\) ([A-Za-z0-9_.\-]+)==", output)})
        clashes = [n for n in clashes if n in pinned]
        if clashes:
            raise LibraryError(refusal(clashes, pinned, notebook))
        raise LibraryError(
            "pip install failed (its message is above); nothing was installed"
            + (", and the session and its executors are as they were" if notebook else "")
        )
    after = env.installed()
    return {n: v for n, v in after.items() if before.get(n) != v}


def uninstall(env: Environment, args: list[str], echo: Echo) -> dict[str, str]:
    """pip uninstall ARGS from env; what went (canonical name -> version). A runtime package is refused, named."""
    names = [canonical(a) for a in args if not a.startswith("-")]
    before = env.installed()
    runtime = [n for n in names if n not in before and n in pins()]
    if runtime:
        listed = ", ".join(runtime)
        raise LibraryError(
            f"refused: {listed} comes with the runtime (the driver and every executor run it); a notebook cannot "
            f"remove it. Only what %pip installed in this notebook can be uninstalled."
        )
    flags = [] if {"-y", "--yes"} & set(args) else ["--yes"]
    status, _ = env.pip(["uninstall", *flags, *args], echo)
    if status:
        raise LibraryError("pip uninstall failed (its message is above)")
    after = env.installed()
    return {n: v for n, v in before.items() if n not in after}


def pack(env: Environment, owner: str, number: int) -> Path:
    """Zip env's site-packages as mlrt-libs-OWNER-NUMBER.zip, which executors unpack and `activate`."""
    folder = env.root / "archives"
    folder.mkdir(exist_ok=True)
    path = folder / f"mlrt-libs-{owner}-{number}.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
        for file in sorted(env.site.rglob("*")):
            if file.is_file() and file.name != PTH and "__pycache__" not in file.parts:
                zf.write(file, file.relative_to(env.site))
    return path


# ---- Python workers: the newest notebook environment first on sys.path --------------------------------------------

_active: dict[str, str | None] = {"folder": None}  # this worker's environment on sys.path


def newest(files_dir: str) -> str | None:
    best: tuple[int, str] | None = None
    try:
        entries = list(os.scandir(files_dir))
    except OSError:
        return None
    for entry in entries:
        match = ARCHIVE.match(entry.name)
        if match and entry.is_dir():
            number = int(match.group("n"))
            if best is None or number > best[0]:
                best = (number, entry.path)
    # absolute: an executor's files directory is "." (its working directory), and the modules' __file__ is absolute
    return os.path.abspath(best[1]) if best else None


def forget(folder: str) -> None:
    """Drop modules loaded from folder, so that the next import loads what is there now."""
    prefix = os.path.abspath(folder).rstrip(os.sep) + os.sep
    for name, module in list(sys.modules.items()):
        file = getattr(module, "__file__", None) or ""
        if file.startswith(prefix):
            del sys.modules[name]


def use(folder: str | None, previous: str | None) -> None:
    """Put folder first on sys.path (its .pth files processed) in place of previous."""
    if previous:
        while previous in sys.path:
            sys.path.remove(previous)
        forget(previous)
    if folder:
        sys.path.insert(0, folder)
        site.addsitedir(folder)  # .pth files only: the folder is on the path already
    importlib.invalidate_caches()


def activate(files_dir: str) -> None:
    """Called by each Python worker before a task: the application's newest notebook environment, if any."""
    latest = newest(files_dir)
    if latest != _active["folder"]:
        use(latest, _active["folder"])
        _active["folder"] = latest


# ---- cluster libraries ------------------------------------------------------------------------------------------


def runtime_digest() -> str:
    """What the runtime's packages are: the image's locks (cheap to read at every start), else the packages."""
    locks = sorted(LOCKS.glob("*.lock")) if LOCKS.is_dir() else []
    if locks:
        return hashlib.sha256(b"".join(path.read_bytes() for path in locks)).hexdigest()
    return hashlib.sha256(json.dumps(sorted(pins([RUNTIME_SITE]).values())).encode()).hexdigest()


@contextmanager
def locked(path: Path) -> Iterator[None]:
    with open(path, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def cluster(spec: str, base: Path, echo: Echo) -> Path:
    """Install the cluster libraries `spec` once under base; their site-packages."""
    items = shlex.split(spec)
    key = hashlib.sha256(
        json.dumps(
            [
                items,
                os.environ.get("MLRT_LIBRARIES_WHEELHOUSE", ""),
                os.environ.get("PIP_INDEX_URL", ""),
                os.environ.get("PIP_EXTRA_INDEX_URL", ""),
                runtime_digest(),
            ]
        ).encode()
    ).hexdigest()[:16]
    base.mkdir(parents=True, exist_ok=True)
    env = Environment(base / f"cluster-{key}")
    if (env.root / DONE).exists():
        echo(f"mlrt-libraries: cluster libraries already installed in {env.root} ({spec})")
        return env.site
    with locked(base / f"cluster-{key}.lock"):
        if (env.root / DONE).exists():
            echo(f"mlrt-libraries: cluster libraries installed in {env.root} by another container ({spec})")
            return env.site
        shutil.rmtree(env.root, ignore_errors=True)  # a start that did not finish
        env.create([RUNTIME_SITE])
        echo(f"mlrt-libraries: installing the cluster libraries {spec} into {env.root}")
        try:
            changed = install(env, items, echo, notebook=False)
        except LibraryError as exc:
            shutil.rmtree(env.root, ignore_errors=True)
            raise LibraryError(f"MLRT_LIBRARIES={spec}: {exc}") from None
        shutil.rmtree(env.root / "downloads", ignore_errors=True)
        (env.root / DONE).write_text(json.dumps({"spec": items, "installed": changed}) + "\n")
        echo(
            "mlrt-libraries: installed " + (", ".join(f"{n}=={v}" for n, v in sorted(changed.items())) or "nothing new")
        )
    return env.site


def main(argv: list[str]) -> int:
    if argv[:1] != ["cluster"]:
        print(__doc__, file=sys.stderr)
        return 2
    spec = os.environ.get("MLRT_LIBRARIES", "").strip()
    POINTER.unlink(missing_ok=True)
    if not spec:
        return 0
    base = Path(os.environ.get("MLRT_LIBRARIES_DIR") or "/tmp/mlrt-libraries")
    try:
        site_dir = cluster(spec, base, lambda line: print(line, file=sys.stderr, flush=True))
    except (LibraryError, OSError) as exc:
        print(f"mlrt-libraries: ERROR: {exc}", file=sys.stderr)
        return 1
    POINTER.write_text(f"{site_dir}\n")
    print(site_dir)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
