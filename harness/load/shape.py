"""A load's shape (``load.shape``): how the rate changes over the run.

A shape is one of ``ramp``, ``steps``, ``spike`` or ``sine``. It becomes the linear segments
the open model's sends follow (a send is due when the rate's integral reaches its number) and
the phases whose edges are moments of the timeline (``load.ramp.start``, ``load.peak.end``,
``load.step2.start``), so that a check can look ``during: load.peak``. Pure: it starts nothing.
"""

from __future__ import annotations

import math
import re
from typing import Annotated, Any

from pydantic import BeforeValidator, Field, model_validator

from harness.model import Model
from harness.units import Duration, Rate, parse_rate

# (start, end) in seconds from the load's start, and the rate at each end, in messages/s.
Segment = tuple[float, float, float, float]
Phase = tuple[str, float, float]  # name, start, end
# A sine as straight lines a second long (a scrape's resolution), at most this many: the
# segments travel on Locust's command line.
SINE_PIECES = 1000


def _level(value: Any) -> float:
    """A rate that may be nothing at all (``0``, ``0/s``): a shape may start from silence."""
    if isinstance(value, int | float) and not isinstance(value, bool) and value == 0:
        return 0.0
    if isinstance(value, str) and re.fullmatch(r"\s*0+(\.0*)?\s*(/\s*[sm])?\s*", value):
        return 0.0
    return parse_rate(value)


Level = Annotated[float, BeforeValidator(_level)]


class Ramp(Model):
    """From one rate to another over a time, then the second rate to the end."""

    start: Level = Field(alias="from")
    to: Level
    over: Duration = Field(gt=0)


class Step(Model):
    rate: Level
    for_: Duration = Field(alias="for", gt=0)


class Spike(Model):
    """A base rate, and a peak rate for a while from a moment."""

    base: Level
    peak: Rate
    at: Duration = Field(ge=0)
    for_: Duration = Field(alias="for", gt=0)


class Sine(Model):
    """A rate that swings ``amplitude`` either side of ``mean``, once per ``period``."""

    mean: Rate
    amplitude: Level
    period: Duration = Field(gt=0)

    @model_validator(mode="after")
    def _never_negative(self) -> Sine:
        if self.amplitude > self.mean:
            raise ValueError("the amplitude must not exceed the mean: a rate is never below 0")
        return self


class Shape(Model):
    ramp: Ramp | None = None
    # Each step is a segment on Locust's command line: far more than a useful shape has.
    steps: list[Step] | None = Field(None, min_length=1, max_length=100)
    spike: Spike | None = None
    sine: Sine | None = None

    @model_validator(mode="after")
    def _one_kind(self) -> Shape:
        given = [name for name in ("ramp", "steps", "spike", "sine") if getattr(self, name)]
        if len(given) != 1:
            raise ValueError("give one of ramp, steps, spike or sine")
        return self

    def segments(self, duration_s: float) -> list[Segment]:
        """The rate over ``[0, duration_s]``, as linear pieces in order."""
        if self.ramp is not None:
            r, over = self.ramp, min(self.ramp.over, duration_s)
            rest = [(over, duration_s, r.to, r.to)] if over < duration_s else []
            end_rate = r.start + (r.to - r.start) * over / r.over
            return [(0.0, over, r.start, end_rate), *rest]
        if self.spike is not None:
            s = self.spike
            return _flat([(0.0, s.at, s.base), (s.at, s.at + s.for_, s.peak),
                          (s.at + s.for_, math.inf, s.base)], duration_s)  # fmt: skip
        if self.sine is not None:
            w = self.sine
            count = min(SINE_PIECES, math.ceil(duration_s))
            ticks = [duration_s * i / count for i in range(count + 1)]
            rate = [w.mean + w.amplitude * math.sin(2 * math.pi * t / w.period) for t in ticks]
            return [
                (a, b, ra, rb)
                for a, b, ra, rb in zip(ticks, ticks[1:], rate, rate[1:], strict=False)
                if b > a
            ]
        assert self.steps is not None
        pieces, t = [], 0.0
        for step in self.steps:
            pieces.append((t, t + step.for_, step.rate))
            t += step.for_
        last = self.steps[-1].rate
        return _flat([*pieces, (t, math.inf, last)], duration_s)

    def phases(self, duration_s: float) -> list[Phase]:
        """The named stretches of the shape within the load: ``ramp`` and ``hold``, ``peak``,
        ``step1``, ``step2``, ... (a sine has none)."""
        if self.ramp is not None:
            over = min(self.ramp.over, duration_s)
            return [
                ("ramp", 0.0, over),
                *([("hold", over, duration_s)] if over < duration_s else []),
            ]
        if self.spike is not None:
            start = min(self.spike.at, duration_s)
            return [("peak", start, min(self.spike.at + self.spike.for_, duration_s))]
        if self.steps is not None:
            found, t = [], 0.0
            for i, step in enumerate(self.steps, 1):
                if t < duration_s:
                    found.append((f"step{i}", t, min(t + step.for_, duration_s)))
                t += step.for_
            return found
        return []

    def names(self) -> list[str]:
        """The phases' names, as spans a check may look during (``load.peak``)."""
        if self.ramp is not None:
            return ["load.ramp", "load.hold"]
        if self.spike is not None:
            return ["load.peak"]
        return [f"load.step{i}" for i in range(1, len(self.steps or ()) + 1)]

    def peak(self, duration_s: float) -> float:
        """The highest rate within the load."""
        return max(max(a, b) for _, _, a, b in self.segments(duration_s))

    def sends(self, duration_s: float) -> float:
        """How many sends the shape makes due over the load: its rate's integral."""
        return sum((b - a) * (ra + rb) / 2 for a, b, ra, rb in self.segments(duration_s))


def _flat(pieces: list[tuple[float, float, float]], duration_s: float) -> list[Segment]:
    """Constant pieces cut at the load's end; empty ones left out."""
    return [(a, min(b, duration_s), r, r) for a, b, r in pieces if a < min(b, duration_s)]
