"""The one redaction rule, on each form a secret comes in."""

from __future__ import annotations

import pytest

from harness import secrets


@pytest.mark.parametrize(
    ("given", "shown"),
    [
        ("postgresql://u:hunter2@db:5432/x", "postgresql://u:***@db:5432/x"),
        ("redis://:hunter2@cache:6379/0", "redis://:***@cache:6379/0"),
        ("https://u:hunter2@h/ids?x=1", "https://u:***@h/ids?x=1"),
        ("postgresql://db/x?user=u&password=hunter2", "postgresql://db/x?user=u&password=***"),
        ("https://h/ids?token=hunter2&page=2", "https://h/ids?token=***&page=2"),
        ("postgresql://u:hunter2@[::1/db", "postgresql://***@[::1/db"),  # urllib cannot split it
        ("redis://cache:6379/0", "redis://cache:6379/0"),
    ],
)
def test_a_url_keeps_everything_but_its_secrets(given: str, shown: str) -> None:
    assert secrets.url(given) == shown
    assert "hunter2" not in secrets.text(f"connecting to {given} failed")


def test_a_dsn_of_key_value_pairs_loses_its_password() -> None:
    shown = secrets.text("invalid dsn: host=db user=u password='hunter 2' sslpassword=x2")
    assert shown == "invalid dsn: host=db user=u password=*** sslpassword=***"


@pytest.mark.parametrize(
    ("given", "shown"),
    [
        ("api.env.DB_PASSWORD=hunter2", "api.env.DB_PASSWORD=***"),
        ("api.env.API_KEY=hunter2", "api.env.API_KEY=***"),
        ("worker.env.GITHUB_TOKEN=hunter2", "worker.env.GITHUB_TOKEN=***"),
        ("sink.env.DB_URL=postgresql://u:hunter2@db/x", "sink.env.DB_URL=postgresql://u:***@db/x"),
        ("ledger.key=effects", "ledger.key=effects"),  # a Redis key's name, not a secret
        ("worker.replicas=4", "worker.replicas=4"),
    ],
)
def test_a_set_keeps_its_path_and_loses_a_secret_value(given: str, shown: str) -> None:
    assert secrets.assignment(given) == shown


def test_the_processes_a_run_starts_inherit_no_secret_named_variable() -> None:
    harness_env = {
        "PATH": "/usr/bin",
        "HOME": "/root",
        "LANG": "C.UTF-8",
        "GRAFANA_TOKEN": "t",
        "GRAFANA_PASSWORD": "p",
        "AWS_SECRET_ACCESS_KEY": "s",
        "HARNESS_HOME": "/cache",
    }
    assert secrets.inherited(harness_env) == {
        "PATH": "/usr/bin",
        "HOME": "/root",
        "LANG": "C.UTF-8",
        "HARNESS_HOME": "/cache",
    }


def test_a_postgres_ledger_given_as_a_dsn_is_described_without_its_password() -> None:
    from harness.ledger.sources import PostgresLedger, describe

    ledger = PostgresLedger(source="postgres", url="host=db user=u password=hunter2", query="q")
    assert describe(ledger) == "postgres host=db user=u password=***"
