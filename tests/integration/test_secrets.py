"""Secrets planted where a user puts them (a --set value, a ledger URL, the Grafana URL and
token) appear in no artefact of a real run and on no console line; no process the run started
inherited the token (their logs are among the artefacts, and Grafana's annotations fail
against a port nothing serves)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.integration.quick_experiments import QUICK, reference_target

pytestmark = [pytest.mark.integration]

PLANTED = ("planted-set-7f3a", "planted-ledger-9c1e", "planted-grafana-4b2d", "planted-token-e8")


def test_no_planted_secret_reaches_an_artefact_or_the_console(harness_cli, tmp_path: Path) -> None:
    set_secret, ledger_secret, grafana_secret, token = PLANTED
    # A ledger nothing serves: its failure (and so its URL) is in the reasons and the events.
    target = reference_target(
        tmp_path, f'ledger: {{source: http, url: "http://u:{ledger_secret}@127.0.0.1:9/ids"}}\n'
    )
    experiment = tmp_path / "secrets.yaml"
    experiment.write_text(
        "name: secrets\n" + QUICK.replace(QUICK.split("\n")[0], f"target: {target}")
    )
    runs = tmp_path / "runs"
    result = harness_cli(
        "run", str(experiment), "--runs-dir", str(runs),
        "--set", f"api.env.DB_PASSWORD={set_secret}",
        "--grafana-url", f"http://admin:{grafana_secret}@127.0.0.1:9",
        env={"GRAFANA_TOKEN": token}, timeout=180,
    )  # fmt: skip
    assert result.returncode == 2, result.stdout + result.stderr  # the ledger cannot be read
    (run_dir,) = runs.iterdir()
    assert (run_dir / "journal.json").exists()
    artefacts = [p for p in run_dir.rglob("*") if p.is_file() and "prometheus" not in p.parts]
    assert len(artefacts) > 5
    for secret in PLANTED:
        assert secret not in result.stdout + result.stderr
        for path in artefacts:
            assert secret.encode() not in path.read_bytes(), f"{secret} in {path}"
    assert "api.env.DB_PASSWORD=***" in (run_dir / "journal.json").read_text()
