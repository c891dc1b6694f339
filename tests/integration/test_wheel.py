"""The harness as a user installs it: a wheel built from this checkout and installed, with its
core dependencies only (no `targets` extra), into a fresh virtualenv outside the checkout.

The core dependencies come from the wheelhouse `.ci/setup` fills (under HARNESS_HOME), so the
install needs no network. The real components (Prometheus, Toxiproxy, the brokers) are the
ones `harness setup` installed on this machine.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from harness import components, extras

pytestmark = [pytest.mark.integration, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
WHEELHOUSE = components.home() / "wheelhouse"


def _run(
    argv: list[str | Path], cwd: Path, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    return subprocess.run(
        [str(a) for a in argv], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout
    )


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The virtualenv's bin folder, with the freshly built wheel installed in it."""
    if not (WHEELHOUSE / ".complete").is_file():
        pytest.fail(f"no wheelhouse at {WHEELHOUSE}: run bash .ci/setup, which fills it")
    place = tmp_path_factory.mktemp("wheel")
    built = _run(
        [sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", place, ROOT],
        cwd=place,
    )
    assert built.returncode == 0, built.stdout[-2000:] + built.stderr[-2000:]
    (wheel,) = place.glob("chaos_harness-*.whl")
    assert _run([sys.executable, "-m", "venv", place / "venv"], cwd=place).returncode == 0
    bin_dir = place / "venv" / "bin"
    pip = _run(
        [bin_dir / "pip", "install", "-q", "--no-index", "--find-links", WHEELHOUSE, wheel],
        cwd=place,
    )
    assert pip.returncode == 0, pip.stdout[-2000:] + pip.stderr[-2000:]
    return bin_dir


def test_the_wheel_alone_runs_doctor_init_and_validate(installed: Path, tmp_path: Path) -> None:
    harness = installed / "harness"
    version = _run([harness, "--version"], cwd=tmp_path)
    assert version.returncode == 0 and version.stdout.startswith("harness 0."), version
    doctor = _run([harness, "doctor"], cwd=tmp_path)
    assert doctor.returncode == 0, doctor.stdout + doctor.stderr
    init = _run([harness, "init", "shop"], cwd=tmp_path)
    assert init.returncode == 0, init.stdout + init.stderr
    experiment = tmp_path / "experiments" / "shop-crashed-workers.yaml"
    validate = _run([harness, "validate", experiment], cwd=tmp_path)
    assert validate.returncode == 0, validate.stdout + validate.stderr
    # Its own package, not the checkout's.
    where = _run(
        [installed / "python", "-c", "import harness; print(harness.__file__)"], cwd=tmp_path
    )
    assert str(installed.parent) in where.stdout, where


def test_without_the_targets_extra_a_broker_command_names_the_extra(
    installed: Path, tmp_path: Path
) -> None:
    found = _run([installed / "python", "-c", "import redis"], cwd=tmp_path)
    assert found.returncode != 0  # the core install does not bring the broker clients
    probe = _run(
        [installed / "harness", "probe", "redis", "--url", "redis://127.0.0.1:1", "--queue", "q",
         "--port", "1"],
        cwd=tmp_path,
        timeout=60,
    )  # fmt: skip
    assert probe.returncode == 2, probe.stdout + probe.stderr
    assert extras.INSTALL in " ".join(probe.stderr.split()), probe.stderr
