"""Scrape gaps: stretches of a run when a scrape target did not answer, no fault explaining it.

Prometheus writes ``up == 0`` for every failed scrape. A target that stops answering (the
probe died, a component hangs) leaves a hole in its metrics, and a threshold that holds on the
samples around the hole proves nothing: a check that reads any metric of such a target is
inconclusive (fail closed). Downtime a fault caused on purpose (a replica killed or paused
until its heal) is excused, as is the load generator's after the load ends.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from harness.journal import Event
from harness.observe.footprint import SATURATED
from harness.observe.promql import PromQL
from harness.observe.spans import merge

MIN_GAP_S = 3.0  # one missed scrape under heavy load is noise; three in a row is an outage
STEP_S = 1.0
IDENTIFIER = re.compile(r"[A-Za-z_:][A-Za-z0-9_:]*")

WHY_NOT_SCRAPED = "was not scraped (down or not answering)"
WHY_SATURATED = (
    f"used over {SATURATED * 100:.0f} % of a core (its latency includes its own queueing)"
)
LATENCY = re.compile(r"latency|duration")


@dataclass(frozen=True)
class Gap:
    """``instance`` (a replica, or ``load``) could not be trusted from ``start`` to ``end``."""

    instance: str
    start: float
    end: float
    metrics: frozenset[str]
    why: str = WHY_NOT_SCRAPED

    def touches(self, query: str) -> set[str]:
        """The metrics of this target the query reads."""
        return set(self.metrics.intersection(IDENTIFIER.findall(query)))


Windows = Mapping[str, Sequence[tuple[float, float]]]


def meant_down(
    events: Sequence[Event], moments: Mapping[str, float], grace_s: float
) -> dict[str, list[tuple[float, float]]]:
    """When each replica was down on purpose: from a fault's apply to ``grace_s`` after its
    heal (or for good, if it never healed), and the load generator once the load ended."""
    windows: dict[str, list[tuple[float, float]]] = {}
    applied: dict[tuple[object, object], Event] = {}
    for event in events:
        key = (event.value.get("label"), event.value.get("occurrence"))
        if event.kind == "fault.apply" and event.value.get("replicas"):
            applied[key] = event
        elif event.kind == "fault.heal" and key in applied:
            start = applied.pop(key)
            for replica in start.value["replicas"]:
                windows.setdefault(replica, []).append((start.t_invoke, event.t_complete + grace_s))
    for start in applied.values():
        for replica in start.value["replicas"]:
            windows.setdefault(replica, []).append((start.t_invoke, math.inf))
    if "load.end" in moments:
        windows["load"] = [(moments["load.end"], math.inf)]
    return windows


def find_gaps(promql: PromQL, start: float, end: float, excused: Windows) -> list[Gap]:
    """Every unexcused run of failed scrapes of at least ``MIN_GAP_S`` between the two times."""
    gaps = []
    # The run's own scrapes only: an existing Prometheus read alongside has targets of its own.
    for series in promql.range('up{instance_name!=""}', start, end, STEP_S):
        instance = series.labels.get("instance_name", series.labels.get("instance", "?"))
        allowed = excused.get(instance, ())
        down = [
            t
            for t, value in series.points
            if value == 0 and not any(a <= t <= b for a, b in allowed)
        ]
        for first, last in merge(((t, t) for t in down), STEP_S * 1.5):
            if last - first + STEP_S >= MIN_GAP_S:
                selector = f'{{instance_name="{instance}"}}'
                metrics = promql.metric_names(selector, start, end) - {"up"}
                gaps.append(Gap(instance, first, last, frozenset(metrics)))
    return gaps


def saturation_gaps(
    promql: PromQL, spans: Sequence[tuple[float, float]], start: float, end: float
) -> list[Gap]:
    """The load generator's latency metrics, untrustworthy while it saturated its core."""
    names = promql.metric_names('{instance_name="load"}', start, end)
    latency = frozenset(n for n in names if LATENCY.search(n))
    return [Gap("load", a, b, latency, WHY_SATURATED) for a, b in spans]
