"""Judging a stored run again, from what its folder keeps (Jepsen's save, then check): the
journal's moments and events, the ledger's files, and the run's own Prometheus data, served by
a Prometheus started on the run's ``prometheus/`` folder for as long as the judging takes.

The checks are the run's own experiment (``experiment.yaml`` as it was when the run started,
with the run's overrides) on the target file the run used. Nothing of the run folder is
rewritten but Prometheus' own data, which it compacts as it opens it.
"""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Iterator
from pathlib import Path

from harness import components, judge
from harness.deploy.ports import PortAllocator
from harness.errors import SpecError
from harness.journal import CheckResult, Journal, read_journal
from harness.loader import load_experiment
from harness.observe.prometheus import Prometheus
from harness.observe.promql import PromQL
from harness.secrets import MASK
from harness.spec import Experiment
from harness.store import RunFolder
from harness.verdict import Verdict, merge


def rejudge(run_dir: Path) -> tuple[Journal, list[CheckResult], Verdict]:
    """The stored journal, its checks judged again, and the verdict they give now: the run's
    own verdict still stands when the run itself went wrong (an error, a dead load)."""
    journal = read_journal(run_dir)
    if not journal.checks:
        raise SpecError(
            str(RunFolder(run_dir).journal), None, "checks",
            f"the run ended before judging (verdict {journal.verdict.value}"
            f"{f': {journal.reason}' if journal.reason else ''}): nothing to judge again",
        )  # fmt: skip
    experiment = _experiment(run_dir, journal)
    with served(run_dir) as promql:
        evidence = judge.stored_evidence(journal, experiment, promql)
        checks = judge.evaluate_all(experiment, evidence, journal.faults_skipped)
    verdict = journal.verdict if journal.reason else merge(c.verdict for c in checks)
    return journal, checks, verdict


def _experiment(run_dir: Path, journal: Journal) -> Experiment:
    """The experiment as the run had it: its copy in the run folder, on the run's target file,
    with the run's overrides (those the journal masks held secrets, which no check reads)."""
    copy = RunFolder(run_dir).experiment
    sets = [o for o in journal.overrides if MASK not in o and not o.startswith("target=")]
    if journal.load.get("capacity") and "rate" in journal.load:
        # A share of capacity is the rate it came to then, whatever is measured now.
        sets.append(f"load.rate={journal.load['rate']}")
    return load_experiment(copy if copy.is_file() else Path(journal.experiment_file),
                           [*sets, f"target={journal.target_file}"])  # fmt: skip


@contextlib.contextmanager
def served(run_dir: Path) -> Iterator[PromQL]:
    """A Prometheus on the run's stored data, scraping nothing, until the block ends."""
    if not RunFolder(run_dir).tsdb.is_dir():
        raise SpecError(str(run_dir), None, "prometheus", "the run folder keeps no Prometheus data")
    binary = components.find("prometheus")
    with tempfile.TemporaryDirectory(prefix="harness-rejudge-") as scratch:
        prometheus = Prometheus(
            binary, PortAllocator().allocate(), run_dir, [], None, Path(scratch)
        )
        prometheus.start()
        try:
            prometheus.wait_ready(60.0)  # it replays the stored write-ahead log first
            yield PromQL(prometheus.url)
        finally:
            prometheus.stop()
