"""pytest collects experiment files as tests, so a team that gates on pytest gets them too.

    pytest experiments/ --junitxml=report.xml

Each experiment file (a YAML file with ``target``, ``load`` and ``checks``) becomes one test
(one per combination of its ``matrix:``, named ``file[combination]``) that runs the experiment
and passes only when its verdict is held. Other YAML files are left
alone. In a team's own tests the ``harness_run`` fixture runs an experiment and returns its
result, for assertions of their own.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import yaml

from harness import matrix, syntax
from harness.errors import HarnessError
from harness.loader import load_experiment
from harness.verdict import Verdict
from harness.yamlsource import Override

if TYPE_CHECKING:
    from harness.runner import RunResult

EXPERIMENT_KEYS = {"target", "load", "checks"}


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("harness", "chaos experiments")
    group.addoption(
        "--harness-runs-dir", default="runs", help="where experiment run folders go (runs)"
    )
    group.addoption("--harness-seed", type=int, help="seed for every experiment's random choices")
    group.addoption(
        "--harness-set",
        action="append",
        default=[],
        metavar="PATH=VALUE",
        help="override a field of every experiment collected, as harness run --set",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "experiment: a chaos experiment collected from a file")


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.Collector | None:
    if file_path.suffix in (".yaml", ".yml") and _looks_like_experiment(file_path):
        return ExperimentFile.from_parent(parent, path=file_path)
    return None


def _looks_like_experiment(path: Path) -> bool:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return False
    return isinstance(data, dict) and data.keys() >= EXPERIMENT_KEYS


class ExperimentFile(pytest.File):
    def collect(self) -> Iterator[pytest.Item]:
        axes = matrix.file_axes(self.path)
        for combination in matrix.combinations(axes, str(self.path)):
            label = combination.label
            name = f"{self.path.stem}[{label}]" if label else self.path.stem
            item = ExperimentItem.from_parent(self, name=name, combination=combination)
            item.add_marker("experiment")
            yield item

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> str:
        """A matrix the file gets wrong is its one message, as a run's bad input is."""
        if isinstance(excinfo.value, HarnessError):
            return str(excinfo.value)
        return str(super().repr_failure(excinfo))


class NotHeld(Exception):
    """The experiment ran and its verdict was not held; the message is its verdict table."""


class ExperimentItem(pytest.Item):
    def __init__(self, *, combination: matrix.Combination, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.combination = combination

    def runtest(self) -> None:
        from harness.report.console import summary_text

        options = self.config.option
        overrides = [*options.harness_set, *self.combination.overrides]
        result = _run_file(
            self.path, overrides, Path(options.harness_runs_dir), options.harness_seed
        )
        self.user_properties.append(("run_folder", str(result.run_dir)))
        self.user_properties.append(("verdict", result.verdict.value))
        if result.error is not None:
            raise result.error
        if result.verdict is not Verdict.HELD:
            raise NotHeld(summary_text(result.journal))

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> str:
        if isinstance(excinfo.value, NotHeld | HarnessError):
            return str(excinfo.value)
        return str(super().repr_failure(excinfo))

    def reportinfo(self) -> tuple[Path, int | None, str]:
        return self.path, None, f"experiment {self.name}"


def _run_file(
    path: Path, overrides: Sequence[str | Override], runs_dir: Path, seed: int | None
) -> RunResult:
    from rich.console import Console

    from harness.capacity.sweep import measured
    from harness.report.console import QuietProgress
    from harness.runner import run  # the runner pulls in every step: load it when needed

    experiment = load_experiment(path, overrides, stand_in=True)  # bad input before measuring
    err = Console(stderr=True, highlight=False)
    experiment = measured(experiment, overrides, QuietProgress(err), err.print)
    syntax.before_runs([experiment])
    texts = tuple(o.text if isinstance(o, Override) else o for o in overrides)
    return run(experiment, runs_dir=runs_dir, seed=seed, overrides=texts)


@pytest.fixture
def harness_run(tmp_path: Path) -> Callable[..., RunResult]:
    """Run an experiment file and return its ``RunResult``: ``harness_run(path, "a.b=1")``."""

    def run_experiment(path: str | Path, *overrides: str, seed: int | None = None) -> RunResult:
        return _run_file(Path(path), overrides, tmp_path / "runs", seed)

    return run_experiment
