"""The run's key series, fetched from its Prometheus once, kept in ``series.json``, drawn as SVG.

The charts are drawn here, as plain SVG, so report.html needs no script and no network to
open: it reads the same offline, in a CI artefact or an e-mail, as on the day of the run.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from html import escape
from pathlib import Path

from harness.journal import Event, Outcome
from harness.observe.promql import PromQL, PromQLError
from harness.report.panels import Panel, concrete
from harness.store import RunFolder

# Seconds of steady state shown before the load starts (and after its end, the drain).
LEAD_S = 5.0
WIDTH, HEIGHT = 640, 180
LEFT, RIGHT, TOP, BOTTOM = 52, 8, 8, 22
COLOURS = ("#2b6cb0", "#dd6b20", "#2f855a", "#805ad5", "#c53030", "#0b7285")


@dataclass(frozen=True)
class Line:
    legend: str
    points: list[tuple[float, float]]


@dataclass(frozen=True)
class Chart:
    title: str
    unit: str
    why: str
    lines: list[Line]
    error: str | None = None  # why the chart has no data, when Prometheus could not say


@dataclass(frozen=True)
class Span:
    """A shaded stretch (a fault) or, with ``start == end``, a marked moment (a check)."""

    start: float
    end: float
    label: str


def fetch(
    promql: PromQL, panels: Sequence[Panel], target: str, queue: str, start: float, end: float
) -> list[Chart]:
    """Every panel's series over the run, one point a second."""
    charts = []
    for panel in panels:
        lines: list[Line] = []
        error = None
        for query in panel.queries:
            try:
                found = promql.range(concrete(query.expr, target, queue), start, end)
            except PromQLError as exc:
                error = str(exc)
                continue
            for series in found:
                legend = query.legend
                for key, value in series.labels.items():
                    legend = legend.replace("{{" + key + "}}", value)
                lines.append(Line(legend, series.points))
        charts.append(Chart(panel.title, panel.unit, panel.why, lines, error))
    return charts


UNSEEN = "Acknowledged, not yet processed"


def unseen(run_dir: Path, start: float, end: float) -> Chart:
    """The ledger's own chart: how many acknowledged messages waited for their processing at
    each second, as Jepsen draws ``unseen``; a loss is a line that never comes back to zero."""
    from harness.ledger import history  # DuckDB: loaded once the run is judged
    from harness.ledger.files import LedgerUnreadable

    folder = RunFolder(run_dir)
    why = "from the ledger: acknowledged by the API, not yet recorded by the sink"
    try:
        points = history.unseen(folder.sent, folder.processed, start, end)
    except LedgerUnreadable as exc:
        return Chart(UNSEEN, "messages", why, [], f"the ledger cannot be read: {exc}")
    if points is None:
        untimed = "the processings were read after the drain, without their times"
        return Chart(UNSEEN, "messages", why, [], untimed)
    return Chart(UNSEEN, "messages", why, [Line("unseen", points)])


def save(run_dir: Path, charts: Sequence[Chart]) -> None:
    path = RunFolder(run_dir).series
    path.write_text(json.dumps([asdict(chart) for chart in charts]), encoding="utf-8")


def load(run_dir: Path) -> list[Chart]:
    """The charts a run saved; none when it ended before Prometheus could be asked."""
    path = RunFolder(run_dir).series
    if not path.is_file():
        return []
    charts = []
    for raw in json.loads(path.read_text(encoding="utf-8")):
        lines = [Line(line["legend"], [tuple(p) for p in line["points"]]) for line in raw["lines"]]
        charts.append(Chart(raw["title"], raw["unit"], raw["why"], lines, raw.get("error")))
    return charts


def svg(
    chart: Chart,
    window: tuple[float, float],
    zero: float,
    faults: Sequence[Span],
    marks: Sequence[Span],
    saturated: Sequence[Span] = (),
) -> str:
    """One chart over ``window``: seconds since ``zero`` (the load's start) across, values up;
    ``faults`` and the stretches the host's CPU was ``saturated`` shaded, each in its colour."""
    t0, t1 = window
    values = [v for line in chart.lines for _, v in line.points]
    top = _nice_ceiling(max(values, default=0.0))
    span = max(t1 - t0, 1.0)
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

    def x(t: float) -> float:
        return LEFT + (min(max(t, t0), t1) - t0) / span * plot_w

    def y(v: float) -> float:
        return TOP + plot_h - (v / top) * plot_h if top else TOP + plot_h

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" '
        f'class="chart" role="img" aria-label="{escape(chart.title)}">'
    ]
    for shade, spans in (("fault", faults), ("saturated", saturated)):
        for shaded in spans:
            parts.append(
                f'<rect class="{shade}" x="{x(shaded.start):.1f}" y="{TOP}" '
                f'width="{max(x(shaded.end) - x(shaded.start), 1):.1f}" height="{plot_h}">'
                f"<title>{escape(shaded.label)}</title></rect>"
            )
    for tick in (0.0, top / 2, top):
        parts.append(
            f'<line class="grid" x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y(tick):.1f}" '
            f'y2="{y(tick):.1f}"/><text class="axis" x="{LEFT - 4}" y="{y(tick) + 4:.1f}" '
            f'text-anchor="end">{_short(tick, chart.unit)}</text>'
        )
    for tick in _time_ticks(t0 - zero, t1 - zero):
        parts.append(
            f'<text class="axis" x="{x(zero + tick):.1f}" y="{HEIGHT - 6}" '
            f'text-anchor="middle">{tick:+.0f}s</text>'
        )
    for mark in marks:
        parts.append(
            f'<line class="mark" x1="{x(mark.start):.1f}" x2="{x(mark.start):.1f}" y1="{TOP}" '
            f'y2="{TOP + plot_h}"><title>{escape(mark.label)}</title></line>'
        )
    for i, line in enumerate(chart.lines):
        points = " ".join(f"{x(t):.1f},{y(v):.1f}" for t, v in line.points)
        parts.append(
            f'<polyline class="series" data-points="{len(line.points)}" fill="none" '
            f'stroke="{COLOURS[i % len(COLOURS)]}" stroke-width="1.5" points="{points}">'
            f"<title>{escape(line.legend)}</title></polyline>"
        )
    parts.append("</svg>")
    return "".join(parts)


def legend(chart: Chart) -> list[tuple[str, str, str]]:
    """Each line's colour, name and last value, for the key under a chart."""
    return [
        (COLOURS[i % len(COLOURS)], line.legend, _short(line.points[-1][1], chart.unit))
        for i, line in enumerate(chart.lines)
    ]


def fault_spans(timeline: Sequence[Event], end: float) -> list[Span]:
    """Each fault from its application to its heal (or to the run's end if never healed)."""
    open_faults: dict[str, Event] = {}
    spans = []
    for event in timeline:
        label = str(event.value.get("label"))
        if event.kind == "fault.apply" and event.outcome is Outcome.OK:
            open_faults[label] = event
        elif event.kind == "fault.heal" and label in open_faults:
            spans.append(_fault_span(open_faults.pop(label), event.t_complete))
    spans.extend(_fault_span(applied, end) for applied in open_faults.values())
    return sorted(spans, key=lambda s: s.start)


def saturation_spans(timeline: Sequence[Event]) -> list[Span]:
    """Each stretch the host's CPU was saturated, from its ``host.saturated`` event."""
    return [
        Span(
            event.t_invoke,
            event.t_complete,
            f"the host's CPU saturated: {event.value['busy']:.0%} of "
            f"{event.value['cores']} cores busy",
        )
        for event in timeline
        if event.kind == "host.saturated"
    ]


def _fault_span(applied: Event, end: float) -> Span:
    value = applied.value
    text = f"{value.get('label')}: {value.get('fault')} on {applied.target}"
    return Span(applied.t_complete, end, text)


def _nice_ceiling(v: float) -> float:
    """The axis top: the next 1, 2 or 5 times a power of ten at or above ``v``."""
    if v <= 0 or math.isnan(v):
        return 0.0
    power = 10.0 ** math.floor(math.log10(v))
    return next(float(m * power) for m in (1, 2, 5, 10) if m * power >= v)


def _time_ticks(first_s: float, last_s: float) -> list[float]:
    """Round seconds since the load's start, at most about eight across the window."""
    span = last_s - first_s
    step = next((s for s in (5, 10, 15, 30, 60, 120, 300, 600) if span / s <= 8), 1800)
    return [float(t) for t in range(math.ceil(first_s / step) * step, int(last_s) + 1, step)]


def _short(v: float, unit: str) -> str:
    if unit == "s":
        return f"{v * 1000:.0f}ms" if 0 < v < 1 else f"{v:.3g}s"
    if abs(v) >= 1000:
        return f"{v / 1000:.3g}k"
    return f"{v:.3g}"
