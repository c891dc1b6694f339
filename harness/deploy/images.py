"""The images the docker deployer runs: public ones where they can be had, else built on this
machine and cached by their content.

Each kind that has a public image (:data:`PUBLIC`) takes it when the engine has it or can pull
it (:func:`provide` says in which order, :func:`source` how ``HARNESS_IMAGES`` narrows it).
Where no registry answers, every image starts from a Debian base made on this machine:
``debootstrap --variant=minbase bookworm`` from the machine's own apt mirror, imported as
``harness/base``. The other kinds are ``docker build``s on top of it: ``redis`` (Debian's
redis-server), ``python`` (Debian's python3 with a venv at :data:`PYTHON` holding the reference
services' packages, installed offline from wheels downloaded on the host, at the versions the
harness's own environment has), ``toxiproxy`` (the toxiproxy-server binary the harness uses),
``rabbitmq`` and ``nats`` (Debian's rabbitmq-server and nats-server), ``kafka`` (Debian's
Java 17 runtime, the Kafka jars ``harness setup`` fetched and a ``kafka-server`` launcher) and
``prometheus`` (the harness's prometheus binary).

Each image is tagged ``harness/<kind>:<first 12 hex of its recipe hash>``; the recipe hash covers
everything that decides the image's content, so :func:`ensure` is one lookup when the image is
there, and a changed recipe gives a new tag instead of a stale image. The debootstrap tarball is
kept under ``components.home()/images``, so an emptied Docker store costs an import (seconds),
not a second debootstrap. A file lock per kind keeps two harnesses from building the same image
at once.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import importlib.metadata
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from email.parser import Parser
from pathlib import Path
from typing import Any

import docker
import docker.errors
import requests
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.tags import Tag, compatible_tags, cpython_tags
from packaging.utils import canonicalize_name, parse_wheel_filename

from harness import components
from harness.errors import EnvironmentProblem

KINDS = ("base", "redis", "python", "toxiproxy", "rabbitmq", "nats", "kafka", "prometheus")
PYTHON = "/opt/harness/bin/python"  # the interpreter inside the "python" image (a venv)

LABEL = "harness.image"  # every image carries its kind under this label
RECIPE_LABEL = "harness.recipe"  # and its full recipe hash
SUITE = "bookworm"
VARIANT = "minbase"
# iproute2 and iptables let a fault act from inside a container's own namespace; about 5 MB.
BASE_PACKAGES = ("ca-certificates", "iproute2", "iptables")
MIRROR_ENV = "HARNESS_DEBIAN_MIRROR"
# Kinds that are one binary of the harness's components, copied in.
BINARIES = {"toxiproxy": "toxiproxy-server", "prometheus": "prometheus"}
SOURCE_ENV = "HARNESS_IMAGES"
SOURCES = ("auto", "public", "built")
# The public image of each kind, used where the engine has it or can pull it; a kind without
# one (python: the services' packages) is always built, FROM the base, public or not.
# Their entrypoints are bypassed (see harness.deploy.containers), so each needs its program on the
# PATH as the harness's own build has it.
PUBLIC = {
    "base": "debian:bookworm-slim",
    "redis": "redis:7.0-bookworm",
    "toxiproxy": f"ghcr.io/shopify/toxiproxy:{components.TOXIPROXY_VERSION}",
    "prometheus": f"prom/prometheus:v{components.PROMETHEUS_VERSION}",
    "nats": "nats:2.10-alpine",  # nats-server on the PATH, unlike the scratch one
    # The brokers' scripts look for the servers where these images have them too.
    "rabbitmq": "rabbitmq:3.13",
    "kafka": f"apache/kafka:{components.KAFKA_VERSION}",
}
DEFAULT_MIRROR = "http://deb.debian.org/debian"
APT_ETC = Path("/etc/apt")
# What the reference services (targets/services and each broker's folder) import.
SERVICE_PACKAGES = (
    "redis", "hiredis", "httptools", "uvloop", "prometheus-client",
    "httpx", "aio-pika", "pika", "nats-py", "confluent-kafka",
)  # fmt: skip
KAFKA_LIBS = "/opt/kafka/libs"  # where the "kafka" image keeps the Kafka jars
# Bookworm's python3 is 3.11.2: dependency markers are evaluated for it, not for the host's
# Python (redis needs async-timeout below 3.11.3, which a newer host does not have installed).
CONTAINER_PYTHON = (3, 11, 2)
# Raised whenever the way an image is made changes in a way its recipe texts do not show.
RECIPE_VERSION = 1
# A build's log is read as it comes; this long without a line ends it.
BUILD_IDLE_TIMEOUT_S = 900
DEBOOTSTRAP_TIMEOUT_S = 1800.0
PIP_TIMEOUT_S = 600.0
_LOG_TAIL_LINES = 25

APT_INSTALL = (
    "RUN apt-get update \\\n"
    " && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends {packages} \\\n"
    " && apt-get clean && rm -rf /var/lib/apt/lists/*\n"
)
DOCKERFILES = {
    "redis": "FROM {base}\n" + APT_INSTALL.format(packages="redis-server"),
    "python": "FROM {base}\n"
    + APT_INSTALL.format(packages="python3 python3-venv")
    + "COPY wheels /tmp/wheels\n"
    f"RUN python3 -m venv {Path(PYTHON).parent.parent} \\\n"
    f" && {PYTHON} -m pip install --no-index --no-cache-dir --disable-pip-version-check \\\n"
    "      --find-links /tmp/wheels /tmp/wheels/*.whl \\\n"
    " && rm -rf /tmp/wheels\n",
    # Where the public image has it.
    "toxiproxy": "FROM {base}\nCOPY toxiproxy-server /toxiproxy\n",
    "prometheus": "FROM {base}\nCOPY prometheus /bin/prometheus\n",
    # No init system: policy-rc.d keeps the package from starting its service in the build.
    "rabbitmq": "FROM {base}\n"
    "RUN printf '#!/bin/sh\\nexit 101\\n' > /usr/sbin/policy-rc.d \\\n"
    " && chmod +x /usr/sbin/policy-rc.d\n" + APT_INSTALL.format(packages="rabbitmq-server"),
    "nats": "FROM {base}\n" + APT_INSTALL.format(packages="nats-server"),
    # The jars the harness fetched from Maven Central, and a launcher like the host's.
    "kafka": "FROM {base}\n"
    + APT_INSTALL.format(packages="openjdk-17-jre-headless")
    + f"COPY kafka/libs {KAFKA_LIBS}\n"
    "COPY kafka/kafka-server /usr/local/bin/kafka-server\n"
    "RUN chmod 755 /usr/local/bin/kafka-server\n",
}


@dataclass(frozen=True)
class Image:
    """What :func:`provide` did for one kind."""

    kind: str
    tag: str
    how: str  # found (the engine had it), pulled, or built
    seconds: float  # the time ensuring it took, building included


@dataclass(frozen=True)
class Recipe:
    """Everything that decides an image's content, and the tag that names it."""

    kind: str
    # The Dockerfile of a built kind; for the base, the debootstrap command (without its
    # target folder) and the changes the import applies.
    text: str
    # Files the build context holds: its name there -> the file on this machine.
    files: dict[str, Path] = field(default_factory=dict)
    # What stands for each file's content in the hash (a wheel's name, a binary's sha256).
    identities: dict[str, str] = field(default_factory=dict)

    @property
    def digest(self) -> str:
        document = {
            "version": RECIPE_VERSION,
            "kind": self.kind,
            "text": self.text,
            "files": self.identities,
        }
        return hashlib.sha256(json.dumps(document, sort_keys=True).encode()).hexdigest()

    @property
    def tag(self) -> str:
        return f"harness/{self.kind}:{self.digest[:12]}"


def connect(timeout: float = 120) -> docker.DockerClient:
    """A ``docker.DockerClient`` for the engine of this machine (``DOCKER_HOST`` and friends),
    or an error that says how to start one."""
    try:
        client = docker.from_env(timeout=timeout)
        client.ping()
    except (docker.errors.DockerException, requests.RequestException) as error:
        sudo = "" if os.geteuid() == 0 else "sudo "
        raise EnvironmentProblem(
            f"the Docker engine is not reachable ({error}); start it as root with "
            f"`{sudo}dockerd > {components.home() / 'dockerd.log'} 2>&1 &` (on Debian it is "
            f"the docker.io package: {sudo}apt-get install -y docker.io), or point DOCKER_HOST "
            "at a running one"
        ) from error
    return client


def ensure(
    client: docker.DockerClient, kind: str, say: Callable[[str], None] = lambda _: None
) -> str:
    """The tag of a ready image of this kind, built now if no image with the same recipe exists."""
    return provide(client, kind, say).tag


def provide(
    client: docker.DockerClient, kind: str, say: Callable[[str], None] = lambda _: None
) -> Image:
    """As :func:`ensure`, saying also how the image was had and how long that took.

    In the order of :func:`source`'s policy: the kind's public image if the engine has it;
    the harness's own build of the same recipe if the engine has that; the public image
    pulled; the harness's own, built now."""
    if kind not in KINDS:
        raise ValueError(f"unknown image kind {kind!r}; the kinds are {', '.join(KINDS)}")
    started = time.monotonic()
    policy = source()
    public = PUBLIC.get(kind) if policy != "built" else None

    def had(tag: str, how: str) -> Image:
        return Image(kind, tag, how, time.monotonic() - started)

    if public is not None and _exists(client, public):
        return had(public, "found")
    if public is not None and policy == "public":
        return had(_pull(client, public, say, required=True), "pulled")
    base = provide(client, "base", say).tag if kind != "base" else ""
    recipe = _recipe(kind, say, base)
    if _exists(client, recipe.tag):
        return had(recipe.tag, "found")
    if public is not None and _pull(client, public, say, required=False):
        return had(public, "pulled")
    with _locked(kind, say):
        if _exists(client, recipe.tag):  # another harness has built it meanwhile
            return had(recipe.tag, "found")
        if kind == "base":
            _import_base(client, recipe, say)
        else:
            _build(client, recipe, say)
        return had(recipe.tag, "built")


def own(image: str) -> bool:
    """Whether an image is one of the harness's kinds, built here or public."""
    return image.startswith("harness/") or image in PUBLIC.values()


def source() -> str:
    """Where images come from (``HARNESS_IMAGES``): ``auto`` (the default) takes a kind's
    public image when the engine has it or can pull it and builds the harness's own when not;
    ``public`` never builds a kind that has a public image; ``built`` never pulls."""
    policy = os.environ.get(SOURCE_ENV, "auto").strip() or "auto"
    if policy not in SOURCES:
        raise EnvironmentProblem(
            f"{SOURCE_ENV}={policy!r} is not one of {', '.join(SOURCES)} (where the docker "
            "deployer's images come from)"
        )
    return policy


def _pull(client: Any, image: str, say: Callable[[str], None], required: bool) -> str:
    """Pull a public image; its name, or "" when it cannot be had and was not ``required``."""
    say(f"pulling {image}")
    repository, _, tag = image.rpartition(":")
    try:
        client.images.pull(repository, tag=tag)
    except (docker.errors.DockerException, requests.RequestException) as error:
        if required:
            raise EnvironmentProblem(
                f"pulling {image} failed ({error}); with {SOURCE_ENV}=auto the harness "
                "builds its own image instead when a pull fails"
            ) from error
        say(f"cannot pull {image}; building the harness's own instead")
        return ""
    return image


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


def images_dir() -> Path:
    """Where the base tarball, the wheels, the build logs and the locks are kept."""
    return components.home() / "images"


# --- recipes ------------------------------------------------------------------------------


def _recipe(kind: str, say: Callable[[str], None], base: str = "") -> Recipe:
    """The recipe of a kind; ``base`` is the image a built kind starts FROM."""
    if kind == "base":
        return Recipe(
            "base", json.dumps({"debootstrap": _debootstrap_args(), "import": _changes()})
        )
    text = DOCKERFILES[kind].format(base=base)
    if kind == "python":
        wheels = _wheels(say)
        files = {f"wheels/{wheel.name}": wheel for wheel in wheels}
        return Recipe(kind, text, files, {name: name for name in files})
    if kind in BINARIES:
        binary = components.find(BINARIES[kind])
        return Recipe(
            kind,
            text,
            {binary.name: binary},
            {binary.name: hashlib.sha256(binary.read_bytes()).hexdigest()},
        )
    if kind == "kafka":
        return _kafka_recipe(text)
    return Recipe(kind, text)


def _kafka_recipe(text: str) -> Recipe:
    """The jars of the ``kafka-server`` component (named by version, so their names identify
    them) and a launcher written as ``harness setup`` writes the host's, reading them from
    :data:`KAFKA_LIBS`."""
    component = next(c for c in components.CATALOGUE if c.name == "kafka-server")
    libs = components.maven_libs(component)
    jars = sorted(libs.glob("*.jar"))
    if not jars:
        raise EnvironmentProblem(
            f"the kafka image is made from the Kafka jars in {libs}, and there are none: "
            f"{components.install_hint(component.name)}"
        )
    launcher_text = components.maven_launcher(component, KAFKA_LIBS)
    launcher = images_dir() / "kafka-server.launcher"
    if not launcher.is_file() or launcher.read_text() != launcher_text:
        launcher.parent.mkdir(parents=True, exist_ok=True)
        partial = launcher.with_suffix(f".{os.getpid()}")
        partial.write_text(launcher_text)
        os.replace(partial, launcher)
    files = {f"kafka/libs/{jar.name}": jar for jar in jars}
    identities = {name: name for name in files}
    files["kafka/kafka-server"] = launcher
    identities["kafka/kafka-server"] = hashlib.sha256(launcher_text.encode()).hexdigest()
    return Recipe("kafka", text, files, identities)


def _debootstrap_args() -> list[str]:
    """debootstrap's arguments, but the target folder (which goes before the mirror)."""
    return [f"--variant={VARIANT}", f"--include={','.join(BASE_PACKAGES)}", SUITE, mirror()]


def _changes() -> list[str]:
    return [
        f"LABEL {LABEL}=base",
        "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        'CMD ["/bin/bash"]',
    ]


# --- the base: debootstrap, a cached tarball, an import -------------------------------------


def _import_base(client: Any, recipe: Recipe, say: Callable[[str], None]) -> None:
    tarball = images_dir() / f"base-{recipe.digest[:12]}.tar"
    if not tarball.is_file():
        _debootstrap(tarball, say)
    repository, tag = recipe.tag.split(":")
    say(f"importing {tarball} as {recipe.tag}")
    with _docker_errors("importing the base image"):
        answer = client.api.import_image(
            src=str(tarball),
            repository=repository,
            tag=tag,
            changes=[*_changes(), f"LABEL {RECIPE_LABEL}={recipe.digest}"],
        )
    for line in str(answer).splitlines():
        with contextlib.suppress(ValueError):
            message = json.loads(line)
            if isinstance(message, dict) and message.get("error"):
                raise EnvironmentProblem(f"importing the base image failed: {message['error']}")
    if not _exists(client, recipe.tag):
        raise EnvironmentProblem(f"importing the base image failed: {str(answer)[-2000:]}")


def _debootstrap(tarball: Path, say: Callable[[str], None]) -> None:
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
        *options, suite, source = _debootstrap_args()
        argv = [found, *options, suite, str(root), source]
        say(f"$ {' '.join(argv)}  (about half a minute)")
        _run(argv, log, "debootstrap of the base image")
        say(f"writing {tarball}")
        partial = scratch / "base.tar"
        _run(["tar", "--numeric-owner", "-C", str(root), "-cf", str(partial), "."], log, "tar")
        os.replace(partial, tarball)
    finally:
        _remove_tree(scratch)


def _run(argv: list[str], log: Path, what: str, timeout_s: float = DEBOOTSTRAP_TIMEOUT_S) -> None:
    """Run a step of making an image, its output appended to ``log``; fail with its tail."""
    with log.open("a") as out:
        try:
            result = subprocess.run(argv, stdout=out, stderr=subprocess.STDOUT, timeout=timeout_s)
        except (OSError, subprocess.TimeoutExpired) as error:
            raise EnvironmentProblem(f"{what} failed: {error} (its log: {log})") from error
    if result.returncode != 0:
        raise EnvironmentProblem(
            f"{what} failed with exit code {result.returncode} (its log: {log})\n"
            f"--- last lines of its log ---\n{_tail(log.read_text(errors='replace'))}"
        )


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


# --- wheels for the python image -------------------------------------------------------------


def _platforms() -> list[str]:
    """The manylinux platforms bookworm's glibc (2.36) runs, newest first."""
    arch = platform.machine()
    legacy = {17: "manylinux2014", 12: "manylinux2010", 5: "manylinux1"}
    names = []
    for minor in range(36, 4, -1):
        names.append(f"manylinux_2_{minor}_{arch}")
        if minor in legacy:
            names.append(f"{legacy[minor]}_{arch}")
    return names


def _supported_tags() -> set[Tag]:
    version = CONTAINER_PYTHON[:2]
    abi = f"cp{version[0]}{version[1]}"
    return {
        *cpython_tags(version, abis=[abi], platforms=_platforms()),
        *compatible_tags(version, abi, _platforms()),
    }


def _marker_environment(extra: str) -> dict[str, str]:
    major, minor, micro = CONTAINER_PYTHON
    return {
        "python_version": f"{major}.{minor}",
        "python_full_version": f"{major}.{minor}.{micro}",
        "implementation_name": "cpython",
        "implementation_version": f"{major}.{minor}.{micro}",
        "platform_python_implementation": "CPython",
        "sys_platform": "linux",
        "os_name": "posix",
        "platform_system": "Linux",
        "platform_machine": platform.machine(),
        "extra": extra,
    }


def _wheels(say: Callable[[str], None]) -> list[Path]:
    """The wheels of the service packages and everything they need in bookworm's Python: at the
    version installed in the harness's environment where it has one, else at the newest that
    fits. Taken from the wheel cache; what it lacks is downloaded with pip on the host."""
    cache = images_dir() / "wheels"
    cache.mkdir(parents=True, exist_ok=True)
    supported = _supported_tags()
    chosen: dict[str, Path] = {}
    wanted = [Requirement(name) for name in SERVICE_PACKAGES]
    with _locked("wheels", say):
        while wanted:
            pins: dict[str, tuple[Requirement, SpecifierSet]] = {}
            for requirement in wanted:
                name = canonicalize_name(requirement.name)
                if name not in chosen:
                    pins.setdefault(name, (requirement, _pin(requirement)))
            missing = [
                f"{requirement.name}{pin}"
                for requirement, pin in pins.values()
                if _cached(cache, requirement.name, pin, supported) is None
            ]
            if missing:
                _download(cache, missing, say)
            checked, wanted = wanted, []
            for key, (requirement, pin) in pins.items():
                wheel = _cached(cache, requirement.name, pin, supported)
                if wheel is None:
                    raise EnvironmentProblem(
                        f"no wheel of {requirement.name}{pin} for Python "
                        f"{'.'.join(map(str, CONTAINER_PYTHON[:2]))} on {platform.machine()} "
                        f"in {cache} after pip download"
                    )
                chosen[key] = wheel
                wanted += _dependencies(wheel, requirement.extras)
            for requirement in checked:  # each package is chosen once: it must suit everyone
                _check(chosen[canonicalize_name(requirement.name)], requirement)
    return sorted(chosen.values())


def _pin(requirement: Requirement) -> SpecifierSet:
    """``==`` the version the harness's environment has, if that fits; else the requirement's."""
    try:
        version = importlib.metadata.version(requirement.name)
    except importlib.metadata.PackageNotFoundError:
        return requirement.specifier
    if requirement.specifier.contains(version, prereleases=True):
        return SpecifierSet(f"=={version}")
    return requirement.specifier


def _check(wheel: Path, requirement: Requirement) -> None:
    _, version, _, _ = parse_wheel_filename(wheel.name)
    if not requirement.specifier.contains(version, prereleases=True):
        raise EnvironmentProblem(
            f"the python image's packages conflict: {wheel.name} was chosen, but something "
            f"needs {requirement}"
        )


def _cached(cache: Path, name: str, pin: SpecifierSet, supported: set[Tag]) -> Path | None:
    """The newest wheel in the cache of this package that fits the pin and bookworm."""
    best: tuple[Any, Path] | None = None
    for path in cache.glob("*.whl"):
        try:
            found, version, _, tags = parse_wheel_filename(path.name)
        except ValueError:
            continue
        if found != canonicalize_name(name) or not pin.contains(version, prereleases=True):
            continue
        if not tags & supported:
            continue
        if best is None or version > best[0]:
            best = (version, path)
    return best[1] if best else None


def _dependencies(wheel: Path, extras: Iterable[str]) -> list[Requirement]:
    """What a wheel requires in bookworm's Python, read from its METADATA."""
    with zipfile.ZipFile(wheel) as archive:
        name = next(
            n for n in archive.namelist() if n.endswith(".dist-info/METADATA") and n.count("/") == 1
        )
        metadata = Parser().parsestr(archive.read(name).decode())
    needed = []
    for line in metadata.get_all("Requires-Dist") or []:
        requirement = Requirement(line)
        marker = requirement.marker
        if marker is None or any(
            marker.evaluate(_marker_environment(extra)) for extra in ("", *extras)
        ):
            requirement.marker = None
            needed.append(requirement)
    return needed


def _download(cache: Path, specs: list[str], say: Callable[[str], None]) -> None:
    version = CONTAINER_PYTHON[:2]
    argv = [
        sys.executable, "-m", "pip", "download", "--quiet", "--disable-pip-version-check",
        "--no-deps", "--only-binary=:all:", "--dest", str(cache),
        "--python-version", f"{version[0]}.{version[1]}", "--implementation", "cp",
        "--abi", f"cp{version[0]}{version[1]}",
        *(f"--platform={name}" for name in _platforms()),
        *specs,
    ]  # fmt: skip
    say(f"downloading wheels for the python image: {' '.join(specs)}")
    images_dir().mkdir(parents=True, exist_ok=True)
    log = images_dir() / "wheels.log"
    _run(argv, log, f"pip download of the python image's wheels ({' '.join(specs)})", PIP_TIMEOUT_S)


# --- building ---------------------------------------------------------------------------------


def _build(client: Any, recipe: Recipe, say: Callable[[str], None]) -> None:
    images_dir().mkdir(parents=True, exist_ok=True)
    log = images_dir() / f"{recipe.kind}.build.log"
    tail: deque[str] = deque(maxlen=_LOG_TAIL_LINES)
    say(f"building {recipe.tag}")
    with (
        tempfile.TemporaryDirectory(prefix=f"build-{recipe.kind}-", dir=images_dir()) as context,
        log.open("w") as out,
    ):
        (Path(context) / "Dockerfile").write_text(recipe.text)
        for name, source in recipe.files.items():
            (Path(context) / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, Path(context) / name)
        error = ""
        with _docker_errors(f"building the {recipe.kind} image"):
            stream = client.api.build(
                path=context,
                tag=recipe.tag,
                rm=True,
                forcerm=True,
                pull=False,
                labels={LABEL: recipe.kind, RECIPE_LABEL: recipe.digest},
                decode=True,
                timeout=BUILD_IDLE_TIMEOUT_S,
            )
            for chunk in stream:
                text = str(chunk.get("stream", ""))
                if chunk.get("error"):
                    error = str(chunk["error"])
                    text += error + "\n"
                out.write(text)
                for line in text.splitlines():
                    if line.strip():
                        tail.append(line.rstrip())
                        if line.startswith("Step "):
                            say(f"{recipe.kind}: {line.strip()}")
    if error or not _exists(client, recipe.tag):
        lines = "\n".join(tail)
        raise EnvironmentProblem(
            f"building the {recipe.kind} image failed: {error or 'no image came out'} "
            f"(its log: {log})\n--- last lines of the build log ---\n{lines}"
        )


def _exists(client: Any, tag: str) -> bool:
    with _docker_errors(f"looking up {tag}"):
        try:
            client.images.get(tag)
        except docker.errors.ImageNotFound:
            return False
    return True


@contextlib.contextmanager
def _docker_errors(doing: str) -> Iterator[None]:
    """The SDK's and the transport's errors, as an environment problem naming what failed."""
    try:
        yield
    except (docker.errors.DockerException, requests.RequestException) as error:
        raise EnvironmentProblem(f"{doing} failed: {error}") from error


@contextlib.contextmanager
def _locked(name: str, say: Callable[[str], None]) -> Iterator[None]:
    """Hold ``<images>/<name>.lock``: one harness at a time builds a kind (or fills the wheels)."""
    images_dir().mkdir(parents=True, exist_ok=True)
    with (images_dir() / f"{name}.lock").open("a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            say(f"waiting for another harness that holds {handle.name} (preparing the same)")
            fcntl.flock(handle, fcntl.LOCK_EX)
        yield  # closing the file releases the lock


def _tail(text: str) -> str:
    return "\n".join(text.rstrip().splitlines()[-_LOG_TAIL_LINES:])
