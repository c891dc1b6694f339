"""The catalogue of real components the harness runs: finding them, their versions, and how to
install each (``harness.install`` does it).

One table serves both run time (``find`` resolves a binary or says how to install it) and
``harness setup`` / ``harness doctor``, so the two can never disagree about what is needed.
Nothing here renders output: callers get data and decide how to show it.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import os
import platform
import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from harness.errors import MissingComponent

TOXIPROXY_VERSION = "2.12.0"
TOXIPROXY_MODULE = "github.com/Shopify/toxiproxy/v2"
# Prometheus 3.16.0, which its Go module numbers v0.316.0.
PROMETHEUS_VERSION = "3.16.0"
PROMETHEUS_MODULE_VERSION = "0.316.0"
PROMETHEUS_MODULE = "github.com/prometheus/prometheus"
KAFKA_VERSION = "4.1.1"
VERSION_TIMEOUT_S = 5.0
# The official Go tarball's location, used when Go is installed but not on PATH.
GO_FALLBACK = Path("/usr/local/go/bin/go")
# Upstream names release assets by Go's GOOS and GOARCH (plus the ARM variant).
_GOARCH = {
    "x86_64": "amd64",
    "amd64": "amd64",
    "aarch64": "arm64",
    "arm64": "arm64",
    "armv7l": "armv7",
    "armv6l": "armv6",
}

Source = Literal["debian", "go", "python", "maven"]


@dataclass(frozen=True)
class GoBuild:
    """How a Go component is built from the module proxy: pinned, stamped, and trimmed."""

    version: str  # the module version, without the v
    release: str  # the version the binary reports, which doctor shows
    ldflags: str
    tags: str = ""
    # Where a machine without Go gets the same release, and what to run once it has it.
    download: str = ""


@dataclass(frozen=True)
class MavenFetch:
    """A Java program fetched from Maven Central with its dependencies, and run with the
    machine's Java through a launcher script in the harness bin dir."""

    version: str
    main: str  # the class the launcher runs
    # More artifacts (group:artifact:version) to put on the class path, such as a log binding.
    extra: tuple[str, ...] = ()
    # A first argument that makes the launcher run another class instead, such as a tool.
    tools: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Component:
    """One real component; its source decides how it is found, versioned and installed."""

    name: str
    source: Source
    # The Debian package, the Go package path, or the Python distribution.
    package: str
    # Applied to ``<binary> --version``; group 1 is the version shown by doctor.
    version_pattern: str = r"version (\S+)"
    # Asked instead of ``<binary> --version``, for a server that would start on any argument.
    version_command: tuple[str, ...] = ()
    go: GoBuild | None = None
    maven: MavenFetch | None = None


CATALOGUE: tuple[Component, ...] = (
    Component("redis-server", "debian", "redis-server", version_pattern=r"v=(\S+)"),
    # Reads the bytes of the links' open connections: the evidence that a link fault bit.
    Component("ss", "debian", "iproute2", r"iproute2-(\S+)", version_command=("ss", "-V")),
    Component(
        "rabbitmq-server",
        "debian",
        "rabbitmq-server",
        version_pattern=r"^([\d.]+)",
        # Not rabbitmqctl version: it leaves an epmd daemon running.
        version_command=("dpkg-query", "--show", "--showformat=${Version}", "rabbitmq-server"),
    ),
    Component(
        "prometheus",
        "go",
        f"{PROMETHEUS_MODULE}/cmd/prometheus",
        go=GoBuild(
            PROMETHEUS_MODULE_VERSION,
            PROMETHEUS_VERSION,
            f"-s -w -X github.com/prometheus/common/version.Version={PROMETHEUS_VERSION}",
            # Static and file discovery only: the cloud SDKs would triple the build.
            tags="remove_all_sd",
            download="https://github.com/prometheus/prometheus/releases/download/"
            f"v{PROMETHEUS_VERSION}/prometheus-{PROMETHEUS_VERSION}.{{goos}}-{{goarch}}.tar.gz",
        ),
    ),
    Component(
        "toxiproxy-server",
        "go",
        f"{TOXIPROXY_MODULE}/cmd/server",
        go=GoBuild(
            TOXIPROXY_VERSION,
            TOXIPROXY_VERSION,
            f"-s -w -X {TOXIPROXY_MODULE}.Version={TOXIPROXY_VERSION}",
            download="https://github.com/Shopify/toxiproxy/releases/download/"
            f"v{TOXIPROXY_VERSION}/toxiproxy-server-{{goos}}-{{goarch}}",
        ),
    ),
    Component("nats-server", "debian", "nats-server", version_pattern=r" v(\S+)"),
    Component(
        "kafka-server",
        "maven",
        "org.apache.kafka:kafka_2.13",
        version_pattern=r"^(\S+)$",
        maven=MavenFetch(
            KAFKA_VERSION,
            "kafka.Kafka",
            extra=("org.apache.logging.log4j:log4j-slf4j-impl:2.24.3",),
            tools=(("storage", "kafka.tools.StorageTool"),),
        ),
    ),
    Component("locust", "python", "locust"),
)


@dataclass(frozen=True)
class Status:
    """What doctor learned about one component."""

    name: str
    found: bool
    path: Path | None
    version: str | None
    install_hint: str


def home() -> Path:
    """Where the harness keeps what outlives a run, outside any checkout (``HARNESS_HOME``)."""
    return Path(os.environ.get("HARNESS_HOME") or Path.home() / ".cache" / "harness").expanduser()


def bin_dir() -> Path:
    """Where the harness keeps binaries it installs itself."""
    return home() / "bin"


def find(name: str) -> Path:
    """The executable for a component: the harness bin dir first, then PATH.

    For ``locust`` this is the Python interpreter that has it; run it as ``<path> -m locust``.
    """
    component = _component(name)
    if component.source == "python":
        if importlib.util.find_spec(component.package) is None:
            raise MissingComponent(name, install_hint(name))
        return Path(sys.executable)
    search_path = os.pathsep.join([str(bin_dir()), os.environ.get("PATH", os.defpath)])
    found = shutil.which(name, path=search_path)
    if found is None:
        raise MissingComponent(name, install_hint(name))
    return Path(found)


def install_hint(name: str) -> str:
    """The shell command(s) that install a component on this machine."""
    component = _component(name)
    if component.source == "debian":
        sudo = "" if is_root() else "sudo "
        return f"{sudo}apt-get update && {sudo}apt-get install -y {component.package}"
    if component.source == "go":
        return go_hint(component)
    if component.source == "maven":
        return "harness setup (it fetches the jars from Maven Central with mvn; needs Java and mvn)"
    return "pip install -e ."


def doctor() -> list[Status]:
    """Every component's state, in catalogue order."""
    return [_status(component) for component in CATALOGUE]


def _component(name: str) -> Component:
    for component in CATALOGUE:
        if component.name == name:
            return component
    known = ", ".join(component.name for component in CATALOGUE)
    raise KeyError(f"unknown component {name!r}; the catalogue has {known}")


def is_root() -> bool:
    return os.geteuid() == 0


def _status(component: Component) -> Status:
    hint = install_hint(component.name)
    try:
        path = find(component.name)
    except MissingComponent:
        return Status(component.name, False, None, None, hint)
    return Status(component.name, True, path, _version(component, path), hint)


def _version(component: Component, path: Path) -> str | None:
    """The version a component reports, or None when it cannot say (a broken install)."""
    if component.source == "python":
        try:
            return importlib.metadata.version(component.package)
        except importlib.metadata.PackageNotFoundError:
            return None
    try:
        result = subprocess.run(
            list(component.version_command) or [str(path), "--version"],
            capture_output=True,
            text=True,
            timeout=VERSION_TIMEOUT_S,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    lines = (result.stdout or result.stderr).strip().splitlines()
    if result.returncode != 0 or not lines:
        return None
    match = re.search(component.version_pattern, lines[0])
    return match.group(1) if match else lines[0]


def go_binary() -> str | None:
    found = shutil.which("go")
    if found is not None:
        return found
    return str(GO_FALLBACK) if GO_FALLBACK.is_file() else None


def go_install_argv(component: Component, go: str) -> list[str]:
    build = _build(component)
    tags = [f"-tags={build.tags}"] if build.tags else []
    return [
        go, "install", "-trimpath", *tags, f"-ldflags={build.ldflags}",
        f"{component.package}@v{build.version}",
    ]  # fmt: skip


def _build(component: Component) -> GoBuild:
    assert component.go is not None, f"{component.name} is not built with Go"
    return component.go


def built_name(component: Component) -> str:
    """What ``go install`` calls the binary: the last element of the package path."""
    return component.package.rsplit("/", 1)[-1]


def _release_url(component: Component) -> str:
    machine = platform.machine().lower()
    goos = sys.platform.rstrip("0123456789")
    return _build(component).download.format(goos=goos, goarch=_GOARCH.get(machine, machine))


def go_hint(component: Component) -> str:
    target = bin_dir()
    binary = shlex.quote(str(target / component.name))
    go = go_binary()
    if go is not None:
        built = shlex.quote(str(target / built_name(component)))
        install = shlex.join(go_install_argv(component, go))
        move = f" && mv {built} {binary}" if built_name(component) != component.name else ""
        return f"GOBIN={shlex.quote(str(target))} {install}{move}"
    return (
        f"download {_release_url(component)} and put its {component.name} binary at {binary}"
        " (or install Go from https://go.dev/dl/ and run harness setup)"
    )


LAUNCHER = """#!/bin/sh
# {name} {version}, fetched from Maven Central by harness setup; run with the machine's Java.
main={main}
case "${{1:-}}" in
{tools}
esac
exec java ${{JAVA_HEAP_OPTS:--Xmx512m}} ${{JAVA_OPTS:-}} -cp '{libs}/*' "$main" "$@"
"""


def maven_libs(component: Component) -> Path:
    """Where a Maven component's jars are kept: one folder per version in the harness home."""
    assert component.maven is not None
    return home() / "lib" / f"{component.name}-{component.maven.version}"


def maven_launcher(component: Component, libs: str | Path) -> str:
    """The launcher script of a Maven component whose jars are in ``libs``."""
    fetch = component.maven
    assert fetch is not None
    tools = "\n".join(f"  {word}) main={main}; shift ;;" for word, main in fetch.tools)
    return LAUNCHER.format(
        name=component.name, version=fetch.version, main=fetch.main, tools=tools, libs=libs
    )
