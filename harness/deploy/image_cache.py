"""Where the harness makes its images: the cache folder (the base tarball, the wheels, the build
logs, the locks), a lock per kind so that one harness at a time prepares it, and the running of
one step with its log kept."""

from __future__ import annotations

import contextlib
import fcntl
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

from harness import components
from harness.errors import EnvironmentProblem

LOG_TAIL_LINES = 25


def images_dir() -> Path:
    """Where the base tarball, the wheels, the build logs and the locks are kept."""
    return components.home() / "images"


def run_step(argv: list[str], log: Path, what: str, timeout_s: float) -> None:
    """Run a step of making an image, its output appended to ``log``; fail with its tail."""
    with log.open("a") as out:
        try:
            result = subprocess.run(argv, stdout=out, stderr=subprocess.STDOUT, timeout=timeout_s)
        except (OSError, subprocess.TimeoutExpired) as error:
            raise EnvironmentProblem(f"{what} failed: {error} (its log: {log})") from error
    if result.returncode != 0:
        raise EnvironmentProblem(
            f"{what} failed with exit code {result.returncode} (its log: {log})\n"
            f"--- last lines of its log ---\n{tail(log.read_text(errors='replace'))}"
        )


@contextlib.contextmanager
def locked(name: str, say: Callable[[str], None]) -> Iterator[None]:
    """Hold ``<images>/<name>.lock``: one harness at a time builds a kind (or fills the wheels)."""
    images_dir().mkdir(parents=True, exist_ok=True)
    with (images_dir() / f"{name}.lock").open("a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            say(f"waiting for another harness that holds {handle.name} (preparing the same)")
            fcntl.flock(handle, fcntl.LOCK_EX)
        yield  # closing the file releases the lock


def tail(text: str) -> str:
    return "\n".join(text.rstrip().splitlines()[-LOG_TAIL_LINES:])
