"""The stored run: every path of ``runs/<id>/``, named here once, for the run that writes them
and for the commands that read them back (``harness report``, ``--rejudge``, ``harness down``).
What each file holds is in docs/results.md."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path


@dataclass(frozen=True)
class RunFolder:
    path: Path

    @classmethod
    def create(cls, runs_dir: Path, experiment: str, t: float) -> RunFolder:
        """A new ``<runs_dir>/<utc-time>-<experiment>[-n]/`` with its logs folder."""
        stamp = datetime.fromtimestamp(t, UTC).strftime("%Y%m%dT%H%M%S")
        base = f"{stamp}-{re.sub(r'[^A-Za-z0-9_-]', '-', experiment)}"
        path, suffix = runs_dir / base, 1
        while path.exists():
            suffix += 1
            path = runs_dir / f"{base}-{suffix}"
        (path / "logs").mkdir(parents=True)
        return cls(path.resolve())

    @property
    def journal(self) -> Path:
        return self.path / "journal.json"

    @property
    def events(self) -> Path:
        return self.path / "events.jsonl"

    @property
    def state(self) -> Path:
        return self.path / "state.jsonl"

    @property
    def junit(self) -> Path:
        return self.path / "junit.xml"

    @property
    def report(self) -> Path:
        return self.path / "report.html"

    @property
    def series(self) -> Path:
        return self.path / "series.json"

    @property
    def experiment(self) -> Path:
        """The experiment file as it was when the run started."""
        return self.path / "experiment.yaml"

    @property
    def prometheus_config(self) -> Path:
        return self.path / "prometheus.yml"

    @property
    def tsdb(self) -> Path:
        """The run's Prometheus data."""
        return self.path / "prometheus"

    @property
    def harness_error(self) -> Path:
        return self.path / "harness-error.txt"

    @property
    def sent(self) -> Path:
        return self.path / "ledger" / "sent.jsonl"

    @property
    def processed(self) -> Path:
        return self.path / "ledger" / "processed.jsonl"

    @property
    def effects(self) -> Path:
        """The effects the target's output held after the drain (its ``output.effects``), one
        line per effect under the name the source counted it by."""
        return self.path / "ledger" / "effects.jsonl"

    @property
    def positions(self) -> Path:
        """Each partition's committed position and processed records after the drain (the
        target's ``output.positions``): ``{"committed": {partition: n}, "processed": {...}}``."""
        return self.path / "ledger" / "positions.json"

    @property
    def traffic(self) -> Path:
        """The bytes through each link's proxy so far, sampled each second: a line
        ``{"t": ..., "bytes": {link: n}}``, or ``{"t": ..., "error": why}`` when they could not
        be read."""
        return self.path / "traffic.jsonl"

    def place(self, role: str) -> Path:
        """The ids a target's place of that role (``dead_lettered``…) held after the drain."""
        return self.path / "ledger" / f"{role}.jsonl"

    def log(self, name: str) -> Path:
        return self.path / "logs" / f"{name}.log"

    def data(self, replica: str) -> Path:
        """A replica's own data folder, kept across its restarts."""
        return self.path / "data" / replica
