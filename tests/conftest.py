"""Shared fixtures: the repository root and a subprocess runner for the ``harness`` CLI."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def root() -> Path:
    return ROOT


def harness_argv(*args: str) -> list[str]:
    return [sys.executable, "-m", "harness", *args]


@pytest.fixture
def harness_cli(tmp_path: Path):  # type: ignore[no-untyped-def]
    """Run ``harness ARGS`` from the repository root; returns the CompletedProcess."""

    def run(*args: str, timeout: float = 180, env: dict[str, str] | None = None):  # type: ignore[no-untyped-def]
        return subprocess.run(
            harness_argv(*args),
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=timeout,
            env={**os.environ, **(env or {})},
        )

    return run
