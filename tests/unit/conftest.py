"""Unit tests never read this machine's stored capacities: each test has an empty store."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def _own_capacity_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HARNESS_CAPACITY_DIR", str(tmp_path / "capacity"))
