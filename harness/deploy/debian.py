"""The base of the harness's own images: ``debootstrap --variant=minbase bookworm`` from this
machine's own apt mirror (or ``HARNESS_DEBIAN_MIRROR``), kept as a tarball in the image cache so
that an emptied Docker store costs an import, not a second debootstrap."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

from harness.deploy.image_cache import run_step
from harness.errors import EnvironmentProblem

SUITE = "bookworm"

VARIANT = "minbase"

# iproute2 and iptables let a fault act from inside a container's own namespace; about 5 MB.
BASE_PACKAGES = ("ca-certificates", "iproute2", "iptables")

MIRROR_ENV = "HARNESS_DEBIAN_MIRROR"

DEFAULT_MIRROR = "http://deb.debian.org/debian"

APT_ETC = Path("/etc/apt")

DEBOOTSTRAP_TIMEOUT_S = 1800.0


def mirror(etc: Path = APT_ETC) -> str:
    """The Debian mirror to debootstrap from: ``HARNESS_DEBIAN_MIRROR``, else the first apt
    source of this machine that serves the bookworm suite, else one whose address ends in
    /debian, else deb.debian.org."""
    given = os.environ.get(MIRROR_ENV, "").strip()
    if given:
        return given
    sources = list(_apt_sources(etc))
    for uri, suites in sources:
        if SUITE in suites:
            return uri
    for uri, _ in sources:
        if uri.rstrip("/").endswith("/debian"):
            return uri
    return DEFAULT_MIRROR


def debootstrap_args() -> list[str]:
    """debootstrap's arguments, but the target folder (which goes before the mirror)."""
    return [f"--variant={VARIANT}", f"--include={','.join(BASE_PACKAGES)}", SUITE, mirror()]


def debootstrap(tarball: Path, say: Callable[[str], None]) -> None:
    """Make the base's root file system and keep it as a tarball; the folder does not stay."""
    found = shutil.which("debootstrap") or shutil.which("debootstrap", path="/usr/sbin:/sbin")
    if found is None:
        raise EnvironmentProblem(
            "debootstrap is not installed; it makes the base of the harness's images: "
            "apt-get install -y debootstrap"
        )
    if os.geteuid() != 0:
        raise EnvironmentProblem(
            "the base of the harness's images is made with debootstrap, which needs root: "
            f"run `harness images` once as root, or put a root file system's tarball at {tarball}"
        )
    tarball.parent.mkdir(parents=True, exist_ok=True)
    log = tarball.parent / "base.build.log"
    log.write_text("")
    # Beside the cache, not in /tmp, which may be a small tmpfs or mounted noexec.
    scratch = Path(tempfile.mkdtemp(prefix="debootstrap-", dir=tarball.parent))
    try:
        root = scratch / "root"
        *options, suite, source = debootstrap_args()
        argv = [found, *options, suite, str(root), source]
        say(f"$ {' '.join(argv)}  (about half a minute)")
        run_step(argv, log, "debootstrap of the base image", DEBOOTSTRAP_TIMEOUT_S)
        say(f"writing {tarball}")
        partial = scratch / "base.tar"
        tar = ["tar", "--numeric-owner", "-C", str(root), "-cf", str(partial), "."]
        run_step(tar, log, "tar", DEBOOTSTRAP_TIMEOUT_S)
        os.replace(partial, tarball)
    finally:
        _remove_tree(scratch)


def _remove_tree(folder: Path) -> None:
    """Remove a debootstrap folder, after unmounting whatever a failed debootstrap left mounted
    inside it (its /proc, /sys): removing through a mount would reach the host's files."""
    prefix = str(folder.resolve())
    for point in sorted(_mounts_under(prefix), key=len, reverse=True):
        subprocess.run(["umount", "-l", point], capture_output=True, check=False)
    left = _mounts_under(prefix)
    if left:
        raise EnvironmentProblem(
            f"{folder} still has file systems mounted ({', '.join(left)}); unmount them and "
            "remove it by hand"
        )
    shutil.rmtree(folder, ignore_errors=True)


def _mounts_under(prefix: str) -> list[str]:
    try:
        lines = Path("/proc/self/mounts").read_text().splitlines()
    except OSError:
        return []
    points = []
    for line in lines:
        fields = line.split()
        if len(fields) < 2:
            continue
        point = fields[1].encode().decode("unicode_escape")  # \040 and friends
        if point == prefix or point.startswith(prefix + "/"):
            points.append(point)
    return points


def _apt_sources(etc: Path) -> Iterator[tuple[str, list[str]]]:
    """(URI, suites) of each enabled deb source: the classic one-line format and deb822."""
    files = [etc / "sources.list"]
    parts = etc / "sources.list.d"
    if parts.is_dir():
        files += sorted(p for p in parts.iterdir() if p.suffix in (".list", ".sources"))
    for path in files:
        try:
            text = path.read_text(errors="replace")
        except OSError:
            continue
        if path.suffix == ".sources":
            yield from _deb822(text)
        else:
            yield from _one_line(text)


def _one_line(text: str) -> Iterator[tuple[str, list[str]]]:
    for raw in text.splitlines():
        words = raw.split("#", 1)[0].split()
        if not words or words[0] != "deb":
            continue
        words = words[1:]
        if words and words[0].startswith("["):  # [arch=amd64 signed-by=...]
            while words and not words[0].endswith("]"):
                words = words[1:]
            words = words[1:]
        if len(words) >= 2:
            yield words[0], [words[1]]


def _deb822(text: str) -> Iterator[tuple[str, list[str]]]:
    stanzas: list[dict[str, str]] = [{}]
    key = ""
    for raw in text.splitlines():
        if raw.startswith("#"):
            continue
        if not raw.strip():
            stanzas.append({})
            continue
        if raw[0] in " \t" and key:  # a continuation line
            stanzas[-1][key] += " " + raw.strip()
            continue
        key, _, value = raw.partition(":")
        key = key.strip().lower()
        stanzas[-1][key] = value.strip()
    for stanza in stanzas:
        if "deb" not in stanza.get("types", "").split():
            continue
        if stanza.get("enabled", "yes").lower() == "no":
            continue
        suites = stanza.get("suites", "").split()
        for uri in stanza.get("uris", "").split():
            yield uri, suites
