"""``harness setup``: installing the components the catalogue (``harness.components``) lists and
this machine lacks: Go builds into the harness's bin folder, Maven jars into its lib folder,
Debian packages with apt-get. Each command is printed before it runs."""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

from harness import components
from harness.errors import EnvironmentProblem

LOG_TAIL_LINES = 20

# Generous, but a hung apt lock or a stalled download must still end a CI job.
INSTALL_TIMEOUT_S = 900.0


def setup(console_print: Callable[[str], None] = print) -> list[components.Status]:
    """Install whatever is missing; does nothing (and runs no installer) when all is there.

    Each command is printed before it runs, so a silent call means nothing was installed.
    """
    statuses = components.doctor()
    # A Go component at another version than the pin gets the pinned build in the harness bin
    # dir, which is found first.
    pins = {c.name: c.go.release for c in components.CATALOGUE if c.go is not None}
    pins.update({c.name: c.maven.version for c in components.CATALOGUE if c.maven is not None})
    missing = {
        status.name
        for status in statuses
        if not status.found or pins.get(status.name, status.version) != status.version
    }
    if not missing:
        return statuses
    # Go first: it needs no root, so a non-root user is left with a single sudo command.
    for component in components.CATALOGUE:
        if component.source == "go" and component.name in missing:
            _go_install(component, console_print)
    for component in components.CATALOGUE:
        if component.source == "maven" and component.name in missing:
            _maven_install(component, console_print)
    catalogue = components.CATALOGUE
    packages = [c.package for c in catalogue if c.source == "debian" and c.name in missing]
    if packages:
        _apt_install(packages, console_print)
    statuses = components.doctor()
    still_missing = [status for status in statuses if not status.found]
    if still_missing:
        lines = [f"  {status.name}: {status.install_hint}" for status in still_missing]
        raise EnvironmentProblem("still missing after setup:\n" + "\n".join(lines))
    return statuses


def _go_install(component: components.Component, console_print: Callable[[str], None]) -> None:
    go = components.go_binary()
    if go is None:
        raise EnvironmentProblem(
            f"{component.name} is missing and Go is not installed; {components.go_hint(component)}"
        )
    target = components.bin_dir()
    target.mkdir(parents=True, exist_ok=True)
    # Build beside the bin dir so the final move is an atomic rename on one filesystem.
    with tempfile.TemporaryDirectory(dir=target.parent, prefix="go-install-") as scratch:
        argv = components.go_install_argv(component, go)
        _run(argv, {"GOBIN": scratch}, console_print)
        os.replace(Path(scratch) / components.built_name(component), target / component.name)


POM = """<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>harness</groupId>
  <artifactId>{name}</artifactId>
  <version>1</version>
  <packaging>pom</packaging>
  <dependencies>
{dependencies}
  </dependencies>
</project>
"""

DEPENDENCY = """    <dependency>
      <groupId>{}</groupId><artifactId>{}</artifactId><version>{}</version>
    </dependency>"""


def _maven_install(component: components.Component, console_print: Callable[[str], None]) -> None:
    """Fetch the jars into the harness home (one folder per version), then write the launcher."""
    fetch = component.maven
    assert fetch is not None
    if shutil.which("mvn") is None or shutil.which("java") is None:
        raise EnvironmentProblem(
            f"{component.name} is fetched with Maven and run with Java; install them "
            "(on Debian: apt-get install -y maven default-jre-headless), then harness setup again"
        )
    libs = components.maven_libs(component)
    coordinates = [f"{component.package}:{fetch.version}", *fetch.extra]
    dependencies = "\n".join(DEPENDENCY.format(*c.split(":")) for c in coordinates)
    with tempfile.TemporaryDirectory(prefix="maven-fetch-") as scratch:
        pom = Path(scratch) / "pom.xml"
        pom.write_text(POM.format(name=component.name, dependencies=dependencies))
        _run(
            ["mvn", "-q", "-B", "-f", str(pom), "dependency:copy-dependencies",
             f"-DoutputDirectory={libs}", "-DincludeScope=runtime"],
            {}, console_print,
        )  # fmt: skip
    launcher = components.bin_dir() / component.name
    launcher.parent.mkdir(parents=True, exist_ok=True)
    launcher.write_text(components.maven_launcher(component, libs))
    launcher.chmod(0o755)


def _apt_install(packages: Sequence[str], console_print: Callable[[str], None]) -> None:
    names = " ".join(packages)
    if shutil.which("apt-get") is None:
        raise EnvironmentProblem(
            f"apt-get not found; install {names} with this system's package manager"
        )
    install = ["apt-get", "install", "-y", "--no-install-recommends", *packages]
    if not components.is_root():
        raise EnvironmentProblem(
            f"{names} must be installed as root; run: sudo apt-get update && "
            f"sudo {shlex.join(install)}, then harness setup again"
        )
    env = {"DEBIAN_FRONTEND": "noninteractive"}
    _run(["apt-get", "update"], env, console_print)
    _run(install, env, console_print)


def _run(
    argv: Sequence[str], extra_env: dict[str, str], console_print: Callable[[str], None]
) -> None:
    """Run one installer command; a failure becomes an error carrying its output's tail."""
    shown = " ".join([*(f"{key}={value}" for key, value in extra_env.items()), shlex.join(argv)])
    console_print(f"$ {shown}")
    try:
        result = subprocess.run(
            argv,
            env={**os.environ, **extra_env},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=INSTALL_TIMEOUT_S,
            check=False,
        )
    except subprocess.TimeoutExpired as error:
        raise EnvironmentProblem(f"{shown} did not finish in {INSTALL_TIMEOUT_S:.0f} s") from error
    except OSError as error:
        raise EnvironmentProblem(f"{shown} could not start: {error}") from error
    if result.returncode != 0:
        tail = "\n".join(result.stdout.rstrip().splitlines()[-LOG_TAIL_LINES:])
        raise EnvironmentProblem(
            f"{shown} failed with exit code {result.returncode}\n"
            f"--- last lines of its output ---\n{tail}"
        )
