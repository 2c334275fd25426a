"""The jar lock (tooling/jars.py): declarations, repositories, Maven resolution against a real local repository
and a real HTTP server, what is left out and why, and verification at build time."""

from __future__ import annotations

import base64
import hashlib
import http.server
import json
import threading
import uuid
import zipfile
from pathlib import Path

import pytest

from tooling import jars, versions

SPARK = ["scala-library-2.13.17.jar", "slf4j-api-2.0.17.jar", "jackson-core-2.21.2.jar", "zstd-jni-1.5.7-6.jar"]


def test_jar_lock_is_current_and_goes_stale_with_versions_env():
    pins = versions.load()
    jars.check(pins)
    changed = dict(pins, JVM_PACKAGE_DELTA="io.delta:delta-spark_4.1_2.13:4.3.0")
    with pytest.raises(jars.JarError, match=r"jars.lock is stale .* run `make lock`"):
        jars.check(changed)


def test_jvm_versions_follow_their_python_halves():
    pins = versions.load()
    packages = jars.declared(pins)
    assert packages["JVM_PACKAGE_DELTA"].version == pins["DELTA_VERSION"]
    for key in ("JVM_PACKAGE_GRAPHFRAMES", "JVM_PACKAGE_GRAPHFRAMES_GRAPHX"):
        assert packages[key].version == pins["GRAPHFRAMES_PY_VERSION"], key
    for key in ("JVM_PACKAGE_MLEAP", "JVM_PACKAGE_MLEAP_EXTENSION"):
        assert packages[key].version == pins["MLEAP_VERSION"], key


def test_s3a_is_hadoop_aws_at_sparks_hadoop_with_sdk_modules_not_the_bundle():
    pins = versions.load()
    packages = jars.declared(pins)
    shipped = jars.spark_ships("hadoop-client-runtime", jars.spark_jars(pins["SPARK_VERSION"]))
    assert packages["JVM_PACKAGE_HADOOP_AWS"].version == pins["HADOOP_VERSION"] == shipped
    sdk = [c for k, c in packages.items() if k.startswith("JVM_PACKAGE_AWS_SDK_")]
    assert sdk and {c.version for c in sdk} == {pins["AWS_SDK_VERSION"]}
    assert jars.excluded(pins) == {"software.amazon.awssdk:bundle": "JVM_EXCLUDE_AWS_SDK_BUNDLE"}
    data = jars.read_lock()
    locked = {j["coordinate"].rsplit(":", 1)[0] for j in data["jars"]}
    assert {"org.apache.hadoop:hadoop-aws", "software.amazon.awssdk:s3", "software.amazon.awssdk:sts"} <= locked
    assert "software.amazon.awssdk:bundle" not in locked
    left = {o["coordinate"]: o["why"] for o in data["left_out"]}
    assert left[f"software.amazon.awssdk:bundle:{pins['AWS_SDK_VERSION']}"] == (
        "excluded by versions.env JVM_EXCLUDE_AWS_SDK_BUNDLE"
    )


def test_committed_lock_bakes_delta_and_records_the_rest():
    data = jars.read_lock()
    status = {p["key"]: p["status"] for p in data["packages"]}
    assert status["JVM_PACKAGE_DELTA"] == "resolved"
    files = {j["coordinate"].rsplit(":", 1)[0] for j in data["jars"]}
    assert {"io.delta:delta-spark_4.1_2.13", "io.delta:delta-storage"} <= files
    assert not any(j["coordinate"].startswith(("org.apache.spark:", "org.scala-lang:")) for j in data["jars"])
    for package in data["packages"]:
        if package["status"] != "resolved":
            assert package["asked"] and package["reason"], package


@pytest.mark.parametrize(
    "text",
    ["io.delta:delta-spark_4.1_2.13", "io.delta delta:x:1", "a:b:c:d", ""],
)
def test_malformed_coordinate_names_the_form(text):
    with pytest.raises(jars.JarError, match="group:artifact:version"):
        jars.Coordinate.parse(text, "versions.env JVM_PACKAGE_X")


def test_repositories_default_order_and_bad_input(tmp_path):
    assert jars.repositories("") == [jars.MAVEN_CENTRAL]
    local = tmp_path.as_uri()
    assert jars.repositories(f"https://m.example/maven2/, {local}") == ["https://m.example/maven2", local]
    with pytest.raises(jars.JarError, match="MLRT_MAVEN_NETRC"):
        jars.repositories("https://user:secret@m.example/maven2")
    with pytest.raises(jars.JarError, match="does not exist"):
        jars.repositories((tmp_path / "nowhere").as_uri())
    with pytest.raises(jars.JarError, match="not an https"):
        jars.repositories("ftp://m.example/maven2")


def test_version_order_and_what_counts_as_newer():
    assert jars.version_key("1.5.7-6") > jars.version_key("1.5.7-3")
    assert jars.version_key("2.13.18") > jars.version_key("2.13.17")
    assert jars.version_key("1.0") > jars.version_key("1.0-RC1")
    assert jars.newer_minor("2.25.3", "2.24.3")
    assert not jars.newer_minor("2.13.18", "2.13.17"), "a newer patch is served by Spark's copy"
    assert not jars.newer_minor("2.13.5", "2.21.2")


def test_spark_ships_matches_artifact_names_not_prefixes():
    assert jars.spark_ships("zstd-jni", SPARK) == "1.5.7-6"
    assert jars.spark_ships("scala-library", SPARK) == "2.13.17"
    assert jars.spark_ships("scala", SPARK) is None
    assert jars.spark_ships("jackson", SPARK) is None


# ---- a real Maven repository on disk, and the same served over HTTP ------------------------------------------


def _publish(repo: Path, coord: str, deps: list[tuple[str, str]] = (), jar: bool = True) -> None:
    c = jars.Coordinate.parse(coord)
    base = repo / Path(c.path("pom")).parent
    base.mkdir(parents=True, exist_ok=True)
    dep_xml = "".join(
        f"<dependency><groupId>{d.group}</groupId><artifactId>{d.artifact}</artifactId><version>{d.version}"
        f"</version><scope>{scope}</scope></dependency>"
        for d, scope in ((jars.Coordinate.parse(d), scope) for d, scope in deps)
    )
    (repo / c.path("pom")).write_text(
        f'<project xmlns="http://maven.apache.org/POM/4.0.0"><modelVersion>4.0.0</modelVersion>'
        f"<groupId>{c.group}</groupId><artifactId>{c.artifact}</artifactId><version>{c.version}</version>"
        f"<dependencies>{dep_xml}</dependencies></project>"
    )
    if jar:
        with zipfile.ZipFile(repo / c.path(), "w") as z:
            z.writestr("META-INF/MANIFEST.MF", f"Manifest-Version: 1.0\nX-Coordinate: {coord}\n")
    for ext in ("pom", "jar") if jar else ("pom",):
        # Checksums as `mvn deploy` writes them (the lock runs Maven with strict checksums).
        (repo / c.path(f"{ext}.sha1")).write_text(hashlib.sha1((repo / c.path(ext)).read_bytes()).hexdigest())


@pytest.fixture
def local_repo(tmp_path, monkeypatch):
    """A Maven repository with a package whose tree has a jar Spark lacks, one Spark ships, a second logging
    binding, a test framework published at compile scope and a test-scope dependency."""
    cache = tmp_path / "cache"
    cache.mkdir()
    shared_maven = Path.home() / ".cache" / "mlrt" / "maven"  # Maven's plugins, shared across runs
    shared_maven.mkdir(parents=True, exist_ok=True)
    (cache / "maven").symlink_to(shared_maven)
    monkeypatch.setenv("MLRT_CACHE_DIR", str(cache))
    monkeypatch.delenv("MLRT_MAVEN_NETRC", raising=False)
    group = f"org.mlrt.t{uuid.uuid4().hex[:10]}"  # fresh in Maven's shared local repository
    repo = tmp_path / "repo"
    _publish(
        repo,
        f"{group}:app_2.13:1.0",
        [
            (f"{group}:helper:2.0", "compile"),
            ("org.scala-lang:scala-library:2.13.17", "compile"),
            ("org.slf4j:slf4j-log4j12:1.7.36", "compile"),
            ("org.scalatest:scalatest_2.13:3.2.15", "compile"),
            ("junit:junit:4.13.2", "test"),
        ],
    )
    _publish(repo, f"{group}:helper:2.0")
    _publish(repo, "org.scala-lang:scala-library:2.13.17", jar=False)
    _publish(repo, "org.slf4j:slf4j-log4j12:1.7.36", jar=False)
    _publish(repo, "org.scalatest:scalatest_2.13:3.2.15", jar=False)
    return group, repo


def _pins(group: str, *extra: str) -> dict[str, str]:
    pins = {"SPARK_VERSION": "4.1.4", "JVM_PACKAGE_APP": f"{group}:app_2.13:1.0"}
    for i, coord in enumerate(extra):
        pins[f"JVM_PACKAGE_EXTRA{i}"] = coord
    return pins


def test_lock_and_fetch_from_a_file_repository(local_repo, tmp_path):
    group, repo = local_repo
    # The local repository first; Maven Central after it serves Maven's own plugin.
    repos = jars.repositories(f"{repo.as_uri()} {jars.MAVEN_CENTRAL}")
    data = jars.lock(_pins(group, f"{group}:absent_2.13:9.9"), repos, spark=SPARK)

    assert [j["coordinate"] for j in data["jars"]] == [f"{group}:app_2.13:1.0", f"{group}:helper:2.0"]
    helper = data["jars"][1]
    assert helper["pulled_in_by"] == [f"{group}:app_2.13:1.0"]
    assert helper["sha256"] == hashlib.sha256((repo / helper["path"]).read_bytes()).hexdigest()
    assert helper["size"] == (repo / helper["path"]).stat().st_size
    why = {o["coordinate"].split(":")[1]: o["why"] for o in data["left_out"]}
    assert why["scala-library"] == "Spark ships scala-library-2.13.17.jar"
    assert "second logging binding" in why["slf4j-log4j12"]
    assert "test framework" in why["scalatest_2.13"]
    assert "junit" not in why, "test-scope dependencies never enter the tree"
    absent = next(p for p in data["packages"] if p["key"] == "JVM_PACKAGE_EXTRA0")
    assert absent["status"] == "unresolved"
    assert absent["asked"] == {repos[0]: "not found", repos[1]: "404 Not Found"}

    lock_file = tmp_path / "jars.lock"
    lock_file.write_text(json.dumps(data))
    staged = tmp_path / "staged"
    fetched = jars.fetch(staged, repos, path=lock_file)
    assert sorted(p.name for p in staged.iterdir()) == sorted(j["file"] for j in data["jars"])
    assert [(p["coordinate"], p["reason"]) for p in jars.unresolved(fetched)] == [
        (f"{group}:absent_2.13:9.9", "no configured repository serves it")
    ]

    # The repository now serves a different helper jar: the build fails naming it.
    (repo / helper["path"]).write_bytes(b"not the locked jar")
    (Path(jars.cache_dir()) / "jars" / helper["file"]).unlink()
    with pytest.raises(jars.JarError, match=rf"{helper['file']} from .* has sha256 .* the jar lock says"):
        jars.fetch(staged, repos, path=lock_file)


def test_session_jars_give_what_the_image_lacks_and_write_no_lock(local_repo, tmp_path):
    """`tooling.jars session`: the packages the image's lock records unresolved, resolved from other repositories
    with their dependencies, minus what the image already carries, into a directory; in a cache of its own."""
    group, repo = local_repo
    central = jars.repositories(jars.MAVEN_CENTRAL)
    image_lock = tmp_path / "jars.lock"
    image_lock.write_text(json.dumps(jars.lock(_pins(group, f"{group}:later_2.13:1.0"), [repo.as_uri(), *central],
                                               spark=SPARK)))  # fmt: skip
    assert [p["status"] for p in jars.read_lock(image_lock)["packages"]] == ["resolved", "unresolved"]
    # Another repository serves the missing package; it needs the image's helper and a jar of its own.
    other = tmp_path / "other"
    _publish(other, f"{group}:later_2.13:1.0", [(f"{group}:helper:2.0", "compile"), (f"{group}:own:1.1", "compile")])
    _publish(other, f"{group}:own:1.1")
    _publish(other, f"{group}:helper:2.0")
    session_maven = jars.cache_dir() / "session-jars" / "maven"
    session_maven.parent.mkdir()
    session_maven.symlink_to(jars.cache_dir() / "maven")  # Maven's plugins (the test's group is fresh anyway)
    before = image_lock.read_text()
    dest = tmp_path / "session"
    given = jars.session(dest, [other.as_uri(), *central], image_lock, _pins(group, f"{group}:later_2.13:1.0"), SPARK)
    assert given == [f"{group}:later_2.13:1.0"]
    assert sorted(p.name for p in dest.iterdir()) == [f"{group}.later_2.13-1.0.jar", f"{group}.own-1.1.jar"]
    assert image_lock.read_text() == before
    assert not (jars.cache_dir() / "jars" / f"{group}.own-1.1.jar").exists(), "the session's jars have their own cache"
    # An image that lacks nothing: nothing to give.
    full = json.loads(before)
    full["packages"][1]["status"] = "resolved"
    image_lock.write_text(json.dumps(full))
    assert jars.session(dest, central, image_lock, _pins(group), SPARK) == [] and not list(dest.iterdir())


def test_an_excluded_artifact_is_left_out_with_what_it_pulls_in(local_repo):
    group, repo = local_repo
    pins = dict(_pins(group), JVM_EXCLUDE_HELPER=f"{group}:helper")
    data = jars.lock(pins, jars.repositories(f"{repo.as_uri()} {jars.MAVEN_CENTRAL}"), spark=SPARK)
    assert [j["coordinate"] for j in data["jars"]] == [f"{group}:app_2.13:1.0"]
    assert {
        "coordinate": f"{group}:helper:2.0",
        "pulled_in_by": f"{group}:app_2.13:1.0",
        "why": "excluded by versions.env JVM_EXCLUDE_HELPER",
    } in data["left_out"]
    with pytest.raises(jars.JarError, match=r"JVM_EXCLUDE_X=.* is not group:artifact"):
        jars.excluded({"JVM_EXCLUDE_X": f"{group}:helper:2.0"})


def test_a_newer_minor_than_spark_ships_fails_naming_both(local_repo):
    group, repo = local_repo
    _publish(repo, f"{group}:greedy:1.0", [("com.fasterxml.jackson.core:jackson-core:2.99.0", "compile")])
    _publish(repo, "com.fasterxml.jackson.core:jackson-core:2.99.0", jar=False)
    pins = {"SPARK_VERSION": "4.1.4", "JVM_PACKAGE_GREEDY": f"{group}:greedy:1.0"}
    with pytest.raises(jars.JarError, match=r"needs com.fasterxml.jackson.core:jackson-core:2.99.0 but Spark ships"):
        jars.lock(pins, jars.repositories(f"{repo.as_uri()} {jars.MAVEN_CENTRAL}"), spark=SPARK)


class _Repo(http.server.SimpleHTTPRequestHandler):
    login = "Basic " + base64.b64encode(b"reader:s3cret").decode()

    def do_GET(self):  # noqa: N802 (http.server's naming)
        if self.headers.get("Authorization") != self.login:
            self.send_response(401)
            self.send_header("WWW-Authenticate", 'Basic realm="mirror"')
            self.end_headers()
            return
        super().do_GET()

    def log_message(self, *args):
        pass


@pytest.fixture
def http_repo(local_repo):
    group, repo = local_repo
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), lambda *a: _Repo(*a, directory=str(repo)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield group, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_authenticated_mirror_404_and_unreachable(http_repo, tmp_path, monkeypatch):
    group, url = http_repo
    app = jars.Coordinate.parse(f"{group}:app_2.13:1.0")
    with pytest.raises(jars.JarError, match=r"refused .* \(401 .*MLRT_MAVEN_NETRC"):
        jars.probe(app, [url])
    netrc_file = tmp_path / "netrc"
    netrc_file.write_text("machine 127.0.0.1 login reader password s3cret\n")
    netrc_file.chmod(0o600)
    monkeypatch.setenv("MLRT_MAVEN_NETRC", str(netrc_file))
    assert jars.probe(app, [url]) == {url: "found"}
    gone = jars.Coordinate.parse(f"{group}:gone:1.0")
    assert jars.probe(gone, [url]) == {url: "404 Not Found"}
    settings = jars.settings_xml([url])
    assert "<username>reader</username>" in settings and url in settings
    with pytest.raises(jars.JarError, match=r"unreachable .* \(an unknown artifact would have been a 404\)"):
        jars.probe(app, ["http://127.0.0.1:9"])
