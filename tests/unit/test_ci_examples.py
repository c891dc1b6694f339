"""The CI examples we ship stay true: every harness command in them is one the CLI accepts."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import yaml

from harness.cli import parser as cli_parser
from harness.loader import load_experiment
from tests.conftest import ROOT


def harness_commands(script: str) -> list[list[str]]:
    lines = (line.split("#")[0].strip() for line in script.splitlines())
    return [shlex.split(line)[1:] for line in lines if line.startswith("harness ")]


def test_every_harness_command_of_the_github_workflow_parses() -> None:
    workflow = yaml.safe_load((ROOT / "docs" / "examples" / "github-actions.yml").read_text())
    steps = workflow["jobs"]["experiments"]["steps"]
    commands = [c for step in steps for c in harness_commands(step.get("run", ""))]
    assert [c[0] for c in commands] == ["setup", "doctor", "validate", "run"]
    for argv in commands:
        cli_parser().parse_args(argv)  # exits (fails the test) on anything the CLI does not take


def test_the_pre_commit_hook_validates_experiment_files() -> None:
    (hook,) = yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text())
    assert re.search(hook["files"], "experiments/slow-consumer.yaml")
    assert not re.search(hook["files"], "targets/redis-streams.yaml")
    argv = [*shlex.split(hook["entry"])[1:], "experiments/slow-consumer.yaml"]
    assert cli_parser().parse_args(argv).files == ["experiments/slow-consumer.yaml"]


def test_the_readmes_own_system_target_loads(tmp_path: Path) -> None:
    page = (ROOT / "docs" / "your-system.md").read_text()
    target = page.split("```yaml\n", 1)[1].split("```", 1)[0]
    (tmp_path / "targets").mkdir()
    (tmp_path / "targets" / "my-tasks.yaml").write_text(target)
    (tmp_path / "experiments").mkdir()
    experiment = tmp_path / "experiments" / "exp.yaml"
    experiment.write_text(
        "name: exp\ntarget: my-tasks\nload: {rate: 1/s, duration: 1s}\n"
        "checks:\n  - {name: nothing lost, ledger: lost, expect: '== 0'}\n"
    )
    loaded = load_experiment(experiment)
    assert loaded.topology.ledger is not None and "{id}" in loaded.topology.load.body
