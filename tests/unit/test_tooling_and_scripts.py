"""The build tooling and the user CLI: .env generation, image build commands, CA detection."""

from __future__ import annotations

import stat

import pytest

from scripts import dotenv
from tooling import images, versions


def test_dotenv_generates_secrets_once_and_keeps_user_lines(tmp_path):
    env = tmp_path / ".env"
    env.write_text("MY_SETTING=1\nMLRT_VERSION=old\n")
    first = dotenv.update(env)
    assert first["MLRT_VERSION"] == versions.load()["MLRT_VERSION"]
    assert len(first["JUPYTER_TOKEN"]) == 48 and len(first["SPARK_AUTH_SECRET"]) == 64
    assert first["MY_SETTING"] == "1"
    assert stat.S_IMODE(env.stat().st_mode) == 0o600
    second = dotenv.update(env)
    assert second == first, "secrets must survive a second `make up`"


def test_dotenv_fills_an_empty_token(tmp_path):
    env = tmp_path / ".env"
    env.write_text("JUPYTER_TOKEN=\n")
    assert dotenv.update(env)["JUPYTER_TOKEN"]


def test_build_chain_and_args():
    pins = versions.load()
    assert images.with_parents(["notebook"]) == ["base", "spark", "ml", "notebook"]
    cmd = images.build_command("spark", pins, None)
    assert f"BASE_IMAGE=mlrt/base:{pins['MLRT_VERSION']}" in cmd
    assert f"JAVA_VERSION={pins['JAVA_VERSION']}" in cmd
    assert not any(part.startswith("id=mlrt_ca") for part in cmd)
    base = images.build_command("base", pins, None)
    assert f"BASE_IMAGE={pins['BASE_IMAGE']}" in base


def test_where_jars_come_from_is_no_build_input(monkeypatch):
    """MLRT_MAVEN_REPOSITORIES chooses where `make build` downloads the locked jars from, not which jars: no image's
    build command (its args, hence its layer cache) changes with it."""
    pins = versions.load()
    monkeypatch.delenv("MLRT_MAVEN_REPOSITORIES", raising=False)
    before = {name: images.build_command(name, pins, None) for name in images.IMAGES}
    monkeypatch.setenv("MLRT_MAVEN_REPOSITORIES", "https://mirror.example/m2 https://repo1.maven.org/maven2")
    assert {name: images.build_command(name, pins, None) for name in images.IMAGES} == before


def test_unknown_image_is_named():
    with pytest.raises(SystemExit, match="unknown image 'nope'"):
        images.with_parents(["nope"])


def test_ca_bundle_is_passed_as_a_secret(tmp_path, monkeypatch):
    bundle = tmp_path / "ca.pem"
    bundle.write_text("-----BEGIN CERTIFICATE-----\n")
    for var in images.CA_ENV_VARS:
        monkeypatch.delenv(var, raising=False)
    assert images.ca_bundle() is None
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(bundle))
    assert images.ca_bundle() == bundle
    cmd = images.build_command("base", versions.load(), images.ca_bundle())
    assert f"id=mlrt_ca,src={bundle}" in cmd
    monkeypatch.setenv("MLRT_CA_BUNDLE", str(tmp_path / "missing.pem"))
    with pytest.raises(SystemExit, match="MLRT_CA_BUNDLE=.*is not a file"):
        images.ca_bundle()
