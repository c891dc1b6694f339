"""`harness up` leaves a target standing beyond the command; `harness down` ends it all."""

from __future__ import annotations

import re
import time
from pathlib import Path

import httpx
import pytest

from harness.observe.promql import PromQL
from harness.report import panels
from tests.integration.redis_streams_stack import free_port
from tests.integration.test_run import leftovers

pytestmark = [pytest.mark.integration]


def test_up_stands_the_target_with_prometheus_until_down(harness_cli, tmp_path: Path) -> None:
    port = free_port()
    result = harness_cli(
        "up", "experiments/slow-consumer.yaml", "--runs-dir", str(tmp_path),
        "--prometheus-port", str(port), "--set", "worker.replicas=1",
    )  # fmt: skip
    urls = dict(re.findall(r"^  (\S+): (http://\S+)$", result.stdout, re.MULTILINE))
    (run_dir,) = tmp_path.iterdir()
    try:
        assert result.returncode == 0, result.stdout + result.stderr
        assert urls["prometheus"] == f"http://127.0.0.1:{port}"
        # The command has returned; what it started still answers, through its link proxies.
        accepted = httpx.post(urls["api"], json={"id": "by-hand-1", "payload": {}}, timeout=5)
        assert accepted.status_code == 202, accepted.text
        promql = PromQL(urls["prometheus"])
        processed = 'sum(harness_messages_processed_total{target="redis-streams"})'
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            samples = promql.instant(processed)
            if samples and samples[0].value >= 1:
                break
            time.sleep(0.5)
        else:
            pytest.fail("the job posted by hand was never processed and scraped")
        # The dashboards' backlog panel reads this Prometheus as it stands (the probe is
        # scraped at its own offset in the second, so its first sample may come a scrape later).
        backlog = panels.concrete(panels.OVERVIEW[0].queries[0].expr, "redis-streams", "jobs")
        deadline = time.monotonic() + 10
        while not promql.instant(backlog) and time.monotonic() < deadline:
            time.sleep(0.5)
        assert promql.instant(backlog)
        # Without load, the dashboards' variables still offer the target and its queue.
        for name, value in (("target", "redis-streams"), ("queue", "jobs")):
            series, label = panels.VARIABLES[name]
            offered = httpx.get(
                f"{urls['prometheus']}/api/v1/label/{label}/values",
                params={"match[]": panels.concrete(series, "redis-streams", "jobs")},
                timeout=5,
            ).json()["data"]
            assert value in offered, (name, offered)
        assert leftovers(run_dir)
    finally:
        down = harness_cli("down")
    assert down.returncode == 0, down.stderr
    assert f"stopped the standing redis-streams ({run_dir})" in down.stdout
    assert not leftovers(run_dir)
    with pytest.raises(httpx.HTTPError):
        httpx.get(f"{urls['prometheus']}/-/ready", timeout=2)
    again = harness_cli("down")
    assert "stopped" not in again.stdout


def test_a_stand_whose_dashboards_cannot_be_pushed_is_not_left_standing(
    harness_cli, tmp_path: Path
) -> None:
    result = harness_cli(
        "up", "experiments/slow-consumer.yaml", "--runs-dir", str(tmp_path),
        "--prometheus-port", str(free_port()), "--set", "worker.replicas=1",
        "--grafana-url", f"http://127.0.0.1:{free_port()}",
        env={"GRAFANA_TOKEN": "t"},
    )  # fmt: skip
    assert result.returncode == 2, result.stdout + result.stderr
    assert "error: Grafana:" in result.stderr
    (run_dir,) = tmp_path.iterdir()
    assert not leftovers(run_dir)
    assert "stopped" not in harness_cli("down").stdout
