"""Capacity without running a target: the order of the rates a sweep tries, the stored
measurement and when it is read back, a rate given as a share of it, and the command line's
bad input. The sweeps on a real target are tests/integration/test_capacity.py."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from rich.console import Console

from harness.capacity import share, store, sweep
from harness.capacity.share import CapacityUnmeasured, Subject
from harness.cli import main
from harness.errors import SpecError
from harness.loader import load_experiment
from harness.report.console import QuietProgress
from tests.conftest import ROOT

TARGET = ROOT / "targets" / "redis-streams.yaml"
EXPERIMENT = f"""\
name: share
target: {TARGET}
load: {{rate: 40% capacity, duration: 10s}}
checks:
  - {{name: nothing lost, ledger: lost, expect: "== 0"}}
"""


@pytest.fixture(autouse=True)
def capacity_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "capacity"
    monkeypatch.setenv("HARNESS_CAPACITY_DIR", str(folder))
    return folder


class Sweep(sweep.Measuring):
    """A sweep whose steps are decided by a capacity, not run: the order of the rates tried."""

    def __init__(self, capacity: float, **settings: object) -> None:
        runs = Path(str(settings.pop("runs_dir")))
        super().__init__(Subject(TARGET), sweep.Settings(runs_dir=runs, **settings),  # type: ignore[arg-type]
                         QuietProgress(Console(file=None)), lambda line: None)  # fmt: skip
        self.capacity = capacity
        self.tried: list[float] = []

    def step(self, rate: float) -> bool:
        self.tried.append(rate)
        return rate <= self.capacity


def test_a_sweep_doubles_while_sustained_then_halves_the_gap(tmp_path: Path) -> None:
    found = Sweep(45, start=20.0, runs_dir=tmp_path)
    assert found.sweep() == 45
    assert found.tried == [20, 40, 80, 60, 50, 45]


def test_a_start_above_the_capacity_halves_down_first(tmp_path: Path) -> None:
    found = Sweep(7, start=50.0, runs_dir=tmp_path)
    held = found.sweep()
    assert found.tried[:4] == [50, 25, 12, 6]
    assert 6 <= held <= 7


def test_given_rates_stop_at_the_first_not_sustained(tmp_path: Path) -> None:
    found = Sweep(35, rates=(10.0, 20.0, 40.0, 30.0), runs_dir=tmp_path)
    assert found.sweep() == 20 and found.tried == [10, 20, 40]


def test_nothing_sustained_down_to_one_message_a_second(tmp_path: Path) -> None:
    found = Sweep(0.5, start=4.0, runs_dir=tmp_path, consumer=None, sweeps=1)
    with pytest.raises(sweep.NotSustained, match="sustained no rate"):
        found.measure()
    assert found.tried == [4, 2, 1]


def test_rates_tried_read_as_a_person_would_pick_them() -> None:
    assert [sweep.rounded(r) for r in (1300.4, 47.3, 0.55, 650, 1_234_567)] == [
        1300,
        47,
        0.55,
        650,
        1_200_000,
    ]
    assert sweep.median_and_range([600, 650, 700]) == "650/s (600/s to 700/s)"
    assert sweep.median_and_range([47.5453]) == "47.5/s"


def measurement(topology_key: str, **changes: object) -> store.Measurement:
    found = store.Measurement(
        target="redis-streams", key=topology_key, host=store.host(), cores=store.cores(),
        measured_at=store.now(), rate_per_s=500.0, rates_per_s=(500.0,), catch_up_per_s=None,
        catch_ups_per_s=(), backlog=0, step_s=20.0,
    )  # fmt: skip
    return dataclasses.replace(found, **changes)  # type: ignore[arg-type]


def topology_key(experiment: Path, *sets: str) -> str:
    return store.key(load_experiment(experiment, sets, stand_in=True).topology)


def test_a_share_of_capacity_is_read_from_the_measurement_of_the_same_system(
    tmp_path: Path,
) -> None:
    path = tmp_path / "share.yaml"
    path.write_text(EXPERIMENT)
    store.keep(measurement(topology_key(path)))
    experiment = load_experiment(path)
    assert experiment.spec.load.rate == 200.0
    assert experiment.capacity is not None and experiment.capacity.to_json()["percent"] == 40
    # Another system (two workers more) has no measurement: it is measured, never guessed.
    with pytest.raises(CapacityUnmeasured) as missing:
        load_experiment(path, ["worker.replicas=4", "deployer=local"])
    assert missing.value.subject.sets == ("worker.replicas=4", "deployer=local")
    assert f"{path}:3: load.rate" in str(missing.value)
    assert load_experiment(path, ["worker.replicas=4"], stand_in=True).spec.load.rate == 40.0


def test_an_old_measurement_is_not_read(tmp_path: Path) -> None:
    path = tmp_path / "share.yaml"
    path.write_text(EXPERIMENT)
    store.keep(measurement(topology_key(path), measured_at="2026-01-01T00:00:00+00:00"))
    with pytest.raises(CapacityUnmeasured):
        load_experiment(path)


@pytest.mark.parametrize(
    ("rate", "message"),
    [
        ("0% capacity", "above 0% and at most 1000%"),
        ("2000% capacity", "above 0% and at most 1000%"),
        ("40% capcity", "or a share of capacity such as 40% capacity"),
    ],
)
def test_a_wrong_share_is_bad_input_at_its_line(tmp_path: Path, rate: str, message: str) -> None:
    path = tmp_path / "share.yaml"
    path.write_text(EXPERIMENT.replace("40% capacity", rate))
    with pytest.raises(SpecError, match=message) as error:
        load_experiment(path)
    assert error.value.line == 3


def test_percent_is_read_in_either_wording() -> None:
    assert share.percent_of("40% capacity") == share.percent_of(" 40 % of Capacity ") == 40
    assert share.percent_of("200/s") is None and share.percent_of(200) is None


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--sweeps", "0"], "--sweeps: expected a whole number"),
        (["--set", "load.rate=5/s"], "load is the measurement's own"),
        (["--step", "2s"], "a step is at least 6s"),
        (["--rates", "10,fast"], "--rates: expected a rate"),
        (["--consumer", "nosuch"], "--consumer: no component 'nosuch'"),
    ],
)
def test_bad_capacity_flags_are_bad_input(
    flags: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["capacity", "redis-streams", "--runs-dir", str(tmp_path), *flags])
    assert code == 3 and message in capsys.readouterr().err


def test_a_new_measurement_removes_the_runs_of_the_one_it_replaces(capacity_dir: Path) -> None:
    quick, elsewhere = capacity_dir / "runs" / "old-step", capacity_dir.parent / "runs" / "step"
    for run in (quick, elsewhere):
        run.mkdir(parents=True)
    store.keep(measurement("k", runs=(str(quick), str(elsewhere))))
    store.keep(measurement("k"))
    assert not quick.exists() and elsewhere.exists()  # a user's --runs-dir is theirs


def test_a_run_at_a_share_of_capacity_is_judged_again_at_the_rate_it_came_to(
    tmp_path: Path,
) -> None:
    from harness.journal import Journal
    from harness.rejudge import _experiment
    from harness.verdict import Verdict

    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "experiment.yaml").write_text(EXPERIMENT)
    share = {"percent": 40.0, "capacity_per_s": 350.0, "measured_at": store.now(), "key": "k"}
    journal = Journal("r", str(run_dir), "share", Verdict.HELD, target_file=str(TARGET),
                      load={"rate": 140.0, "duration": "10s", "capacity": share})  # fmt: skip
    # No measurement here now (an empty store): the run's own rate stands.
    assert _experiment(run_dir, journal).spec.load.rate == 140.0
