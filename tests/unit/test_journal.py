"""The run's history: events on disk as they happen, and the journal written whole."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

from harness.journal import Event, EventLog, Outcome, write_json


def lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_each_event_is_on_disk_before_the_log_closes(tmp_path: Path) -> None:
    log = EventLog(tmp_path / "events.jsonl")
    log.record(Event("phase", "run", 10.0, 10.5, Outcome.INFO, {"phase": "deploy"}))
    assert lines(log.path) == [
        {
            "kind": "phase",
            "target": "run",
            "t_invoke": 10.0,
            "t_complete": 10.5,
            "outcome": "info",
            "value": {"phase": "deploy"},
        }
    ]
    log.now("fault.apply", "worker->broker", Outcome.OK, label="slow-link")
    assert [e["kind"] for e in lines(log.path)] == ["phase", "fault.apply"]
    log.close()


def test_now_completes_now_and_keeps_the_invoke_time(tmp_path: Path) -> None:
    log = EventLog(tmp_path / "events.jsonl")
    event = log.now("fault.heal", "api->broker", Outcome.FAIL, 5.0, error="gone")
    assert (event.t_invoke, event.outcome, event.value) == (5.0, Outcome.FAIL, {"error": "gone"})
    assert event.t_complete > 5.0
    instant = log.now("load.start", "api")
    assert instant.t_invoke == instant.t_complete
    assert instant.outcome is Outcome.INFO
    assert log.events == [event, instant]
    log.close()


def test_the_log_appends_to_an_existing_file_and_makes_its_folder(tmp_path: Path) -> None:
    path = tmp_path / "run" / "events.jsonl"
    first = EventLog(path)
    first.now("phase", "run", phase="deploy")
    first.close()
    second = EventLog(path)
    second.now("phase", "run", phase="load")
    second.close()
    assert [e["value"] for e in lines(path)] == [{"phase": "deploy"}, {"phase": "load"}]


def test_events_from_several_threads_are_whole_lines(tmp_path: Path) -> None:
    log = EventLog(tmp_path / "events.jsonl")

    def record(worker: int) -> None:
        for n in range(50):
            log.now("load.send", "api", Outcome.OK, id=f"{worker}-{n}")

    threads = [threading.Thread(target=record, args=(w,)) for w in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    log.close()
    ids = sorted(e["value"]["id"] for e in lines(log.path))
    assert ids == sorted(f"{w}-{n}" for w in range(4) for n in range(50))


def test_write_json_replaces_the_file_whole_and_leaves_no_temporary(tmp_path: Path) -> None:
    path = tmp_path / "journal.json"
    path.write_text("old", encoding="utf-8")
    write_json(path, {"verdict": "held", "checks": [1, 2]})
    assert json.loads(path.read_text(encoding="utf-8")) == {"verdict": "held", "checks": [1, 2]}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["journal.json"]


def test_write_json_writes_what_json_cannot_as_text(tmp_path: Path) -> None:
    path = tmp_path / "journal.json"
    write_json(path, {"file": tmp_path / "x.yaml"})
    assert json.loads(path.read_text(encoding="utf-8")) == {"file": str(tmp_path / "x.yaml")}


def test_a_journal_read_by_the_files_keys_gives_the_files_form() -> None:
    """Code written when ``RunResult.journal`` was the file's dict keeps working."""
    from harness.journal import Journal

    data = {
        "run_id": "r", "run_dir": "/runs/r", "experiment": "e", "verdict": "held",
        "ledger": {"acknowledged": 3, "failed": 0, "indeterminate": 0, "processed": 3,
                   "deliveries": 3, "lost": 0, "duplicated": 0, "unexpected": 0,
                   "recovered": 0, "examples": {}},
    }  # fmt: skip
    journal = Journal.from_json(data)
    assert journal["ledger"]["lost"] == 0 and journal.ledger is not None
    assert journal["verdict"] == "held" and journal["run_dir"] == "/runs/r"
    assert Journal.from_json(journal.to_json()) == journal
