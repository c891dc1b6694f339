"""The timeline's own errors: replica counts, target sets, and faults that cannot overlap."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from harness.loader import load_experiment
from harness.timeline import expand
from tests.unit.test_loader import EXPERIMENT, edited, line_of, spec_error, write

SLOW_LINK = """\
  - name: slow-link
    at: 15s
    for: 20s
    fault: latency
    link: worker->broker
    latency: 300
"""


def with_timeline(tmp_path: Path, timeline: str) -> tuple[Path, str]:
    text = edited(EXPERIMENT, SLOW_LINK, timeline)
    return write(tmp_path / "exp.yaml", text), text


@pytest.mark.parametrize(
    ("timeline", "field", "fragment", "message"),
    [
        ("  - {at: 5s, for: 5s, fault: kill, component: worker, count: 3}\n",
         "timeline[0].count", "count: 3", "3 replicas asked of worker, which has 2"),
        ("  - {at: 5s, for: 5s, fault: latency, link: worker->broker, latency: 1, count: 1}\n",
         "timeline[0]", "count: 1", "'count' and 'percent' choose replicas of a component"),
        ("  - {at: 5s, for: 5s, fault: partition, link: [api->broker, worker->brokr]}\n",
         "timeline[0].link[1]", "worker->brokr", "no link 'worker->brokr'"),
        ("  - {at: 5s, for: 5s, fault: kill, link: worker->broker}\n",
         "timeline[0]", "fault: kill", "a kill fault acts on a component: give 'component'"),
        ("  - {at: 5s, for: 5s, times: 2, fault: pause, component: worker}\n",
         "timeline[0]", "times: 2", "'times' goes with 'every'"),
        ("  - {at: 5s, for: 10s, fault: partition, link: api->broker}\n"
         "  - {at: 10s, for: 5s, fault: latency, link: api->broker, latency: 5}\n",
         "timeline[1]", "at: 10s", "latency overlaps partition (timeline[0]) on api->broker "
         "from 10s: they cannot both apply"),
        ("  - {at: 5s, for: 10s, fault: kill, component: worker, count: 1}\n"
         "  - {at: 8s, for: 5s, fault: pause, component: [broker, worker]}\n",
         "timeline[1]", "at: 8s", "pause overlaps kill (timeline[0]) on worker"),
        ("  - {at: 5s, for: 10s, every: 5s, fault: kill, component: worker}\n",
         "timeline[0]", "every: 5s", "kill overlaps kill (timeline[0]) on worker"),
    ],
)  # fmt: skip
def test_timeline_errors_name_file_line_and_field(
    tmp_path: Path, timeline: str, field: str, fragment: str, message: str
) -> None:
    path, text = with_timeline(tmp_path, timeline)
    error = spec_error(path)
    assert (error.line, error.field) == (line_of(text, fragment), field)
    assert message in error.message


def test_toxics_on_the_same_link_may_overlap(tmp_path: Path) -> None:
    path, _ = with_timeline(
        tmp_path,
        "  - {at: 5s, for: 10s, fault: latency, link: api->broker, latency: 5}\n"
        "  - {at: 8s, for: 10s, fault: bandwidth, link: api->broker, rate: 10}\n",
    )
    assert len(load_experiment(path).faults) == 2


def occurrences(
    tmp_path: Path, timeline: str, seed: int
) -> list[tuple[float, str, tuple[str, ...]]]:
    path, _ = with_timeline(tmp_path, timeline)
    steps = expand(load_experiment(path), random.Random(seed))
    return [(s.at_s, s.target.name, s.target.replicas) for s in steps]


def test_every_repeats_until_the_load_ends_and_times_caps_it(tmp_path: Path) -> None:
    every = "  - {at: 10s, for: 5s, every: 20s, fault: pause, component: worker}\n"
    assert [t for t, _, _ in occurrences(tmp_path, every, 1)] == [10, 30, 50]
    capped = "  - {at: 10s, for: 5s, every: 20s, times: 2, fault: pause, component: worker}\n"
    assert [t for t, _, _ in occurrences(tmp_path, capped, 1)] == [10, 30]


def test_replicas_and_targets_are_chosen_by_the_seed(tmp_path: Path) -> None:
    timeline = (
        "  - {at: 5s, for: 2s, every: 5s, fault: kill, component: worker, count: 1}\n"
        "  - {at: 5s, for: 2s, every: 5s, fault: partition, link: [api->broker, worker->sink]}\n"
    )
    first = occurrences(tmp_path, timeline, 7)
    assert first == occurrences(tmp_path, timeline, 7)  # --seed replays the same choices
    kills = [r for _, name, r in first if name == "worker"]
    assert all(len(r) == 1 and r[0] in ("worker-0", "worker-1") for r in kills)
    links = {name for _, name, _ in first if "->" in name}
    assert links <= {"api->broker", "worker->sink"}
    seeds = {tuple(occurrences(tmp_path, timeline, seed)) for seed in range(10)}
    assert len(seeds) > 1  # and another seed makes other choices


def test_percent_rounds_up_and_no_count_means_every_replica(tmp_path: Path) -> None:
    half = "  - {at: 5s, for: 2s, fault: pause, component: worker, percent: 10}\n"
    assert len(occurrences(tmp_path, half, 1)[0][2]) == 1
    every = "  - {at: 5s, for: 2s, fault: pause, component: worker}\n"
    assert occurrences(tmp_path, every, 1)[0][2] == ("worker-0", "worker-1")
