"""report.html: one self-contained page that shows what happened without reading the journal."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import jinja2
from markupsafe import Markup

from harness.faults.evidence import Effect
from harness.journal import Event, Journal
from harness.report import charts
from harness.report.charts import LEAD_S, Chart, Span
from harness.store import RunFolder

_TEMPLATES = jinja2.Environment(
    loader=jinja2.PackageLoader("harness.report", "templates"),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
)


def window(journal: Journal) -> tuple[float, float, float]:
    """The charts' span, and their zero: the load's start (the run's, if the load never did)."""
    moments = journal.moments
    last = max((e.t_complete for e in journal.timeline), default=moments.get("start", 0.0))
    zero = moments.get("load.start", moments.get("start", last))
    return zero - LEAD_S, moments.get("end", last), zero


def write(run_dir: Path, journal: Journal, saved: Sequence[Chart]) -> Path:
    """Render the page from the journal and the saved series; returns its path."""
    t0, t1, zero = window(journal)
    faults = charts.fault_spans(journal.timeline, t1)
    saturated = charts.saturation_spans(journal.timeline)
    marks = [Span(t, t, check.name) for check in journal.checks for t in check.at]
    shown = [
        {
            "title": chart.title,
            "why": chart.why,
            "error": chart.error,
            "svg": Markup(charts.svg(chart, (t0, t1), zero, faults, marks, saturated)),
            "key": charts.legend(chart),
        }
        for chart in saved
    ]
    page = _TEMPLATES.get_template("report.html.j2").render(
        j=journal.to_json(),  # the page shows the journal as its file has it
        charts=shown,
        saturated=bool(saturated),
        timeline=[_row(event, zero) for event in journal.timeline],
        effects=[Effect.of_event(e) for e in journal.timeline if e.kind == "fault.effect"],
        experiment_text=_experiment_text(run_dir, journal),
    )
    path = RunFolder(run_dir).report
    path.write_text(page, encoding="utf-8")
    return path


def _row(event: Event, zero: float) -> dict[str, Any]:
    took_ms = (event.t_complete - event.t_invoke) * 1000
    return {
        "at": f"{event.t_invoke - zero:+.2f}s",
        "took": f"{took_ms:.0f} ms" if took_ms >= 1 else "",
        "kind": event.kind,
        "target": event.target,
        "outcome": event.outcome.value,
        "details": json.dumps(event.value, sort_keys=True) if event.value else "",
    }


def _experiment_text(run_dir: Path, journal: Journal) -> str:
    for path in (RunFolder(run_dir).experiment, Path(journal.experiment_file)):
        if path.is_file():
            return path.read_text(encoding="utf-8")
    return f"({journal.experiment_file} is no longer there)"
