"""Databricks' `dbutils` on mlrt: the same calls, over what this runtime has (docs/dbutils.md).

Every notebook kernel has `dbutils` defined (as on Databricks); apps import it: `from mlrt import dbutils`.

  dbutils.fs         ls, head, cp, mv, rm, mkdirs, put over Hadoop's FileSystem with the session's own configuration
                     and credentials: s3a://bucket/..., file:/..., a path without a scheme is the session's default
  dbutils.secrets    get, getBytes, list, listScopes: a scope is a directory of MLRT_SECRETS_DIR (one file per key),
                     which the deployment mounts (compose: `make secret`; Kubernetes: the chart's secretScopes); in a
                     notebook every value read is shown as [REDACTED] in cell output, as on Databricks
  dbutils.widgets    text, dropdown, combobox, multiselect, get, getAll, remove, removeAll: ipywidgets controls in
                     JupyterLab; a job's (or dbutils.notebook.run's) parameters take their place (MLRT_JOB_PARAMETERS)
  dbutils.notebook   run(path, timeout_seconds, arguments) runs another notebook with papermill (mlrt.jobs) and
                     returns what it passed to exit(value)
  dbutils.library    restartPython(): `%pip` libraries are importable at once here (notebook-scoped, on executors too)

A call that has no meaning here raises NotImplementedError naming what to do instead; never a silent no-op.
"""

from __future__ import annotations

import json
import os
import sys
import threading
from collections import namedtuple
from pathlib import Path

PARAMETERS_ENV = "MLRT_JOB_PARAMETERS"
EXIT_FILE_ENV = "MLRT_NOTEBOOK_EXIT_FILE"
SECRETS_DIR_ENV = "MLRT_SECRETS_DIR"
SECRETS_DIR = "/opt/mlrt/secrets"
REDACTED = "[REDACTED]"

FileInfo = namedtuple("FileInfo", "path name size modificationTime")
SecretScope = namedtuple("SecretScope", "name")
SecretMetadata = namedtuple("SecretMetadata", "key")


class DbutilsError(Exception):
    """A dbutils call that cannot be done as asked; the message names the fix."""


class InputWidgetNotDefined(DbutilsError):
    pass


class NotebookExit(Exception):  # noqa: N818 - Databricks' name for what ends a notebook early
    """dbutils.notebook.exit(value): ends the notebook (a job's run succeeds with this value)."""

    def __init__(self, value: str) -> None:
        super().__init__(value)
        self.value = value


def _unsupported(call: str, instead: str):
    def method(*_args, **_kwargs):
        raise NotImplementedError(f"dbutils.{call} has no meaning in mlrt: {instead}")

    method.__name__ = call.rsplit(".", 1)[-1]
    method.__doc__ = f"Not available in mlrt: {instead}"
    return method


def _help(obj) -> None:
    names = sorted(n for n in dir(obj) if not n.startswith("_") and callable(getattr(obj, n)))
    print(f"{type(obj).__doc__.strip()}\n")
    for name in names:
        doc = (getattr(obj, name).__doc__ or "").strip().splitlines()
        print(f"  {name}: {doc[0] if doc else ''}")


# ---- fs ------------------------------------------------------------------------------------------------------------
def _spark():
    from pyspark.sql import SparkSession

    spark = SparkSession.getActiveSession()
    if spark is None:
        spark = SparkSession.builder.getOrCreate()
    if not hasattr(spark, "_jsc") or spark._jsc is None:
        raise DbutilsError("dbutils.fs needs a classic Spark session (not Spark Connect): its files are the driver's")
    return spark


def _check_path(path: str) -> str:
    if not isinstance(path, str) or not path:
        raise DbutilsError(f"a path must be a non-empty string, not {path!r}")
    if path.startswith(("dbfs:", "/dbfs/")):
        raise DbutilsError(
            f"{path}: there is no DBFS in mlrt; use the object store (s3a://lake/...: the deployment's bucket) or a "
            "shared volume (file:/opt/mlrt/lake/...)"
        )
    return path


class _FS:
    """Files over Hadoop's FileSystem, with the session's configuration (s3a://, file:/, ...)."""

    def _fs(self, path: str):
        spark = _spark()
        jvm = spark._jvm
        p = jvm.org.apache.hadoop.fs.Path(_check_path(path))
        return jvm, p, p.getFileSystem(spark._jsc.hadoopConfiguration())

    @staticmethod
    def _info(status) -> FileInfo:
        path = status.getPath()
        name, uri = path.getName(), path.toString()
        if status.isDirectory():
            name, uri = name + "/", uri.rstrip("/") + "/"
        return FileInfo(uri, name, 0 if status.isDirectory() else status.getLen(), status.getModificationTime())

    def ls(self, dir: str) -> list[FileInfo]:  # noqa: A002 - Databricks' parameter name
        """ls(dir): the files and directories in dir (directories end with /), or the file itself."""
        _, p, fs = self._fs(dir)
        if not fs.exists(p):
            raise FileNotFoundError(f"dbutils.fs.ls: {dir} does not exist")
        return sorted((self._info(s) for s in fs.listStatus(p)), key=lambda f: f.name)

    def head(self, file: str, maxBytes: int = 65536) -> str:  # noqa: N803
        """head(file, maxBytes=65536): the first maxBytes bytes of a file, as UTF-8 text."""
        _, p, fs = self._fs(file)
        if not fs.exists(p) or fs.getFileStatus(p).isDirectory():
            raise FileNotFoundError(f"dbutils.fs.head: {file} is not a file")
        stream = fs.open(p)
        try:
            data = bytes(stream.readNBytes(int(maxBytes)))
        finally:
            stream.close()
        return data.decode("utf-8", errors="replace")

    def put(self, file: str, contents: str, overwrite: bool = False) -> bool:
        """put(file, contents, overwrite=False): write a string to a file (UTF-8)."""
        _, p, fs = self._fs(file)
        if fs.exists(p) and not overwrite:
            raise FileExistsError(f"dbutils.fs.put: {file} exists; pass overwrite=True to replace it")
        data = contents.encode("utf-8")
        out = fs.create(p, True)
        try:
            out.write(bytearray(data))
        finally:
            out.close()
        print(f"Wrote {len(data)} bytes.")
        return True

    def mkdirs(self, dir: str) -> bool:  # noqa: A002
        """mkdirs(dir): make dir and its parents."""
        _, p, fs = self._fs(dir)
        return bool(fs.mkdirs(p))

    def _copy(self, source: str, dest: str, recurse: bool, delete_source: bool, call: str) -> bool:
        jvm, src, src_fs = self._fs(source)
        _, dst, dst_fs = self._fs(dest)
        if not src_fs.exists(src):
            raise FileNotFoundError(f"dbutils.fs.{call}: {source} does not exist")
        if src_fs.getFileStatus(src).isDirectory() and not recurse:
            raise DbutilsError(f"dbutils.fs.{call}: {source} is a directory; pass recurse=True to {call} it")
        conf = _spark()._jsc.hadoopConfiguration()
        if delete_source and src_fs.getUri().equals(dst_fs.getUri()) and not dst_fs.exists(dst):
            if src_fs.rename(src, dst):
                return True
        return bool(jvm.org.apache.hadoop.fs.FileUtil.copy(src_fs, src, dst_fs, dst, delete_source, True, conf))

    def cp(self, from_: str, to: str, recurse: bool = False) -> bool:
        """cp(from, to, recurse=False): copy a file (a directory with recurse=True), across file systems too."""
        return self._copy(from_, to, recurse, False, "cp")

    def mv(self, from_: str, to: str, recurse: bool = False) -> bool:
        """mv(from, to, recurse=False): move a file (a directory with recurse=True), across file systems too."""
        return self._copy(from_, to, recurse, True, "mv")

    def rm(self, dir: str, recurse: bool = False) -> bool:  # noqa: A002
        """rm(dir, recurse=False): delete a file, or a directory with recurse=True; False when there is none."""
        _, p, fs = self._fs(dir)
        if not fs.exists(p):
            return False
        if fs.getFileStatus(p).isDirectory() and not recurse and len(fs.listStatus(p)) > 0:
            raise DbutilsError(f"dbutils.fs.rm: {dir} is a directory that is not empty; pass recurse=True")
        return bool(fs.delete(p, bool(recurse)))

    mount = _unsupported("fs.mount", "read s3a://bucket/... paths directly; credentials come from the deployment")
    unmount = _unsupported("fs.unmount", "there are no mounts; use s3a:// paths directly")
    mounts = _unsupported("fs.mounts", "there are no mounts; use s3a:// paths directly")
    refreshMounts = _unsupported("fs.refreshMounts", "there are no mounts; use s3a:// paths directly")  # noqa: N815
    updateMount = _unsupported("fs.updateMount", "there are no mounts; use s3a:// paths directly")  # noqa: N815

    def help(self) -> None:
        """help(): the calls of dbutils.fs."""
        _help(self)


# ---- secrets -------------------------------------------------------------------------------------------------------
class _Redactor:
    """Secret values read in this process, replaced by [REDACTED] in what a notebook kernel shows and saves."""

    def __init__(self) -> None:
        self.values: set[str] = set()
        self.wired = False
        self.lock = threading.Lock()

    def redact(self, text):
        if isinstance(text, str) and self.values:
            for value in sorted(self.values, key=len, reverse=True):
                text = text.replace(value, REDACTED)
        return text

    def redact_data(self, data):
        if isinstance(data, dict):
            return {k: self.redact_data(v) for k, v in data.items()}
        if isinstance(data, list):
            return [self.redact_data(v) for v in data]
        return self.redact(data)

    def add(self, value: str) -> None:
        if len(value) < 3:  # a value this short would blank out ordinary output
            return
        with self.lock:
            self.values.add(value)
            if not self.wired:
                self.wired = self.wire()

    def wire(self) -> bool:
        """Hook the kernel's streams, rich output and tracebacks (in an IPython kernel only)."""
        try:
            from IPython import get_ipython
        except ImportError:
            return False
        shell = get_ipython()
        if shell is None or not hasattr(shell, "kernel"):
            return False
        for stream in (sys.stdout, sys.stderr):
            write = stream.write
            stream.write = lambda text, _write=write: _write(self.redact(text))
        publish = shell.display_pub.publish
        shell.display_pub.publish = lambda data, *a, **k: publish(self.redact_data(data), *a, **k)
        hook = shell.displayhook
        write_format_data = hook.write_format_data
        hook.write_format_data = lambda data, md=None: write_format_data(self.redact_data(data), md)
        show = shell._showtraceback
        shell._showtraceback = lambda etype, evalue, stb: show(
            etype, self.redact(str(evalue)), self.redact_data(list(stb))
        )
        return True


_redactor = _Redactor()


class _Secrets:
    """Secrets from the scopes the deployment mounts (a directory per scope, a file per key)."""

    @staticmethod
    def _root() -> Path:
        return Path(os.environ.get(SECRETS_DIR_ENV) or SECRETS_DIR)

    @staticmethod
    def _names(directory: Path) -> list[str]:
        # Kubernetes Secret volumes hold ..data and timestamped directories beside the keys' links: not keys
        return sorted(p.name for p in directory.iterdir() if not p.name.startswith("."))

    def listScopes(self) -> list[SecretScope]:  # noqa: N802
        """listScopes(): the secret scopes this deployment mounts."""
        root = self._root()
        if not root.is_dir():
            return []
        return [SecretScope(n) for n in self._names(root) if (root / n).is_dir()]

    def _scope(self, scope: str) -> Path:
        path = self._root() / scope
        if not scope or "/" in scope or scope.startswith(".") or not path.is_dir():
            known = ", ".join(s.name for s in self.listScopes()) or "none"
            raise DbutilsError(
                f"no secret scope {scope!r} (scopes here: {known}); add it: on compose `make secret SCOPE={scope} "
                f"KEY=<key>` (the value on stdin), on Kubernetes a Secret named in the chart's secretScopes"
            )
        return path

    def list(self, scope: str) -> list[SecretMetadata]:
        """list(scope): the keys of a scope (never their values)."""
        return [SecretMetadata(k) for k in self._names(self._scope(scope))]

    def getBytes(self, scope: str, key: str) -> bytes:  # noqa: N802
        """getBytes(scope, key): a secret's value as bytes."""
        path = self._scope(scope) / key
        if not key or "/" in key or key.startswith(".") or not path.is_file():
            keys = ", ".join(k.key for k in self.list(scope)) or "none"
            raise DbutilsError(
                f"no secret {key!r} in scope {scope!r} (its keys: {keys}); add it: on compose `make secret "
                f"SCOPE={scope} KEY={key}`, on Kubernetes a key of the Secret {scope!r}"
            )
        value = path.read_bytes()
        try:
            _redactor.add(value.decode("utf-8").rstrip("\r\n"))
        except UnicodeDecodeError:
            pass
        return value

    def get(self, scope: str, key: str) -> str:
        """get(scope, key): a secret's value (shown as [REDACTED] in notebook output)."""
        return self.getBytes(scope, key).decode("utf-8").rstrip("\r\n")

    def help(self) -> None:
        """help(): the calls of dbutils.secrets."""
        _help(self)


# ---- widgets -------------------------------------------------------------------------------------------------------
def job_parameters() -> dict[str, str]:
    """The parameters of the job run (or dbutils.notebook.run) this process belongs to; {} when none."""
    raw = os.environ.get(PARAMETERS_ENV, "")
    if not raw:
        return {}
    try:
        values = json.loads(raw)
    except ValueError as error:
        raise DbutilsError(f"{PARAMETERS_ENV} is not a JSON object of names to values: {error}") from None
    if not isinstance(values, dict):
        raise DbutilsError(f"{PARAMETERS_ENV} is not a JSON object of names to values")
    return {str(k): str(v) for k, v in values.items()}


class _Widgets:
    """Input widgets: parameters of a notebook, given by the user (controls in JupyterLab) or by a job's run."""

    def __init__(self) -> None:
        self.values: dict[str, str] = {}
        self.controls: dict[str, object] = {}

    def _define(self, kind: str, name: str, default: str, choices, label, *, multi: bool = False) -> None:
        if not isinstance(name, str) or not name:
            raise DbutilsError(f"dbutils.widgets.{kind}: a widget needs a name, not {name!r}")
        default = ",".join(default) if isinstance(default, list | tuple) else str(default)
        if choices is not None:
            choices = [str(c) for c in choices]
            wanted = default.split(",") if multi else [default]
            if kind != "combobox" and any(v not in choices for v in wanted):
                raise DbutilsError(
                    f"dbutils.widgets.{kind}({name!r}): the default {default!r} is not one of the choices {choices}"
                )
        given = job_parameters().get(name)
        self.values[name] = given if given is not None else self.values.get(name, default)
        self._show(kind, name, choices, label or name, multi=multi)

    def _show(self, kind, name, choices, label, *, multi: bool) -> None:
        try:
            from IPython import get_ipython

            if get_ipython() is None or not hasattr(get_ipython(), "kernel"):
                return
            import ipywidgets
            from IPython.display import display
        except ImportError:
            return
        value = self.values[name]
        if kind == "text":
            control = ipywidgets.Text(value=value, description=label)
        elif kind == "dropdown":
            control = ipywidgets.Dropdown(options=choices, value=value, description=label)
        elif kind == "combobox":
            control = ipywidgets.Combobox(options=choices, value=value, description=label, ensure_option=False)
        else:
            picked = tuple(v for v in value.split(",") if v in choices)
            control = ipywidgets.SelectMultiple(options=choices, value=picked, description=label)

        def changed(change, _name=name, _multi=multi):
            self.values[_name] = ",".join(change["new"]) if _multi else str(change["new"])

        control.observe(changed, names="value")
        old = self.controls.pop(name, None)
        if old is not None:
            old.close()
        self.controls[name] = control
        display(control)

    def text(self, name: str, defaultValue: str, label: str | None = None) -> None:  # noqa: N803
        """text(name, defaultValue, label=None): a free-text parameter."""
        self._define("text", name, defaultValue, None, label)

    def dropdown(self, name: str, defaultValue: str, choices, label: str | None = None) -> None:  # noqa: N803
        """dropdown(name, defaultValue, choices, label=None): one of the choices."""
        self._define("dropdown", name, defaultValue, choices, label)

    def combobox(self, name: str, defaultValue: str, choices, label: str | None = None) -> None:  # noqa: N803
        """combobox(name, defaultValue, choices, label=None): one of the choices or any text."""
        self._define("combobox", name, defaultValue, choices, label)

    def multiselect(self, name: str, defaultValue: str, choices, label: str | None = None) -> None:  # noqa: N803
        """multiselect(name, defaultValue, choices, label=None): some of the choices (get returns them joined by ,)."""
        self._define("multiselect", name, defaultValue, choices, label, multi=True)

    def get(self, name: str) -> str:
        """get(name): the widget's value (a job's parameter of that name when the notebook runs as a job)."""
        given = job_parameters()
        if name in given:
            return given[name]
        if name not in self.values:
            known = ", ".join(sorted(self.values)) or "none"
            raise InputWidgetNotDefined(
                f"no input widget named {name!r} is defined (widgets: {known}); define it first, e.g. "
                f"dbutils.widgets.text({name!r}, '<default>'), or pass it as a parameter of the job"
            )
        return self.values[name]

    def getArgument(self, name: str, optional: str | None = None) -> str | None:  # noqa: N802
        """getArgument(name, default=None): get(name), or the default when there is no such widget (deprecated)."""
        try:
            return self.get(name)
        except InputWidgetNotDefined:
            return optional

    def getAll(self) -> dict[str, str]:  # noqa: N802
        """getAll(): every widget's value (with a job's parameters), by name."""
        return {**self.values, **job_parameters()}

    def remove(self, name: str) -> None:
        """remove(name): remove a widget."""
        if name not in self.values:
            raise InputWidgetNotDefined(f"no input widget named {name!r} to remove")
        del self.values[name]
        control = self.controls.pop(name, None)
        if control is not None:
            control.close()

    def removeAll(self) -> None:  # noqa: N802
        """removeAll(): remove every widget."""
        for name in list(self.values):
            self.remove(name)

    def help(self) -> None:
        """help(): the calls of dbutils.widgets."""
        _help(self)


# ---- notebook ------------------------------------------------------------------------------------------------------
def _exit_handler(shell, etype, value, tb, tb_offset=None):
    print(f"Notebook exited: {value.value}")


class _Notebook:
    """Notebook workflows: run another notebook with arguments, end this one with a value."""

    def run(self, path: str, timeout_seconds: int = 0, arguments: dict | None = None) -> str:
        """run(path, timeout_seconds, arguments={}): run a notebook (a new kernel, its own Spark session) with
        these widget values; returns the value it passed to dbutils.notebook.exit ("" if none)."""
        try:
            from mlrt import jobs
        except ImportError:
            raise NotImplementedError(
                "dbutils.notebook.run runs notebooks with papermill, which the notebook image has: run this in "
                "JupyterLab or as a job"
            ) from None
        return jobs.run_child_notebook(path, int(timeout_seconds or 0), dict(arguments or {}))

    def exit(self, value) -> None:
        """exit(value): end this notebook here; a job's run (or dbutils.notebook.run) succeeds with this value."""
        value = "" if value is None else str(value)
        target = os.environ.get(EXIT_FILE_ENV)
        if target:
            Path(target).write_text(value)
        try:
            from IPython import get_ipython

            shell = get_ipython()
            if shell is not None and NotebookExit not in (shell.custom_exceptions or ()):
                shell.set_custom_exc((NotebookExit,), _exit_handler)  # a line, not a traceback
        except ImportError:
            pass
        raise NotebookExit(value)  # stops "run all" and a job's run (which succeeds: the value is written)

    def help(self) -> None:
        """help(): the calls of dbutils.notebook."""
        _help(self)


class _Library:
    """Libraries: `%pip install` in a notebook (notebook-scoped, shipped to its executors), MLRT_LIBRARIES for all."""

    def restartPython(self) -> None:  # noqa: N802
        """restartPython(): not needed here; libraries `%pip` installed are importable at once."""
        print(
            "mlrt: libraries installed with %pip are importable already, in this kernel and on its executors; "
            "Python was not restarted (Kernel > Restart Kernel clears the notebook's state)"
        )

    install = _unsupported("library.install", "use %pip install <package or s3a://...whl> (docs/libraries.md)")
    installPyPI = _unsupported("library.installPyPI", "use %pip install <package>==<version>")  # noqa: N815
    list = _unsupported("library.list", "use %pip list")

    def help(self) -> None:
        """help(): the calls of dbutils.library."""
        _help(self)


class _Unsupported:
    """A part of Databricks' dbutils with no meaning in mlrt: every call says what to do instead."""

    def __init__(self, part: str, instead: str) -> None:
        self._part, self._instead = part, instead

    def __getattr__(self, name: str):
        if name.startswith("_"):
            raise AttributeError(name)
        return _unsupported(f"{self._part}.{name}", self._instead)


class _Jobs:
    """Job values: a job here is one notebook or app."""

    taskValues = _Unsupported(  # noqa: N815
        "jobs.taskValues",
        "a job here is one notebook or app: pass values as parameters, return one with dbutils.notebook.exit, or "
        "chain notebooks with dbutils.notebook.run",
    )


fs = _FS()
secrets = _Secrets()
widgets = _Widgets()
notebook = _Notebook()
library = _Library()
jobs = _Jobs()
credentials = _Unsupported(
    "credentials",
    "credentials come from the deployment (the object store's key pair, a Kubernetes ServiceAccount's web "
    "identity), never from the notebook",
)
data = _Unsupported("data", "use DataFrame.summary() or describe()")


def help() -> None:  # noqa: A001 - dbutils.help(), as on Databricks
    """dbutils.help(): what each part of dbutils does here."""
    print(__doc__)
