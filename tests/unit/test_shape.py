"""A load's shape: its segments and phases, the open model's due times along them, and what
an experiment may and may not say about it."""

from __future__ import annotations

import itertools
import re
from pathlib import Path

import pytest

from harness.errors import SpecError
from harness.load.pacing import due_times, rate_at
from harness.load.shape import Shape
from harness.loader import load_experiment
from harness.units import Moment
from tests.conftest import ROOT


def first(n: int, times: object) -> list[float]:
    return [round(t, 4) for t in itertools.islice(times, n)]  # type: ignore[call-overload]


def test_a_constant_rate_is_due_every_interval_and_processes_interleave() -> None:
    assert first(4, due_times(50, [], 1, 0)) == [0.0, 0.02, 0.04, 0.06]
    assert first(2, due_times(50, [], 2, 1)) == [0.02, 0.06]


def test_steps_send_at_each_steps_rate() -> None:
    shape = Shape.model_validate({"steps": [{"rate": "10/s", "for": "1s"},
                                            {"rate": "20/s", "for": "1s"}]})  # fmt: skip
    times = list(itertools.takewhile(lambda t: t < 2, due_times(0, shape.segments(2), 1, 0)))
    assert sum(1 for t in times if t < 1) == 10 and sum(1 for t in times if t >= 1) == 20
    assert shape.phases(2) == [("step1", 0, 1), ("step2", 1, 2)]
    assert shape.names() == ["load.step1", "load.step2"]


def test_a_ramp_sends_as_its_rate_integrates() -> None:
    shape = Shape.model_validate({"ramp": {"from": 0, "to": "100/s", "over": "2s"}})
    segments = shape.segments(5)
    assert segments == [(0, 2, 0, 100), (2, 5, 100, 100)]
    times = list(itertools.takewhile(lambda t: t < 2, due_times(0, segments, 1, 0)))
    assert len(times) == 100  # the triangle's area: 2 s x 100/s / 2
    assert 24 <= sum(1 for t in times if t < 1) <= 26  # a quarter of it in the first second
    assert shape.phases(5) == [("ramp", 0, 2), ("hold", 2, 5)]
    assert rate_at(0, segments, 1.0) == 50
    assert shape.sends(5) == 400


def test_a_spike_and_a_sine() -> None:
    spike = Shape.model_validate({"spike": {"base": "20/s", "peak": "200/s", "at": "4s",
                                            "for": "2s"}})  # fmt: skip
    assert spike.segments(10) == [(0, 4, 20, 20), (4, 6, 200, 200), (6, 10, 20, 20)]
    assert spike.phases(10) == [("peak", 4, 6)] and spike.peak(10) == 200
    sine = Shape.model_validate({"sine": {"mean": "50/s", "amplitude": "50/s", "period": "4s"}})
    segments = sine.segments(8)
    assert len(segments) == 8 and min(min(s[2], s[3]) for s in segments) >= -1e-9
    assert sine.peak(8) == pytest.approx(100) and sine.phases(8) == []


@pytest.mark.parametrize(
    ("shape", "why"),
    [
        ("{}", "give one of ramp, steps, spike or sine"),
        ("{ramp: {from: 1/s, to: 5/s, over: 2s}, sine: {mean: 5/s, amplitude: 1/s, period: 2s}}",
         "give one of ramp, steps, spike or sine"),
        ("{sine: {mean: 5/s, amplitude: 9/s, period: 2s}}", "must not exceed the mean"),
        ("{steps: []}", "at least 1 item"),
    ],
)  # fmt: skip
def test_a_wrong_shape_is_refused(tmp_path: Path, shape: str, why: str) -> None:
    with pytest.raises(SpecError, match=why):
        load_experiment(written(tmp_path, f"{{duration: 30s, shape: {shape}}}"))


@pytest.mark.parametrize(
    ("load", "why"),
    [
        ("{rate: 5/s, duration: 30s, shape: {spike: {base: 1/s, peak: 5/s, at: 1s, for: 1s}}}",
         "give a rate"),
        ("{duration: 30s}", "give a rate"),
        ("{duration: 30s, model: closed, shape: {spike: {base: 1/s, peak: 5/s, at: 1s, for: 1s}}}",
         "the model is open"),
    ],
)  # fmt: skip
def test_a_shape_goes_instead_of_a_rate_with_the_open_model(
    tmp_path: Path, load: str, why: str
) -> None:
    with pytest.raises(SpecError, match=why):
        load_experiment(written(tmp_path, load))


def test_a_check_may_look_during_a_phase_of_the_shape(tmp_path: Path) -> None:
    load = "{duration: 30s, shape: {spike: {base: 10/s, peak: 50/s, at: 2s, for: 3s}}}"
    check = "  - {name: peak, query: 'sum(up)', during: load.peak, expect: '> 0'}\n"
    experiment = load_experiment(written(tmp_path, load, check))
    assert experiment.spec.load.arrivals == "open" and experiment.spec.load.peak_rate == 50
    assert Moment.parse("load.peak.end+1s").span == "load.peak"
    with pytest.raises(SpecError, match=r"load\.peak"):
        load_experiment(written(tmp_path, load, check.replace("load.peak", "load.summit")))


def written(tmp_path: Path, load: str, check: str = "") -> Path:
    text = (ROOT / "experiments" / "slow-consumer.yaml").read_text()
    text = re.sub(r"^load: .*$", f"load: {load}", text, count=1, flags=re.M)
    text = text.replace("\ncheck", "\ncheck", 1)
    if check:
        text = re.sub(r"^checks:\n", "checks:\n" + check, text, count=1, flags=re.M)
    path = tmp_path / "shaped.yaml"
    path.write_text(text)
    return path
