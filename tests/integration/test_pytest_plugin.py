"""pytest collects experiment files through the harness plugin and runs them for real."""

from __future__ import annotations

import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from tests.integration.quick_experiments import IMPOSSIBLE, QUICK, write_sound_and_weak

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_pytest_runs_experiment_files_as_tests(tmp_path: Path) -> None:
    folder = tmp_path / "experiments"
    write_sound_and_weak(folder)
    (folder / "c-broken.yaml").write_text("name: broken\n" + QUICK.replace("50/s", "0/s"))
    (folder / "d-bad-promql.yaml").write_text(
        "name: bad-promql\n" + QUICK + IMPOSSIBLE.replace("sum(harness_queue_depth)", "sum(")
    )
    (folder / "compose.yaml").write_text("services: {web: {image: nginx}}\n")  # not ours
    report = tmp_path / "report.xml"
    result = subprocess.run(
        [sys.executable, "-m", "pytest", str(folder), f"--junitxml={report}", "-p",
         "no:cacheprovider", "--harness-runs-dir", str(tmp_path / "runs")],
        cwd=tmp_path, capture_output=True, text=True, timeout=240,
    )  # fmt: skip
    assert result.returncode == 1, result.stdout + result.stderr
    cases = {c.get("name"): c for c in ET.parse(report).getroot().iter("testcase")}
    assert sorted(cases) == ["a-sound", "b-weak", "c-broken", "d-bad-promql"]
    assert cases["a-sound"].find("failure") is None
    weak = cases["b-weak"].find("failure")
    assert weak is not None and "a million waiting" in (weak.text or "")
    assert "verdict: failed" in (weak.text or "")
    broken = cases["c-broken"].find("failure")
    assert broken is not None and "c-broken.yaml:3: load.rate" in (broken.text or "")
    promql = cases["d-bad-promql"].find("failure")
    assert promql is not None and "d-bad-promql.yaml:7: checks[1].query: not valid PromQL" in (
        promql.text or ""
    )
    assert "Traceback" not in result.stdout
    assert len(list((tmp_path / "runs").iterdir())) == 2
