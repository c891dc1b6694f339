"""A matrix of an experiment: its axes from the file and the command line, their combinations,
and a value the experiment refuses, blamed on its line of ``matrix:`` (or on ``--matrix``)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from harness import matrix
from harness.errors import SpecError
from harness.loader import load_experiment
from tests.conftest import ROOT

EXPERIMENT = f"""\
name: grid
target: {ROOT / "targets" / "redis-streams.yaml"}
load: {{rate: 50/s, duration: 10s}}
matrix:
  worker.replicas: [1, 2]
  load.rate: [20/s, {{bad: 1}}]
checks:
  - {{name: nothing acknowledged is lost, ledger: lost, expect: "== 0"}}
"""


def written(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "grid.yaml"
    path.write_text(text)
    return path


def test_the_files_axes_multiply_first_axis_slowest(tmp_path: Path) -> None:
    path = written(tmp_path, EXPERIMENT.replace("{bad: 1}", "40/s"))
    combinations = matrix.combinations(matrix.file_axes(path), str(path))
    assert [c.label for c in combinations] == [
        "worker.replicas=1, load.rate=20/s",
        "worker.replicas=1, load.rate=40/s",
        "worker.replicas=2, load.rate=20/s",
        "worker.replicas=2, load.rate=40/s",
    ]
    assert combinations[2].to_json() == {"worker.replicas": 2, "load.rate": "20/s"}
    experiment = load_experiment(path, combinations[3].overrides)
    assert experiment.topology.components["worker"].replicas == 2
    assert experiment.spec.load.rate == 40


def test_a_value_that_is_not_one_is_refused_at_its_line(tmp_path: Path) -> None:
    path = written(tmp_path, EXPERIMENT)
    with pytest.raises(SpecError) as refused:
        matrix.file_axes(path)
    assert (refused.value.file, refused.value.line) == (str(path), 6)
    assert refused.value.field == "matrix.load.rate[1]"


def test_a_value_the_experiment_refuses_is_blamed_on_its_matrix_line(tmp_path: Path) -> None:
    path = written(tmp_path, EXPERIMENT.replace("[1, 2]", "[1, many]").replace("{bad: 1}", "4/s"))
    [replicas, _] = matrix.file_axes(path)
    with pytest.raises(SpecError) as refused:
        load_experiment(path, [replicas.values[1]])
    assert (refused.value.file, refused.value.line) == (str(path), 5)
    assert refused.value.field == "matrix.worker.replicas[1]"
    assert "it sets components.worker.replicas" in refused.value.message


def test_the_command_line_replaces_the_files_axis_of_its_key_and_adds_its_own() -> None:
    in_file = [
        matrix.Axis("worker.replicas", ()),
        matrix.Axis("load.rate", ()),
    ]
    given = matrix.command_axes(["load.rate=10/s,20/s"], ["redis-streams", "kafka"])
    axes = matrix.combine(in_file, given)
    assert [a.key for a in axes] == ["worker.replicas", "load.rate", "target"]
    assert [o.value for o in axes[1].values] == ["10/s", "20/s"]
    [kafka] = [c for c in matrix.combinations(axes[2:], "x") if "kafka" in c.label]
    assert kafka.label == "kafka" and kafka.by_target


def test_a_command_line_value_the_experiment_refuses_names_the_flag() -> None:
    [axis] = matrix.command_axes(["worker.replicas=1,many"], [])
    experiment = ROOT / "experiments" / "slow-consumer.yaml"
    with pytest.raises(SpecError) as refused:
        load_experiment(experiment, [axis.values[1]])
    assert (refused.value.file, refused.value.field) == ("--matrix", "worker.replicas=1,many")


@pytest.mark.parametrize(
    ("given", "why"),
    [
        (["worker.replicas"], "expected KEY=V1,V2"),
        (["worker.replicas=1,,2"], "expected KEY=V1,V2"),
        (["target=a", "--target"], "given twice"),
    ],
)
def test_a_wrong_matrix_on_the_command_line_is_refused(given: list[str], why: str) -> None:
    targets = ["kafka"] if "--target" in given else []
    with pytest.raises(SpecError, match=why):
        matrix.command_axes([g for g in given if g != "--target"], targets)


def test_a_matrix_of_more_combinations_than_a_sitting_is_refused() -> None:
    axes = matrix.command_axes(["a.b=1,2,3,4,5,6,7,8,9", "c.d=1,2,3,4,5,6,7,8"], [])
    with pytest.raises(SpecError, match="72 combinations"):
        matrix.combinations(axes, "exp.yaml")


def test_pytest_collects_one_test_per_combination(tmp_path: Path) -> None:
    (tmp_path / "grid.yaml").write_text(EXPERIMENT.replace("{bad: 1}", "40/s"))
    (tmp_path / "broken.yaml").write_text(EXPERIMENT)
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider",
         str(tmp_path)],
        cwd=tmp_path, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    collected = [line for line in result.stdout.splitlines() if "::" in line]
    assert [line.split("::")[1] for line in collected] == [
        "grid[worker.replicas=1, load.rate=20/s]",
        "grid[worker.replicas=1, load.rate=40/s]",
        "grid[worker.replicas=2, load.rate=20/s]",
        "grid[worker.replicas=2, load.rate=40/s]",
    ]
    assert "broken.yaml:6: matrix.load.rate[1]: expected a value" in result.stdout
    assert "Traceback" not in result.stdout
