"""The report's charts: fault windows, axes, and what a chart without data says."""

from __future__ import annotations

import re

from harness.journal import Event, Outcome
from harness.report import charts
from harness.report.charts import Chart, Line, Span


def test_fault_spans_pair_each_apply_with_its_heal_and_close_the_unhealed_at_the_end() -> None:
    timeline = [
        Event("fault.apply", "w", 10.0, 10.0, Outcome.OK, {"label": "a", "fault": "kill"}),
        Event("fault.apply", "l", 12.0, 12.0, Outcome.OK, {"label": "b", "fault": "partition"}),
        Event("fault.heal", "w", 15.0, 15.0, Outcome.OK, {"label": "a", "fault": "kill"}),
    ]
    spans = charts.fault_spans(timeline, end=30.0)
    assert [(s.start, s.end) for s in spans] == [(10.0, 15.0), (12.0, 30.0)]
    assert spans[1].label == "b: partition on l"


def test_a_chart_draws_every_point_with_faults_and_marks_inside_the_window() -> None:
    chart = Chart("Backlog", "short", "why", [Line("waiting", [(100.0, 0.0), (110.0, 730.0)])])
    drawn = charts.svg(chart, (95.0, 120.0), 100.0, [Span(104, 108, "f")], [Span(112, 112, "c")])
    assert 'data-points="2"' in drawn
    assert drawn.count('class="fault"') == 1 and drawn.count('class="mark"') == 1
    assert ">1k<" in drawn  # the axis top: the next round number above the highest value
    xs = [float(x) for x in re.findall(r'points="([\d.]+),', drawn)]
    assert charts.LEFT < xs[0] < charts.WIDTH - charts.RIGHT


def test_a_chart_without_data_draws_an_empty_axis() -> None:
    drawn = charts.svg(Chart("DLQ", "short", "why", []), (0.0, 60.0), 5.0, [], [])
    assert "polyline" not in drawn and "<svg" in drawn
