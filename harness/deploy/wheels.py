"""The wheels the ``python`` image installs offline: the reference services' packages and all
they need in bookworm's Python, at the versions the harness's own environment has where it has
one, downloaded with pip on the host into the image cache."""

from __future__ import annotations

import importlib.metadata
import platform
import sys
import zipfile
from collections.abc import Callable, Iterable
from email.parser import Parser
from pathlib import Path
from typing import Any

from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.tags import Tag, compatible_tags, cpython_tags
from packaging.utils import canonicalize_name, parse_wheel_filename

from harness.deploy.image_cache import images_dir, locked, run_step
from harness.errors import EnvironmentProblem

# What the reference services (targets/services and each broker's folder) import.
SERVICE_PACKAGES = (
    "redis", "hiredis", "httptools", "uvloop", "prometheus-client",
    "httpx", "aio-pika", "pika", "nats-py", "confluent-kafka",
)  # fmt: skip

# Bookworm's python3 is 3.11.2: dependency markers are evaluated for it, not for the host's
# Python (redis needs async-timeout below 3.11.3, which a newer host does not have installed).
CONTAINER_PYTHON = (3, 11, 2)

PIP_TIMEOUT_S = 600.0


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


def wheels(say: Callable[[str], None]) -> list[Path]:
    """The wheels of the service packages and everything they need in bookworm's Python: at the
    version installed in the harness's environment where it has one, else at the newest that
    fits. Taken from the wheel cache; what it lacks is downloaded with pip on the host."""
    cache = images_dir() / "wheels"
    cache.mkdir(parents=True, exist_ok=True)
    supported = _supported_tags()
    chosen: dict[str, Path] = {}
    wanted = [Requirement(name) for name in SERVICE_PACKAGES]
    with locked("wheels", say):
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
    run_step(
        argv, log, f"pip download of the python image's wheels ({' '.join(specs)})", PIP_TIMEOUT_S
    )
