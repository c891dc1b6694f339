"""PromQL in an experiment, parsed before anything runs: a typo in a check is bad input (exit 3,
at its line), not an inconclusive check found at the end of a run.

Prometheus' own parser is the judge (``/api/v1/parse_query`` of a Prometheus that scrapes
nothing, started for the occasion: ready in well under a second), so what it accepts is exactly
what the run's queries may use. A third-party parser would lag behind Prometheus' syntax and
turn a valid query into a false error.
"""

from __future__ import annotations

import contextlib
import re
import tempfile
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

from harness import components
from harness.deploy.ports import PortAllocator
from harness.errors import MissingComponent
from harness.observe.prometheus import Prometheus
from harness.observe.promql import BadQuery, PromQL
from harness.spec import Experiment

# Prometheus says 'invalid parameter "query": 1:6: parse error: ...'; the position and the
# reason are what a user needs.
_REASON = re.compile(r'invalid parameter "query":\s*(.*)$', re.DOTALL)


@contextlib.contextmanager
def parser() -> Iterator[Callable[[Experiment], None]]:
    """A function that raises SpecError at the first expression of an experiment Prometheus
    cannot parse; the Prometheus it asks starts on first use and stops when the block ends.
    Raises MissingComponent when there is no Prometheus to ask."""
    with contextlib.ExitStack() as stack:
        promql: PromQL | None = None

        def check(experiment: Experiment) -> None:
            nonlocal promql
            for expression in experiment.promql:
                if promql is None:
                    promql = stack.enter_context(_scratch())
                try:
                    promql.parse(expression.expr)
                except BadQuery as exc:
                    found = _REASON.search(str(exc))
                    reason = found.group(1) if found else str(exc)
                    raise expression.error(f"not valid PromQL: {reason}") from None

        yield check


def before_runs(experiments: Iterable[Experiment]) -> None:
    """Parse every experiment's PromQL before the first run starts. Without a Prometheus to
    parse with, the run itself says what to install, in its own order."""
    with contextlib.suppress(MissingComponent), parser() as parse:
        for experiment in experiments:
            parse(experiment)


@contextlib.contextmanager
def _scratch() -> Iterator[PromQL]:
    binary = components.find("prometheus")
    with tempfile.TemporaryDirectory(prefix="harness-promql-") as folder:
        prometheus = Prometheus(binary, PortAllocator().allocate(), Path(folder), [])
        prometheus.start()
        try:
            prometheus.wait_ready()
            promql = PromQL(prometheus.url)
            try:
                yield promql
            finally:
                promql.close()
        finally:
            prometheus.stop()
