"""When the open model's sends are due: at a constant rate, or along a shape's linear segments.

Imported by the locustfile as a top-level module (beside it), so it imports nothing of the
harness; the harness's tests import it as ``harness.load.pacing``.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator, Sequence

Segment = Sequence[float]  # start, end (seconds from the load's start), rate at each end


def due_times(
    rate: float, segments: Sequence[Segment], processes: int, index: int
) -> Iterator[float]:
    """Seconds from the start at which process ``index`` of ``processes`` sends: each process
    takes every ``processes``-th send of the whole schedule, so that they interleave."""
    whole = _constant(rate) if not segments else _shaped(segments)
    return itertools.islice(whole, index, None, processes)


def rate_at(rate: float, segments: Sequence[Segment], t: float) -> float:
    """The rate the schedule aims for ``t`` seconds after its start."""
    for a, b, ra, rb in segments:
        if a <= t < b:
            return ra + (rb - ra) * (t - a) / (b - a)
    return rate if not segments else 0.0


def _constant(rate: float) -> Iterator[float]:
    for n in itertools.count():
        yield n / rate


def _shaped(segments: Sequence[Segment]) -> Iterator[float]:
    """The nth send is due where the rate's integral from the start reaches n."""
    owed, done = 0.0, 0.0  # the integral at which the next send is due; up to this segment
    for a, b, ra, rb in segments:
        length = b - a
        area = length * (ra + rb) / 2
        while area > 0 and owed <= done + area:
            yield a + _within(owed - done, ra, rb, length)
            owed += 1
        done += area


def _within(x: float, ra: float, rb: float, length: float) -> float:
    """Where in a segment (rate ``ra`` to ``rb`` over ``length``) the integral reaches ``x``."""
    slope = (rb - ra) / length
    if abs(slope) < 1e-12:
        return x / ra
    return min(length, (-ra + math.sqrt(max(0.0, ra * ra + 2 * slope * x))) / slope)
