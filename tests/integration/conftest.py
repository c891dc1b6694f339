"""Integration tests run the real components; each test gets a timeout of its own."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.load import LoadProcess
from tests.integration.redis_streams_stack import Stack


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "integration" in str(item.fspath):
            item.add_marker(pytest.mark.integration)


@pytest.fixture
def started() -> Iterator[list[LoadProcess]]:
    """Load processes a test started; stopped whatever the test's outcome."""
    processes: list[LoadProcess] = []
    yield processes
    for process in processes:
        process.stop(grace_s=2.0)


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[Stack]:
    """Services of the Redis Streams target, each a real process, all stopped on the way out."""
    s = Stack(tmp_path)
    try:
        yield s
    finally:
        s.stop_all()
