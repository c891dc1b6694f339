"""Sink: owns the processing ledger, recording every processing (applied effect) of a message id.

``POST /processed`` ``{"messages": [{"id", "enqueued_at", "consumer"}, ...]}`` (a worker sends
each batch it processed in one request) appends one JSON line ``{"id", "t", "consumer"}`` per
applied message to LEDGER_FILE in one write and flushes before answering 200
``{"recorded": n, "duplicates": d}`` (``d``: the messages whose id had been applied before).
With IDEMPOTENT=1 (default) a delivery of an id already applied is counted in
harness_duplicates_total but not applied again (no line); IDEMPOTENT=0 (the weakness) applies
and writes every delivery.
``GET /ledger`` -> ``{"processed": {id: times applied}}``; ``/healthz``, ``/metrics``.
``POST /dead_lettered`` (the same body) records the messages a worker moved to the dead-letter
queue, once per id, in DEAD_LETTER_FILE; ``GET /dead_lettered`` -> ``{id: 1}``: the place the
target's ledger finds its dead letters in after the drain.
Env: PORT, LEDGER_FILE, DEAD_LETTER_FILE (required), QUEUE (metric label, default ``jobs``),
IDEMPOTENT.
"""

from __future__ import annotations

import json
import sys
import time
from collections import Counter as Tally
from pathlib import Path
from typing import Any

from prometheus_client import Counter, Histogram

sys.path.insert(0, str(Path(__file__).resolve().parent))
import service
import web

log = service.setup_logging("sink")

PROCESSED = Counter(
    "harness_messages_processed_total", "Processings applied (written to the ledger)", ["queue"]
)
DUPLICATES = Counter(
    "harness_duplicates_total",
    "Deliveries of an id that had been applied before (applied again only if not idempotent)",
    ["queue"],
)
# Seconds; 15 and 20 keep a quantile between 10 and 30 s from being a coarse interpolation.
BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 15, 20, 30, 60)
LATENCY = Histogram(
    "harness_end_to_end_latency_seconds",
    "Time from enqueue (api) to record (sink)",
    ["queue"],
    buckets=BUCKETS,
)


class Ledger:
    """An append-only JSON-lines file plus the count of processings per id.

    Lines already in the file (a sink restarted on the same file) are counted at start, so that
    duplicates across a restart are still seen as duplicates.
    """

    def __init__(self, path: Path, idempotent: bool) -> None:
        self.idempotent = idempotent
        path.parent.mkdir(parents=True, exist_ok=True)
        self.counts: Tally[str] = Tally()
        needs_newline = False
        if path.exists():
            with path.open("rb") as existing:
                for raw in existing:
                    needs_newline = not raw.endswith(b"\n")
                    try:
                        self.counts[str(json.loads(raw)["id"])] += 1
                    except (ValueError, KeyError, TypeError):
                        continue  # a line torn by a crash
        self.file = path.open("a", encoding="utf-8")
        if needs_newline:
            self.file.write("\n")
            self.file.flush()

    def record(self, messages: list[tuple[str, float | None, str]]) -> list[bool]:
        """Append and flush one line per message to apply; return whether each id was a
        duplicate. When idempotent, a duplicate (even within ``messages``) is not applied."""
        now = time.time()
        seen: list[bool] = []
        applied: list[tuple[str, str]] = []
        for mid, _, consumer in messages:
            duplicate = self.counts[mid] > 0 or any(mid == a for a, _ in applied)
            seen.append(duplicate)
            if not (duplicate and self.idempotent):
                applied.append((mid, consumer))
        if applied:
            self.file.write(
                "".join(json.dumps({"id": m, "t": now, "consumer": c}) + "\n" for m, c in applied)
            )
            self.file.flush()
        for mid, _ in applied:  # counted once written: a failed write applied nothing
            self.counts[mid] += 1
        return seen


def parse(body: Any) -> list[tuple[str, float | None, str]]:
    if not isinstance(body, dict) or not isinstance(body.get("messages"), list):
        raise ValueError('body must be {"messages": [...]}')
    parsed = []
    for message in body["messages"]:
        if not isinstance(message, dict) or message.get("id") is None:
            raise ValueError("every message needs an id")
        enqueued_at = message.get("enqueued_at")
        if not isinstance(enqueued_at, int | float) or isinstance(enqueued_at, bool):
            enqueued_at = None
        parsed.append((str(message["id"]), enqueued_at, str(message.get("consumer", ""))))
    return parsed


class Refused(Exception):
    """A batch not written: the answer that says why."""

    def __init__(self, answer: web.Answer) -> None:
        self.answer = answer


def recorded_in(
    ledger: Ledger, body: bytes
) -> tuple[list[tuple[str, float | None, str]], list[bool]]:
    """The batch in ``body``, written to ``ledger``, and whether each id had been before."""
    try:
        messages = parse(json.loads(body))
    except ValueError as exc:
        raise Refused((400, {"error": str(exc)})) from None
    try:
        return messages, ledger.record(messages)
    except OSError as exc:
        log.error("cannot write %s: %s", ledger.file.name, exc)
        raise Refused((503, {"error": f"ledger: {exc}"})) from None


def build_routes(ledger: Ledger, dead_letters: Ledger, queue: str) -> web.Routes:
    processed = PROCESSED.labels(queue=queue)
    duplicates = DUPLICATES.labels(queue=queue)
    latency = LATENCY.labels(queue=queue)

    async def post_processed(body: bytes) -> web.Answer:
        try:
            messages, duplicate = recorded_in(ledger, body)
        except Refused as refused:
            return refused.answer
        now = time.time()
        recorded = 0
        for (_, enqueued_at, _), dup in zip(messages, duplicate, strict=True):
            if dup:
                duplicates.inc()
                if ledger.idempotent:
                    continue  # absorbed: not applied again
            recorded += 1
            processed.inc()
            if enqueued_at is not None:
                latency.observe(max(0.0, now - enqueued_at))
        return 200, {"recorded": recorded, "duplicates": sum(duplicate)}

    async def get_ledger(body: bytes) -> web.Answer:
        return 200, {"processed": dict(ledger.counts)}

    async def post_dead_lettered(body: bytes) -> web.Answer:
        try:
            messages, _ = recorded_in(dead_letters, body)
        except Refused as refused:
            return refused.answer
        return 200, {"recorded": len(messages)}

    async def get_dead_lettered(body: bytes) -> web.Answer:
        return 200, dict(dead_letters.counts)

    return {
        ("POST", "/processed"): post_processed,
        ("GET", "/ledger"): get_ledger,
        ("POST", "/dead_lettered"): post_dead_lettered,
        ("GET", "/dead_lettered"): get_dead_lettered,
    }


def main() -> int:
    port = service.env_int("PORT")
    path = Path(service.env_str("LEDGER_FILE"))
    queue = service.env_str("QUEUE", "jobs")
    ledger = Ledger(path, service.env_flag("IDEMPOTENT", True))
    dead_letters = Ledger(Path(service.env_str("DEAD_LETTER_FILE")), idempotent=True)
    log.info(
        "sink listening on http://127.0.0.1:%d, ledger %s (%d lines already there), queue=%s, "
        "idempotent=%s",
        port,
        path,
        sum(ledger.counts.values()),
        queue,
        ledger.idempotent,
    )
    try:
        service.serve(build_routes(ledger, dead_letters, queue), port)
    finally:
        ledger.file.close()
        dead_letters.file.close()
    log.info("sink stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
