"""The JVM package layer: versions.env declares packages by Maven coordinates, `make lock` resolves them with
Maven into images/spark/jars.lock (sha256 and size per jar, and which declared package pulled it in), and the
image build downloads every locked jar from the configured repositories and verifies it.

  python -m tooling.jars lock           resolve JVM_PACKAGE_* from versions.env into the jar lock (`make lock`)
  python -m tooling.jars check          exit 1 when the jar lock is stale against versions.env
  python -m tooling.jars fetch DIR      download and verify the locked jars into DIR (the image build does this)
  python -m tooling.jars session DIR    jars giving a session (spark.jars) the packages the images lack, into DIR

Environment:
  MLRT_MAVEN_REPOSITORIES  ordered repository URLs, separated by spaces or commas (https://, http://, file://);
                           default Maven Central. Used by `make lock`, by the build and, passed to the
                           containers at run time (compose, the chart), by Spark's own resolution (--packages).
  MLRT_MAVEN_NETRC         a netrc file with credentials for authenticated mirrors (machine HOST login USER
                           password PASS). Read on the host only: credentials reach neither an image layer nor a
                           command line.

versions.env may also name artifacts to leave out wherever they appear (JVM_EXCLUDE_<NAME>=group:artifact), e.g.
an uber jar whose parts are declared one by one instead.

Left out of the lock, with the reason recorded: the excluded artifacts, whatever $SPARK_HOME/jars already ships
(Spark's own modules and their dependencies, whatever version a package's pom names, as long as it asks for no
newer major.minor than Spark ships: that fails naming both), test frameworks published as compile dependencies,
and second logging bindings. A declared package that no repository serves is recorded as unresolved with each
repository's answer; any other resolution error fails.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import netrc
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import urllib.error
import urllib.parse
import urllib.request
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from xml.sax.saxutils import escape

from tooling import versions

ROOT = versions.ROOT
LOCK = ROOT / "images" / "spark" / "jars.lock"
MAVEN_CENTRAL = "https://repo1.maven.org/maven2"
PACKAGE_PREFIX = "JVM_PACKAGE_"
EXCLUDE_PREFIX = "JVM_EXCLUDE_"
_ARTIFACT = re.compile(r"^[A-Za-z0-9_.\-]+:[A-Za-z0-9_.\-]+$")
DEPENDENCY_PLUGIN = "org.apache.maven.plugins:maven-dependency-plugin:3.8.1"
TIMEOUT_S = 30
_COORD = re.compile(r"^([A-Za-z0-9_.\-]+):([A-Za-z0-9_.\-]+):([A-Za-z0-9_.\-+]+)$")
# Test frameworks some poms publish as compile dependencies (mleap-spark-base: scalatest) and logging bindings
# besides the one Spark ships (log4j-slf4j2-impl).
TEST_FRAMEWORKS = ("scalatest", "scalactic", "scalacheck", "junit", "mockito", "specs2")
LOGGING_BINDINGS = {
    "slf4j-log4j12",
    "slf4j-reload4j",
    "slf4j-simple",
    "slf4j-jdk14",
    "slf4j-nop",
    "logback-classic",
    "log4j-slf4j-impl",
}
# Logging is Spark's: whatever version a package's pom names, the logging API and implementation Spark ships
# serve it (libraries must not pin the application's logging; Delta's unitycatalog-client names log4j 2.25).
LOGGING_GROUPS = ("org.slf4j", "org.apache.logging.log4j", "ch.qos.logback", "commons-logging")


def cache_dir() -> Path:
    """Downloaded jars, Maven's local repository and Spark's jar listing (MLRT_CACHE_DIR, else ~/.cache/mlrt)."""
    return Path(os.environ.get("MLRT_CACHE_DIR") or Path.home() / ".cache" / "mlrt")


class JarError(Exception):
    """A problem the user has to fix; the message names the fix."""


@dataclass(frozen=True)
class Coordinate:
    group: str
    artifact: str
    version: str

    @classmethod
    def parse(cls, text: str, where: str = "") -> Coordinate:
        match = _COORD.match(text.strip())
        if not match:
            raise JarError(
                f"{where or 'coordinate'} {text!r} is not a Maven coordinate; write group:artifact:version "
                f"(e.g. io.delta:delta-spark_4.1_2.13:4.4.0)"
            )
        return cls(*match.groups())

    def __str__(self) -> str:
        return f"{self.group}:{self.artifact}:{self.version}"

    def path(self, ext: str = "jar") -> str:
        return f"{self.group.replace('.', '/')}/{self.artifact}/{self.version}/{self.artifact}-{self.version}.{ext}"

    @property
    def file(self) -> str:
        return f"{self.group}.{self.artifact}-{self.version}.jar"


# ---- declarations and repositories ---------------------------------------------------------------------


def declared(pins: dict[str, str]) -> dict[str, Coordinate]:
    """versions.env's JVM_PACKAGE_<NAME>=group:artifact:version lines, in file order."""
    return {
        key: Coordinate.parse(value, f"versions.env {key}")
        for key, value in pins.items()
        if key.startswith(PACKAGE_PREFIX)
    }


def excluded(pins: dict[str, str]) -> dict[str, str]:
    """versions.env's JVM_EXCLUDE_<NAME>=group:artifact lines: group:artifact -> the key that excludes it."""
    out = {}
    for key, value in pins.items():
        if key.startswith(EXCLUDE_PREFIX):
            if not _ARTIFACT.match(value.strip()):
                raise JarError(
                    f"versions.env {key}={value!r} is not group:artifact (no version: the artifact is left out "
                    f"whatever version a pom names), e.g. software.amazon.awssdk:bundle"
                )
            out[value.strip()] = key
    return out


def repositories(value: str | None = None) -> list[str]:
    raw = os.environ.get("MLRT_MAVEN_REPOSITORIES", "") if value is None else value
    repos = [r.rstrip("/") for r in re.split(r"[\s,]+", raw) if r] or [MAVEN_CENTRAL]
    for repo in repos:
        parsed = urllib.parse.urlparse(repo)
        if parsed.scheme not in ("https", "http", "file"):
            raise JarError(f"MLRT_MAVEN_REPOSITORIES: {repo!r} is not an https://, http:// or file:// URL")
        if parsed.username or parsed.password:
            raise JarError(
                f"MLRT_MAVEN_REPOSITORIES: {parsed.hostname} carries credentials in its URL; put them in a netrc "
                f"file and point MLRT_MAVEN_NETRC at it (URLs end up in logs and in the images)"
            )
        if parsed.scheme == "file" and not Path(urllib.request.url2pathname(parsed.path)).is_dir():
            raise JarError(
                f"MLRT_MAVEN_REPOSITORIES: the local repository {parsed.path} does not exist; create it "
                f"(a Maven repository layout, e.g. from `mvn deploy` or a copy of ~/.m2/repository) or fix the path"
            )
    return repos


def credentials(repo: str) -> tuple[str, str] | None:
    path = os.environ.get("MLRT_MAVEN_NETRC")
    if not path:
        return None
    if not Path(path).is_file():
        raise JarError(f"MLRT_MAVEN_NETRC={path} is not a file; point it at a netrc file or unset it")
    entry = netrc.netrc(path).authenticators(urllib.parse.urlparse(repo).hostname or "")
    return (entry[0], entry[2] or "") if entry else None


def _open(repo: str, path: str):
    """GET repo/path. Returns the response, None for 'not there' (404, or a missing file), raises JarError for an
    unreachable repository or a refused login."""
    url = f"{repo}/{path}"
    if repo.startswith("file:"):
        local = Path(urllib.request.url2pathname(urllib.parse.urlparse(url).path))
        return local.open("rb") if local.is_file() else None
    request = urllib.request.Request(url, headers={"User-Agent": "mlrt-jars"})
    if login := credentials(repo):
        token = base64.b64encode(f"{login[0]}:{login[1]}".encode()).decode()
        request.add_header("Authorization", f"Basic {token}")
    try:
        return urllib.request.urlopen(request, timeout=TIMEOUT_S)
    except urllib.error.HTTPError as err:
        if err.code in (404, 410):
            return None
        if err.code in (401, 403):
            raise JarError(
                f"{repo} refused {path} ({err.code} {err.reason}); give credentials for "
                f"{urllib.parse.urlparse(repo).hostname} in the netrc file MLRT_MAVEN_NETRC names"
            ) from None
        raise JarError(f"{repo} answered {err.code} {err.reason} for {path}") from None
    except (urllib.error.URLError, TimeoutError, OSError) as err:
        reason = getattr(err, "reason", err)
        raise JarError(
            f"repository {repo} is unreachable ({reason}); check the URL and the network "
            f"(an unknown artifact would have been a 404)"
        ) from None


# ---- what Spark ships ------------------------------------------------------------------------------------


def _pyspark_sdist_hash(spark_version: str) -> str:
    text = (ROOT / "images" / "spark" / "requirements.lock").read_text()
    match = re.search(rf"^pyspark=={re.escape(spark_version)} \\\n\s+--hash=sha256:([0-9a-f]{{64}})", text, re.M)
    if not match:
        raise JarError(f"images/spark/requirements.lock pins no pyspark=={spark_version}; run `make lock` first")
    return match.group(1)


def spark_jars(spark_version: str) -> list[str]:
    """The jar file names of pyspark's $SPARK_HOME/jars, read from the pyspark sdist the spark image installs
    (downloaded once, checked against the spark lock's hash, cached)."""
    listing = cache_dir() / f"spark-jars-{spark_version}.txt"
    if listing.exists():
        return listing.read_text().split()
    sdist = cache_dir() / "pypi" / f"pyspark-{spark_version}.tar.gz"
    want = _pyspark_sdist_hash(spark_version)
    if not sdist.exists() or _sha256(sdist) != want:
        sdist.parent.mkdir(parents=True, exist_ok=True)
        index = urllib.request.Request(
            "https://pypi.org/simple/pyspark/", headers={"Accept": "application/vnd.pypi.simple.v1+json"}
        )
        with urllib.request.urlopen(index, timeout=TIMEOUT_S) as response:
            files = json.load(response)["files"]
        url = next(f["url"] for f in files if f["filename"] == f"pyspark-{spark_version}.tar.gz")
        print(f"jars: downloading the pyspark {spark_version} sdist (~450 MB) to list Spark's jars", file=sys.stderr)
        with urllib.request.urlopen(url, timeout=TIMEOUT_S) as response, sdist.open("wb") as out:
            shutil.copyfileobj(response, out, 1 << 20)
        if _sha256(sdist) != want:
            sdist.unlink()
            raise JarError(f"the pyspark {spark_version} sdist does not match the spark lock's sha256 {want}")
    names = []
    with tarfile.open(sdist, "r|gz") as tar:
        for member in tar:
            if re.search(r"/deps/jars/[^/]+\.jar$", member.name):
                names.append(member.name.rsplit("/", 1)[1])
    listing.write_text("\n".join(sorted(names)) + "\n")
    return sorted(names)


def spark_ships(artifact: str, jars: list[str]) -> str | None:
    """The version of `artifact` in Spark's jars (file names are artifact-version[-classifier].jar), or None."""
    for name in jars:
        rest = name[len(artifact) + 1 : -4] if name.startswith(artifact + "-") else ""
        if rest[:1].isdigit():
            return rest
    return None


def version_key(version: str) -> tuple:
    """Order Maven versions: numeric parts as numbers; a qualifier (RC1, M2, beta) sorts before the release."""
    parts = re.findall(r"\d+|[A-Za-z]+", version)
    return tuple((2, int(p)) if p.isdigit() else (0, p.lower()) for p in parts) + ((1,),)


def newer_minor(wanted: str, shipped: str) -> bool:
    """True when `wanted` is a newer major.minor than `shipped` (a newer patch counts as compatible)."""
    return version_key(wanted)[:2] > version_key(shipped)[:2]


# ---- resolution -------------------------------------------------------------------------------------------


def maven() -> str:
    found = shutil.which("mvn")
    if found:
        return found
    if os.geteuid() == 0 and shutil.which("apt-get"):
        print("jars: installing Debian's maven (the jar lock's resolver)", file=sys.stderr)
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        subprocess.run(["apt-get", "update", "-qq"], check=True, env=env)
        subprocess.run(["apt-get", "install", "-y", "-qq", "--no-install-recommends", "maven"], check=True, env=env)
        if found := shutil.which("mvn"):
            return found
    raise JarError("Maven (mvn) is needed to resolve the jar lock; install it (apt-get install maven)")


def settings_xml(repos: list[str]) -> str:
    """Maven settings naming exactly our repositories: the first replaces `central`, so nothing else is asked."""
    ids = ["central"] + [f"mlrt-{i}" for i in range(1, len(repos))]
    servers, entries = [], []
    for repo_id, repo in zip(ids, repos, strict=True):
        entries.append(f"<repository><id>{repo_id}</id><url>{escape(repo)}</url></repository>")
        if login := credentials(repo):
            servers.append(
                f"<server><id>{repo_id}</id><username>{escape(login[0])}</username>"
                f"<password>{escape(login[1])}</password></server>"
            )
    repos_xml = "".join(entries)
    return (
        '<settings xmlns="http://maven.apache.org/SETTINGS/1.0.0">'
        f"<localRepository>{escape(str(cache_dir() / 'maven'))}</localRepository>"
        f"<servers>{''.join(servers)}</servers>"
        "<profiles><profile><id>mlrt</id>"
        f"<repositories>{repos_xml}</repositories>"
        f"<pluginRepositories>{repos_xml.replace('repository>', 'pluginRepository>')}</pluginRepositories>"
        "</profile></profiles><activeProfiles><activeProfile>mlrt</activeProfile></activeProfiles></settings>"
    )


def pom_xml(packages: list[Coordinate]) -> str:
    deps = "".join(
        f"<dependency><groupId>{c.group}</groupId><artifactId>{c.artifact}</artifactId>"
        f"<version>{c.version}</version></dependency>"
        for c in packages
    )
    return (
        '<project xmlns="http://maven.apache.org/POM/4.0.0"><modelVersion>4.0.0</modelVersion>'
        "<groupId>org.mlrt</groupId><artifactId>jar-lock</artifactId><version>0</version>"
        f"<packaging>pom</packaging><dependencies>{deps}</dependencies></project>"
    )


def maven_tree(packages: list[Coordinate], repos: list[str]) -> dict:
    """Maven's dependency tree (JSON) of the declared packages: scopes, optional and test dependencies and version
    conflicts as Maven decides them."""
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        (work / "pom.xml").write_text(pom_xml(packages))
        settings = work / "settings.xml"
        settings.touch(mode=0o600)
        settings.write_text(settings_xml(repos))
        cmd = [maven(), "-B", "-q", "-C", "-Dstyle.color=never", "-s", str(settings), "-f", str(work / "pom.xml")]
        cmd += [f"{DEPENDENCY_PLUGIN}:tree", "-DoutputType=json", f"-DoutputFile={work / 'tree.json'}"]
        done = subprocess.run(cmd, capture_output=True, text=True)
        if done.returncode != 0:
            errors = [line for line in done.stdout.splitlines() if line.startswith("[ERROR]") and line[8:].strip()][:3]
            raise JarError(
                "Maven could not resolve the JVM packages:\n  " + "\n  ".join(errors or [done.stdout[-2000:]])
            )
        return json.loads((work / "tree.json").read_text())


def classify(tree: dict, jars: list[str], exclude: dict[str, str] | None = None) -> tuple[dict[str, dict], list[dict]]:
    """Walk Maven's tree: keep what Spark lacks, leave out (with the reason) what `exclude` names (group:artifact
    -> the versions.env key), what Spark ships and everything under those, test frameworks and second logging
    bindings. Fails on a newer major.minor than Spark ships."""
    exclude = exclude or {}
    kept: dict[str, dict] = {}
    left_out: list[dict] = []

    def walk(node: dict, declared_by: str) -> None:
        coord = Coordinate(node["groupId"], node["artifactId"], node["version"])
        key = f"{coord.group}:{coord.artifact}"
        reason = None
        if key in exclude:
            reason = f"excluded by versions.env {exclude[key]}"
        elif node.get("type", "jar") != "jar" or node.get("classifier"):
            reason = f"not a plain jar (type {node.get('type')}, classifier {node.get('classifier') or '-'})"
        elif coord.artifact in LOGGING_BINDINGS:
            reason = "a second logging binding (Spark logs through log4j-slf4j2-impl)"
        elif coord.group in LOGGING_GROUPS and (shipped := spark_ships(coord.artifact, jars)):
            reason = f"logging comes from Spark: it ships {coord.artifact}-{shipped}.jar"
        elif shipped := spark_ships(coord.artifact, jars):
            if newer_minor(coord.version, shipped):
                raise JarError(
                    f"{declared_by} needs {coord} but Spark ships {coord.artifact}-{shipped}.jar; two copies would "
                    f"clash on the classpath: pick a {declared_by.rsplit(':', 1)[0]} version built for this Spark"
                )
            reason = f"Spark ships {coord.artifact}-{shipped}.jar"
        elif any(coord.artifact.startswith(t) for t in TEST_FRAMEWORKS):
            reason = "a test framework published as a compile dependency"
        if reason:
            left_out.append({"coordinate": str(coord), "pulled_in_by": declared_by, "why": reason})
            return  # what it depends on comes with it (Spark) or is not wanted either
        if key not in kept:
            kept[key] = {"coordinate": str(coord), "pulled_in_by": [declared_by]}
        elif declared_by not in kept[key]["pulled_in_by"]:
            kept[key]["pulled_in_by"].append(declared_by)
        for child in node.get("children", []):
            walk(child, declared_by)

    for top in tree.get("children", []):
        walk(top, f"{top['groupId']}:{top['artifactId']}:{top['version']}")
    return kept, left_out


def probe(coord: Coordinate, repos: list[str]) -> dict[str, str]:
    """Each repository's answer for the package's pom: 'found' or 'not found (404)'."""
    answers = {}
    for repo in repos:
        response = _open(repo, coord.path("pom"))
        if response is not None:
            response.close()
            return {**answers, repo: "found"}
        answers[repo] = "not found" if repo.startswith("file:") else "404 Not Found"
    return answers


def inputs_stamp(pins: dict[str, str]) -> str:
    lines = [f"spark={pins['SPARK_VERSION']}"] + [f"{k}={v}" for k, v in declared(pins).items()]
    lines += [f"{k}={v}" for v, k in excluded(pins).items()]
    return hashlib.sha256("\n".join(lines).encode()).hexdigest()


def lock(pins: dict[str, str], repos: list[str], spark: list[str] | None = None) -> dict:
    """The jar lock's content. `spark`: the file names in $SPARK_HOME/jars (default: read from pyspark's sdist)."""
    packages = declared(pins)
    spark = spark_jars(pins["SPARK_VERSION"]) if spark is None else spark
    entries, resolvable = [], []
    for key, coord in packages.items():
        answers = probe(coord, repos)
        if "found" in answers.values():
            entries.append({"key": key, "coordinate": str(coord), "status": "resolved"})
            resolvable.append(coord)
        else:
            entries.append(
                {
                    "key": key,
                    "coordinate": str(coord),
                    "status": "unresolved",
                    "reason": "no configured repository serves it",
                    "asked": answers,
                }
            )
            print(f"jars: {coord}: not served by {', '.join(repos)}; recorded as unresolved", file=sys.stderr)
    exclude = excluded(pins)
    kept, left_out = classify(maven_tree(resolvable, repos), spark, exclude) if resolvable else ({}, [])
    jars = []
    for item in sorted(kept.values(), key=lambda i: i["coordinate"]):
        coord = Coordinate.parse(item["coordinate"])
        path = download(coord, repos, expect=None)
        jars.append(
            {
                "coordinate": str(coord),
                "file": coord.file,
                "path": coord.path(),
                "sha256": _sha256(path),
                "size": path.stat().st_size,
                "pulled_in_by": item["pulled_in_by"],
            }
        )
    return {
        "comment": "Generated by `make lock` (tooling/jars.py) from versions.env; do not edit.",
        "inputs_sha256": inputs_stamp(pins),
        "spark": pins["SPARK_VERSION"],
        "resolved_against": repos,
        "packages": entries,
        "jars": jars,
        "left_out": sorted(left_out, key=lambda i: i["coordinate"]),
    }


# ---- download and verification ----------------------------------------------------------------------------


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def download(coord: Coordinate, repos: list[str], expect: str | None) -> Path:
    """The jar in the local cache, downloaded from the first repository that has it. With `expect`, its sha256
    must match (else JarError naming the jar); without (at lock time), the repository's .sha1 must."""
    cached = cache_dir() / "jars" / coord.file
    if expect and cached.exists() and _sha256(cached) == expect:
        return cached
    for repo in repos:
        response = _open(repo, coord.path())
        if response is None:
            continue
        cached.parent.mkdir(parents=True, exist_ok=True)
        part = cached.with_suffix(".part")
        with response, part.open("wb") as out:
            shutil.copyfileobj(response, out, 1 << 20)
        got = _sha256(part)
        if expect and got != expect:
            part.unlink()
            raise JarError(
                f"{coord.file} from {repo} has sha256 {got}, the jar lock says {expect}; the repository serves "
                f"a different file: fix the mirror, or run `make lock` if the change is intended"
            )
        if not expect:
            sha1 = _open(repo, coord.path("jar.sha1"))
            if sha1 is not None:
                with sha1:
                    published = sha1.read().decode().split()[0].lower()
                actual = hashlib.sha1(part.read_bytes()).hexdigest()
                if published != actual:
                    part.unlink()
                    raise JarError(f"{coord.file} from {repo} does not match its published .sha1 ({published})")
        part.replace(cached)
        return cached
    raise JarError(f"{coord} (in the jar lock) is served by none of {', '.join(repos)}; run `make lock`")


def read_lock(path: Path = LOCK) -> dict:
    if not path.exists():
        raise JarError(f"{path.relative_to(ROOT)} is missing; run `make lock`")
    return json.loads(path.read_text())


def check(pins: dict[str, str], path: Path = LOCK) -> None:
    data = read_lock(path)
    if data.get("inputs_sha256") != inputs_stamp(pins):
        raise JarError(
            f"{path.relative_to(ROOT)} is stale against versions.env (JVM_PACKAGE_*, JVM_EXCLUDE_* or SPARK_VERSION "
            f"changed); run `make lock`"
        )


def unresolved(data: dict) -> list[dict]:
    """The declared packages a jar lock records as unresolved (not in the images)."""
    return [p for p in data["packages"] if p["status"] != "resolved"]


def _empty(dest: Path) -> None:
    """dest exists and holds no jar (a destination holds exactly what one call put there)."""
    dest.mkdir(parents=True, exist_ok=True)
    for old in dest.glob("*.jar"):
        old.unlink()


def fetch(dest: Path, repos: list[str], path: Path = LOCK) -> dict:
    """Put exactly the locked jars into dest (verified); return the lock."""
    data = read_lock(path)
    _empty(dest)
    for jar in data["jars"]:
        source = download(Coordinate.parse(jar["coordinate"]), repos, expect=jar["sha256"])
        shutil.copyfile(source, dest / jar["file"])
    return data


@contextmanager
def _cache(path: Path):
    """cache_dir() is `path` inside the block (a resolution that must not share Maven's local repository)."""
    before = os.environ.get("MLRT_CACHE_DIR")
    os.environ["MLRT_CACHE_DIR"] = str(path)
    try:
        yield
    finally:
        if before is None:
            del os.environ["MLRT_CACHE_DIR"]
        else:
            os.environ["MLRT_CACHE_DIR"] = before


def session(
    dest: Path, repos: list[str], path: Path = LOCK, pins: dict[str, str] | None = None, spark: list[str] | None = None
) -> list[str]:
    """Jars that give a Spark session (spark.jars / --jars, which Spark ships to its executors) the declared packages
    the images lack: those the jar lock records unresolved, resolved from `repos` as `make lock` would (what Spark
    ships and what the images already carry left out), verified against each repository's .sha1, into dest. Writes
    no lock and touches no image; its own cache, so that jars from other repositories never mix into the lock's.
    Returns the coordinates of the packages they provide."""
    image = read_lock(path)
    missing = {p["key"] for p in unresolved(image)}
    _empty(dest)
    if not missing:
        return []
    pins = versions.load() if pins is None else pins
    pins = {k: v for k, v in pins.items() if not k.startswith(PACKAGE_PREFIX) or k in missing}
    spark = spark_jars(pins["SPARK_VERSION"]) if spark is None else spark
    with _cache(cache_dir() / "session-jars"):
        data = lock(pins, repos, spark)
        if left := unresolved(data):
            raise JarError(f"{', '.join(p['coordinate'] for p in left)}: served by none of {', '.join(repos)}")
        have = {jar["file"] for jar in image["jars"]}
        for jar in data["jars"]:
            if jar["file"] not in have:
                shutil.copyfile(download(Coordinate.parse(jar["coordinate"]), repos, jar["sha256"]), dest / jar["file"])
    return [p["coordinate"] for p in data["packages"]]


def summary(data: dict) -> str:
    size = sum(j["size"] for j in data["jars"])
    text = f"{len(data['jars'])} jars, {size / 1e6:.1f} MB"
    missing = [p["coordinate"] for p in unresolved(data)]
    return f"{text}; unresolved: {', '.join(missing)}" if missing else text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("lock")
    sub.add_parser("check")
    fetch_parser = sub.add_parser("fetch")
    fetch_parser.add_argument("dest", type=Path)
    session_parser = sub.add_parser("session")
    session_parser.add_argument("dest", type=Path)
    args = parser.parse_args()
    try:
        pins = versions.load()
        if args.command == "lock":
            data = lock(pins, repositories())
            LOCK.write_text(json.dumps(data, indent=2) + "\n")
            print(f"jars: wrote {LOCK.relative_to(ROOT)}: {summary(data)}", file=sys.stderr)
        elif args.command == "check":
            check(pins)
            print("jars: the jar lock is up to date", file=sys.stderr)
        elif args.command == "session":
            given = session(args.dest, repositories())
            files = list(args.dest.glob("*.jar"))
            print(f"jars: {len(files)} jars for a session's spark.jars in {args.dest}, giving: {', '.join(given)}",
                  file=sys.stderr)  # fmt: skip
        else:
            data = fetch(args.dest, repositories())
            print(f"jars: {summary(data)} verified into {args.dest}", file=sys.stderr)
            for package in unresolved(data):
                print(f"jars: NOT in the image: {package['coordinate']} ({package['reason']})", file=sys.stderr)
    except JarError as err:
        raise SystemExit(f"jars: ERROR: {err}") from None


if __name__ == "__main__":
    main()
