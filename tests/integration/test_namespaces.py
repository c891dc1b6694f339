"""A harness in another PID namespace (a container, `unshare`) owns what it started: the
host's `harness down` sees a pid there that means nothing here, and leaves its processes be;
the same process, owned by a harness of this namespace that is gone, is a leftover."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator

import psutil
import pytest

from harness.deploy import leftovers, owner
from tests.conftest import ROOT

pytestmark = [pytest.mark.integration]

# In the new namespace: a "harness" (this script) starts a process it owns, then waits.
INSIDE = (
    "import os, subprocess\n"
    "from harness.deploy import owner\n"
    "child = subprocess.Popen(['sleep', '120'], env=owner.owned(os.environ))\n"
    "child.wait()\n"
)


def unshare() -> list[str]:
    """A new PID namespace, with a user namespace where the tests do not run as root."""
    user = [] if os.geteuid() == 0 else ["--user", "--map-root-user"]
    return ["unshare", *user, "--pid", "--fork", "--mount-proc"]


@pytest.fixture
def neighbour() -> Iterator[psutil.Process]:
    """The process a harness in another PID namespace started and still owns."""
    harness = subprocess.Popen(
        [*unshare(), sys.executable, "-c", INSIDE], cwd=ROOT, start_new_session=True
    )
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            owned = [
                child
                for child in psutil.Process(harness.pid).children(recursive=True)
                if child.name() == "sleep"
            ]
            if owned:
                yield owned[0]
                return
            time.sleep(0.1)
        pytest.fail("the harness in the other namespace started nothing")
    finally:
        os.killpg(harness.pid, 9)
        harness.wait()


def test_down_on_the_host_leaves_a_live_run_of_another_namespace_alone(
    harness_cli, neighbour: psutil.Process
) -> None:
    mark = neighbour.environ()[owner.OWNER_VAR]
    assert mark.split(":")[1] != owner.owner_mark().split(":")[1]  # another namespace
    assert neighbour.pid not in {p.pid for p in leftovers.find().processes}
    result = harness_cli("down")
    assert result.returncode == 0, result.stdout + result.stderr
    assert neighbour.is_running() and neighbour.status() != psutil.STATUS_ZOMBIE


def test_a_process_of_a_gone_harness_of_this_namespace_is_a_leftover() -> None:
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    mark = owner.owner_mark().rsplit(":", 2)[0] + f":{gone.pid}:1.00"
    orphan = subprocess.Popen(
        ["sleep", "120"], env={**os.environ, owner.OWNER_VAR: mark}, start_new_session=True
    )
    try:
        assert orphan.pid in {p.pid for p in leftovers.find().processes}
    finally:
        orphan.kill()
        orphan.wait()
