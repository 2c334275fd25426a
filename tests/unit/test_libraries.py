"""mlrt.libraries (images/spark/python/mlrt/libraries.py) with real pip, offline: an Environment layered over this
checkout's venv (standing in for the image's), a wheel built here. The notebook path on a cluster, with executors:
smoke_tests/test_libraries.py; cluster libraries at container start: the same file, on compose and Kubernetes."""

from __future__ import annotations

import importlib.util
import sys
import zipfile
from pathlib import Path

import pytest

from tests.conftest import ROOT
from tests.wheels import wheel

spec = importlib.util.spec_from_file_location("mlrt_libraries", ROOT / "images/spark/python/mlrt/libraries.py")
libraries = importlib.util.module_from_spec(spec)
spec.loader.exec_module(libraries)


@pytest.fixture()
def house(tmp_path):
    folder = tmp_path / "wheelhouse"
    folder.mkdir()
    return folder


@pytest.fixture()
def env(tmp_path, monkeypatch):
    monkeypatch.delenv("PYTHONPATH", raising=False)
    monkeypatch.setenv("MLRT_LIBRARIES_DIR", str(tmp_path / "libs"))
    return libraries.Environment(tmp_path / "env").create()


def offline(house: Path, *args: str) -> list[str]:
    return [*args, "--no-index", "--find-links", str(house)]


def test_an_install_lands_in_the_environment_only_and_the_runtime_satisfies_dependencies(env, house):
    # pytest is in the runtime (this venv): a dependency on it is satisfied there, not installed again
    wheel(house, "mlrtdemo", "1.0", requires=["pytest"])
    lines = []
    changed = libraries.install(env, offline(house, "mlrtdemo==1.0"), lines.append)
    assert changed == {"mlrtdemo": "1.0"}
    assert (env.site / "mlrtdemo.py").exists() and not (env.site / "pytest").exists()
    assert any("Successfully installed mlrtdemo-1.0" in line for line in lines)


def test_another_version_of_a_runtime_package_is_refused_naming_the_pin(env, house):
    pinned = libraries.pins()["pytest"][1]
    with pytest.raises(libraries.LibraryError, match=rf"pytest=={pinned}.*--force-runtime-change"):
        libraries.install(env, offline(house, "pytest==0.0.1"), print)
    # ... also when a dependency asks for it: pip's constraint conflict, named the same way
    wheel(house, "needsoldpytest", "1.0", requires=["pytest==0.0.1"])
    wheel(house, "pytest", "0.0.1")
    with pytest.raises(libraries.LibraryError, match=rf"pytest=={pinned}"):
        libraries.install(env, offline(house, "needsoldpytest"), print)
    assert not (env.site / "needsoldpytest.py").exists()
    # forced: in the environment, the runtime's own copy untouched
    libraries.install(env, offline(house, "pytest==0.0.1", libraries.FORCE), print)
    assert (env.site / "pytest.py").exists()
    assert libraries.pins([libraries.RUNTIME_SITE])["pytest"][1] == pinned


def test_a_cluster_install_cannot_force_a_runtime_change(env, house):
    wheel(house, "pytest", "0.0.1")
    with pytest.raises(libraries.LibraryError, match="cluster libraries cannot replace"):
        libraries.install(env, offline(house, "pytest==0.0.1", libraries.FORCE), print, notebook=False)


def test_uninstall_removes_what_the_notebook_installed_and_refuses_runtime_packages(env, house):
    wheel(house, "mlrtdemo", "1.0")
    libraries.install(env, offline(house, "mlrtdemo"), print)
    with pytest.raises(libraries.LibraryError, match="pytest comes with the runtime"):
        libraries.uninstall(env, ["pytest"], print)
    assert libraries.uninstall(env, ["mlrtdemo"], print) == {"mlrtdemo": "1.0"}
    assert not (env.site / "mlrtdemo.py").exists()


def test_a_package_that_does_not_exist_fails_with_pips_message_kept(env, house):
    lines = []
    with pytest.raises(libraries.LibraryError, match="pip install failed"):
        libraries.install(env, offline(house, "no-such-package-mlrt==1"), lines.append)
    assert any("No matching distribution" in line for line in lines)


def test_the_newest_archive_goes_first_on_the_path_and_replaces_the_one_before(env, house, tmp_path, monkeypatch):
    files = tmp_path / "spark-files"
    files.mkdir()
    monkeypatch.setattr(sys, "path", list(sys.path))
    monkeypatch.chdir(files)  # an executor's files directory is "." (its working directory)
    for number, value in ((1, 1), (2, 2)):
        wheel(house, "mlrtdemo", f"{number}.0", code=f"VALUE = {value}\n")
        libraries.install(env, offline(house, f"mlrtdemo=={number}.0"), print)
        archive = libraries.pack(env, "abc1", number)
        with zipfile.ZipFile(archive) as zf:  # what an executor unpacks: the environment less its .pth
            assert libraries.PTH not in zf.namelist() and "mlrtdemo.py" in zf.namelist()
            zf.extractall(files / archive.name)
        libraries.activate(".")
        import mlrtdemo

        assert mlrtdemo.VALUE == value and mlrtdemo.__file__.startswith(str(files / archive.name))
        assert sys.path[0] == str(files / archive.name)
    assert str(files / "mlrt-libs-abc1-1.zip") not in sys.path
    libraries.use(None, str(files / "mlrt-libs-abc1-2.zip"))
    assert "mlrtdemo" not in sys.modules


def test_cluster_libraries_install_once_and_are_reused(tmp_path, house, monkeypatch):
    monkeypatch.delenv("PYTHONPATH", raising=False)
    wheel(house, "mlrtdemo", "1.0")
    monkeypatch.setenv("MLRT_LIBRARIES_WHEELHOUSE", str(house))
    lines: list[str] = []
    site = libraries.cluster("mlrtdemo==1.0", tmp_path / "libs", lines.append)
    assert (site / "mlrtdemo.py").exists()
    again: list[str] = []
    assert libraries.cluster("mlrtdemo==1.0", tmp_path / "libs", again.append) == site
    assert any("already installed" in line for line in again)


@pytest.mark.parametrize(
    "args, expected",
    [
        (["pyfiglet==1.0.2", "-r", "req.txt", "mmh3"], [("pyfiglet", "==1.0.2"), ("mmh3", "")]),
        (["--index-url", "https://x/simple", "Pandas>=2"], [("pandas", ">=2")]),
        (["./dist/x-1.0-py3-none-any.whl"], []),
    ],
)
def test_requested_names_the_plain_requirements(args, expected):
    assert libraries.requested(args) == expected


def test_s3a_values_are_fetched_alone_or_after_an_option(tmp_path, monkeypatch):
    fetched = []
    monkeypatch.setattr(libraries, "fetch", lambda url, into: fetched.append(url) or into / url.rsplit("/", 1)[-1])
    out = libraries.localize(
        ["s3a://lake/w/x.whl", "-r", "s3a://lake/r.txt", "--find-links=s3a://lake/h/", "y"], tmp_path
    )
    assert fetched == ["s3a://lake/w/x.whl", "s3a://lake/r.txt", "s3a://lake/h/"]
    assert out == [str(tmp_path / "x.whl"), "-r", str(tmp_path / "r.txt"), f"--find-links={tmp_path / ''}", "y"]
