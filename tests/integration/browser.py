"""Headless Chromium (Debian's package) opening a page the way a user would, offline."""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

# Without the background-networking flags Chromium keeps dialling Google's hosts, which this
# closed network refuses; --no-sandbox because CI runs as root.
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
    "--enable-logging=stderr",
    "--v=0",
]


@dataclass(frozen=True)
class Rendered:
    dom: str
    console: list[str]  # every console message the page logged (errors included)


def chromium() -> str:
    found = shutil.which("chromium")
    assert found, "chromium is not installed: run `bash .ci/setup` (it installs Debian's chromium)"
    return found


def render(page: Path, screenshot: Path, profile: Path) -> Rendered:
    """The page's DOM after it loaded, its console messages, and a screenshot of it."""
    url = page.resolve().as_uri()
    common = [chromium(), *FLAGS, f"--user-data-dir={profile}"]
    dumped = subprocess.run(
        [*common, "--dump-dom", url], capture_output=True, text=True, timeout=60, check=True
    )
    subprocess.run(
        [*common, "--window-size=1360,2400", f"--screenshot={screenshot}", url],
        capture_output=True,
        timeout=60,
        check=True,
    )
    console = [line for line in dumped.stderr.splitlines() if ":CONSOLE" in line]
    return Rendered(dumped.stdout, console)
