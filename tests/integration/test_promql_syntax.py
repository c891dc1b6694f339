"""PromQL is parsed by a real Prometheus before anything runs: a syntax error anywhere an
experiment or its target holds PromQL is bad input at its line (exit 3), and valid syntax that
only Prometheus 3 knows is accepted."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import ROOT

pytestmark = [pytest.mark.integration]

FLAGSHIP = (ROOT / "experiments" / "slow-consumer.yaml").read_text()
SOMETIMES = next(line.strip() for line in FLAGSHIP.splitlines() if "sometimes:" in line)
RECOVERS = """recovers: 'sum(harness_queue_depth{queue="$queue"})"""


def _line(path: Path, text: str) -> int:
    return next(i for i, line in enumerate(path.read_text().splitlines(), 1) if text in line)


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "experiment.yaml"
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    ("old", "new", "field", "reason"),
    [
        (SOMETIMES, SOMETIMES.replace("sum(", "sum((", 1), "checks[0].sometimes", "unclosed left"),
        (RECOVERS, RECOVERS.replace("sum(", "sum by (", 1), "checks[1].recovers", "grouping"),
        (
            """query: 'sum(harness_queue_depth{queue="$queue"})', expect""",
            """query: 'rate(harness_queue_depth[5s]', expect""",
            "steady_state[0].query",
            "unclosed left",
        ),
        (
            "checks:",
            "abort_if: ['sum(harness_queue_depth) >> 1 > 5']\nchecks:",
            "abort_if[0]",
            "parse error",
        ),
    ],
)
def test_a_syntax_error_is_bad_input_at_its_line(
    harness_cli, tmp_path: Path, old: str, new: str, field: str, reason: str
) -> None:
    assert old in FLAGSHIP
    bad = _write(tmp_path, FLAGSHIP.replace(old, new, 1))
    # The line that holds the expression: the first new line that is not in the flagship.
    changed = next(line for line in new.splitlines() if line not in FLAGSHIP.splitlines())
    result = harness_cli("validate", str(bad))
    assert result.returncode == 3, result.stdout + result.stderr
    assert f"{bad}:{_line(bad, changed)}: {field}: not valid PromQL: " in result.stderr, (
        result.stderr
    )
    assert reason in result.stderr and "Traceback" not in result.stderr


def test_a_syntax_error_in_the_target_drained_is_at_the_target_line(
    harness_cli, tmp_path: Path
) -> None:
    target = (ROOT / "targets" / "redis-streams.yaml").read_text()
    (tmp_path / "targets").mkdir()
    bad_target = tmp_path / "targets" / "broken.yaml"
    drained = next(line for line in target.splitlines() if line.startswith("drained:"))
    bad_target.write_text(
        target.replace("name: redis-streams", "name: broken", 1).replace(
            drained, "drained: 'sum(harness_queue_depth) +  == 0'"
        )
    )
    for folder in ("redis_streams", "services"):
        (tmp_path / "targets" / folder).symlink_to(ROOT / "targets" / folder)
    (tmp_path / "experiments").mkdir()
    experiment = tmp_path / "experiments" / "experiment.yaml"
    experiment.write_text(FLAGSHIP.replace("target: redis-streams", "target: broken", 1))
    result = harness_cli("validate", str(experiment))
    assert result.returncode == 3, result.stdout + result.stderr
    line = _line(bad_target, "drained:")
    assert f"{bad_target}:{line}: drained: not valid PromQL" in result.stderr, result.stderr


def test_a_syntax_error_from_set_is_blamed_on_the_set(harness_cli, tmp_path: Path) -> None:
    result = harness_cli(
        "run",
        "experiments/slow-consumer.yaml",
        "--set",
        "checks.2.query=rate(",
        "--runs-dir",
        str(tmp_path / "runs"),
    )
    assert result.returncode == 3, result.stdout + result.stderr
    assert "--set: checks[2].query: not valid PromQL" in result.stderr, result.stderr
    assert not (tmp_path / "runs").exists()  # nothing ran: no run folder


def test_valid_prometheus_3_syntax_is_accepted(harness_cli, tmp_path: Path) -> None:
    quoted = SOMETIMES.replace("sum(harness_queue_depth{", 'sum({"harness_queue_depth", ')
    good = _write(tmp_path, FLAGSHIP.replace(SOMETIMES, quoted, 1))
    result = harness_cli("validate", str(good))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "ok " in result.stdout and "PromQL not parsed" not in result.stderr
