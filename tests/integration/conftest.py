"""Integration tests run the real components; each test gets a timeout of its own."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from harness.load import LoadProcess
from tests.conftest import ROOT, harness_argv
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
def running() -> Iterator[Callable[[Path], subprocess.Popen[bytes]]]:
    """Start `harness run` on an experiment file in the background, its run folder in runs/
    beside the file; killed at the end of the test if it still runs."""
    procs: list[subprocess.Popen[bytes]] = []

    def start(path: Path) -> subprocess.Popen[bytes]:
        argv = harness_argv("run", str(path), "--runs-dir", str(path.parent / "runs"))
        proc = subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        procs.append(proc)
        return proc

    yield start
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[Stack]:
    """Services of the Redis Streams target, each a real process, all stopped on the way out."""
    s = Stack(tmp_path)
    try:
        yield s
    finally:
        s.stop_all()


@pytest.fixture
def hogs() -> Iterator[list[subprocess.Popen[bytes]]]:
    """Busy loops a test starts, killed whatever its outcome."""
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for hog in started:
        hog.kill()
        hog.wait()


@pytest.fixture
def busy_core(hogs: list[subprocess.Popen[bytes]]) -> None:
    """One core taken by a busy loop for the whole test, as a neighbour on a shared CI runner
    or a laptop takes it: a shipped experiment's verdict must not depend on the machine."""
    hogs.append(subprocess.Popen([sys.executable, "-c", "while True: pass"]))
