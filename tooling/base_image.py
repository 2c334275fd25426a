"""Make sure the FROM image of images/base exists locally.

With a registry the image is pulled as usual. Without one (air-gapped or registry-less hosts) it is created
from Debian packages with debootstrap (minbase variant) and imported under the same tag, so the Dockerfiles
are the same in both cases. The suite, mirror and date used are recorded as image labels.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from tooling import versions

DEFAULT_MIRROR = "http://deb.debian.org/debian"
# What the official slim image leaves out, so the imported base is as lean as the one from the registry.
KEEP_FILES = {"copyright", "locale.alias", "lock"}
DPKG_EXCLUDES = """path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
path-include /usr/share/locale/locale.alias
path-exclude /usr/share/lintian/*
"""


def log(message: str) -> None:
    print(f"base-image: {message}", file=sys.stderr, flush=True)


def image_exists(tag: str) -> bool:
    return subprocess.run(["docker", "image", "inspect", tag], capture_output=True).returncode == 0


def try_pull(tag: str, timeout: int) -> bool:
    try:
        result = subprocess.run(["docker", "pull", tag], capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        log(f"pulling {tag} timed out after {timeout}s")
        return False
    if result.returncode != 0:
        log(f"cannot pull {tag}: {result.stderr.strip().splitlines()[-1] if result.stderr.strip() else 'error'}")
    return result.returncode == 0


def debootstrap_import(tag: str, suite: str, mirror: str) -> None:
    if os.geteuid() != 0:
        sys.exit(
            f"base-image: ERROR: creating {tag} with debootstrap needs root; re-run as root or make {tag} "
            "available (docker pull / docker load)."
        )
    if not shutil.which("debootstrap"):
        if not shutil.which("apt-get"):
            sys.exit(
                "base-image: ERROR: debootstrap is missing and this host has no apt-get to install it; "
                f"install debootstrap or load {tag} yourself."
            )
        log("installing debootstrap from Debian packages")
        subprocess.run(["apt-get", "update", "-qq"], check=True)
        subprocess.run(
            ["apt-get", "install", "-y", "-qq", "--no-install-recommends", "debootstrap"],
            check=True,
            env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"},
        )
    date = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    with tempfile.TemporaryDirectory(prefix="mlrt-rootfs-") as tmp:
        rootfs = Path(tmp) / "rootfs"
        log(f"debootstrap --variant=minbase {suite} from {mirror} (a few minutes)")
        subprocess.run(
            ["debootstrap", "--variant=minbase", suite, str(rootfs), mirror], check=True, stdout=subprocess.DEVNULL
        )
        (rootfs / "etc/dpkg/dpkg.cfg.d/docker").write_text(DPKG_EXCLUDES)
        (rootfs / "etc/apt/sources.list").write_text(
            f"deb {mirror} {suite} main\n"
            f"deb {mirror} {suite}-updates main\n"
            f"deb {mirror.replace('/debian', '/debian-security')} {suite}-security main\n"
        )
        # Drop package caches and documentation files, keeping the directories (packages such as the JRE
        # expect /usr/share/man/man1 to exist) and the copyright files.
        for junk in (
            "var/cache/apt/archives",
            "var/lib/apt/lists",
            "usr/share/doc",
            "usr/share/man",
            "usr/share/info",
            "usr/share/locale",
        ):
            for path in (rootfs / junk).rglob("*"):
                if path.is_file() and not path.is_symlink() and path.name not in KEEP_FILES:
                    path.unlink()
        tar = subprocess.Popen(["tar", "-C", str(rootfs), "--numeric-owner", "-c", "."], stdout=subprocess.PIPE)
        subprocess.run(
            [
                "docker",
                "import",
                "--change",
                'CMD ["bash"]',
                "--change",
                "LABEL org.mlrt.base.source=debootstrap",
                "--change",
                f"LABEL org.mlrt.base.suite={suite}",
                "--change",
                f"LABEL org.mlrt.base.mirror={mirror}",
                "--change",
                f"LABEL org.mlrt.base.created={date}",
                "-",
                tag,
            ],
            stdin=tar.stdout,
            check=True,
            stdout=subprocess.DEVNULL,
        )
        tar.stdout.close()
        if tar.wait() != 0:
            sys.exit("base-image: ERROR: packing the debootstrap root filesystem failed")
    log(f"created {tag} from Debian {suite} ({mirror}) on {date}")


def main() -> None:
    pins = versions.load()
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tag", default=pins["BASE_IMAGE"])
    parser.add_argument("--suite", default=pins["DEBIAN_SUITE"])
    parser.add_argument("--mirror", default=os.environ.get("MLRT_DEBIAN_MIRROR", DEFAULT_MIRROR))
    parser.add_argument("--pull-timeout", type=int, default=60)
    args = parser.parse_args()
    if image_exists(args.tag):
        log(f"{args.tag} present")
        return
    if try_pull(args.tag, args.pull_timeout):
        log(f"pulled {args.tag}")
        return
    debootstrap_import(args.tag, args.suite, args.mirror)


if __name__ == "__main__":
    main()
