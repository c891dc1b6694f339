"""The run's Prometheus: its scrape config, its process, its data in the run folder."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from harness.deploy.process import ManagedProcess, Readiness
from harness.store import RunFolder

SCRAPE_INTERVAL = "1s"
RETENTION = "10y"
# Prometheus hands new targets to its scrapers at most this often (5 s by default, which was
# the whole wait for a run's first sample); 3.x honours less.
TARGET_UPDATE_INTERVAL = "100ms"


@dataclass(frozen=True)
class ScrapeTarget:
    """One endpoint to scrape; ``job`` is the component, ``labels`` say which replica."""

    job: str
    port: int
    path: str = "/metrics"
    labels: dict[str, str] = field(default_factory=dict)
    host: str = "127.0.0.1"


def config(targets: Sequence[ScrapeTarget], read_from: str | None = None) -> dict[str, object]:
    """Scrape every target each second; with ``read_from``, an existing Prometheus's series are
    read at query time too (remote read), so checks see both through one endpoint."""
    jobs: dict[tuple[str, str], list[ScrapeTarget]] = {}
    for target in targets:
        jobs.setdefault((target.job, target.path), []).append(target)
    remote = (
        [
            {
                "url": f"{read_from.rstrip('/')}/api/v1/read",
                "read_recent": True,
                "remote_timeout": "5s",
            }
        ]
        if read_from
        else []
    )
    return {
        "global": {
            "scrape_interval": SCRAPE_INTERVAL,
            "scrape_timeout": SCRAPE_INTERVAL,
            "evaluation_interval": SCRAPE_INTERVAL,
        },
        "scrape_configs": [
            {
                "job_name": job,
                "metrics_path": path,
                "static_configs": [
                    {"targets": [f"{t.host}:{t.port}"], "labels": t.labels} for t in members
                ],
            }
            for (job, path), members in jobs.items()
        ],
        "remote_read": remote,
    }


def arguments(
    run_dir: Path,
    targets: Sequence[ScrapeTarget],
    read_from: str | None,
    listen: str,
    config_dir: Path | None = None,
) -> list[str]:
    """Write the run's scrape config into the run folder (or ``config_dir``); the server's
    flags to use it, its TSDB in the run folder (the same paths in a container, where the run
    folder is mounted at its own path)."""
    folder = RunFolder(run_dir)
    config_path = config_dir / "prometheus.yml" if config_dir else folder.prometheus_config
    config_path.write_text(yaml.safe_dump(config(targets, read_from), sort_keys=False))
    return [
        f"--config.file={config_path}",
        f"--storage.tsdb.path={folder.tsdb}",
        f"--web.listen-address={listen}",
        # A run's data is read back for as long as its folder is kept (harness report
        # --rejudge): retention must never delete it when a stored run is served again.
        f"--storage.tsdb.retention.time={RETENTION}",
        f"--scrape.discovery-reload-interval={TARGET_UPDATE_INTERVAL}",
        "--log.level=warn",
    ]


class Prometheus:
    """A Prometheus server for one run, on a free port, keeping its TSDB in the run folder."""

    def __init__(
        self,
        binary: Path,
        port: int,
        run_dir: Path,
        targets: Sequence[ScrapeTarget],
        read_from: str | None = None,
        scratch: Path | None = None,
    ):
        """With ``scratch``, a stored run's data served again: its config and log go there,
        and the run folder's own are left as the run wrote them."""
        self.port = port
        listen = f"127.0.0.1:{port}"
        argv = [str(binary), *arguments(run_dir, targets, read_from, listen, scratch)]
        log = scratch / "prometheus.log" if scratch else RunFolder(run_dir).log("prometheus")
        self.process = ManagedProcess("prometheus", argv, log)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        """Start, without waiting: it gets ready while the target deploys."""
        self.process.start()

    def wait_ready(self, timeout_s: float = 15.0) -> None:
        self.process.wait_ready(timeout_s, Readiness(self.port, "/-/ready"))

    def stop(self) -> None:
        self.process.stop()

    @property
    def processes(self) -> dict[str, ManagedProcess]:
        return {self.process.name: self.process}

    def record(self) -> dict[str, dict[str, Any]]:
        return {}  # the run records its process with the others
