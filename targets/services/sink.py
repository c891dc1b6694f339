"""Sink: owns the processing ledger, recording every processing (applied effect) of a message id.

``POST /processed`` ``{"messages": [{"id", "enqueued_at", "consumer", "started_at",
"failed"}, ...]}`` (a worker sends each batch it processed in one request, with the deliveries
whose processing failed) appends one JSON line ``{"id", "t", "consumer", "start"}`` per delivery
to LEDGER_FILE in one write and flushes before answering 200 ``{"recorded": n, "duplicates":
d}`` (``n``: the messages applied; ``d``: those whose id had been applied before). A delivery
that applied nothing has ``"applied": false``: a failed one, and with IDEMPOTENT=1 (default) a
delivery of an id already applied, counted in harness_duplicates_total but not applied again;
IDEMPOTENT=0 (the weakness) applies every delivery. So the ledger holds every delivery, with
when its processing began (``start``) and ended (``t``): the ledger's attempts and concurrent
processings are counted from them.
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
from dataclasses import dataclass
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


@dataclass(frozen=True)
class Delivery:
    """One delivery of a message, as a worker reports it."""

    id: str
    enqueued_at: float | None
    consumer: str
    started_at: float | None = None  # when its processing began
    failed: bool = False  # its processing failed: nothing to apply


class Ledger:
    """An append-only JSON-lines file plus the count of processings per id.

    Lines already in the file (a sink restarted on the same file) are counted at start, so that
    duplicates across a restart are still seen as duplicates. ``every_delivery``: a delivery
    that applies nothing is written too, with ``"applied": false``.
    """

    def __init__(self, path: Path, idempotent: bool, every_delivery: bool = True) -> None:
        self.idempotent = idempotent
        self.every_delivery = every_delivery
        path.parent.mkdir(parents=True, exist_ok=True)
        self.counts: Tally[str] = Tally()
        needs_newline = False
        if path.exists():
            with path.open("rb") as existing:
                for raw in existing:
                    needs_newline = not raw.endswith(b"\n")
                    try:
                        line = json.loads(raw)
                        if line.get("applied", True) is not False:
                            self.counts[str(line["id"])] += 1
                    except (ValueError, KeyError, TypeError, AttributeError):
                        continue  # a line torn by a crash
        self.file = path.open("a", encoding="utf-8")
        if needs_newline:
            self.file.write("\n")
            self.file.flush()

    def record(self, messages: list[Delivery]) -> list[bool]:
        """Append and flush one line per delivery; return whether each id had been applied
        before. When idempotent, a duplicate (even within ``messages``) is not applied again."""
        now = time.time()
        seen: list[bool] = []
        applied: list[str] = []
        lines: list[str] = []
        for message in messages:
            before = self.counts[message.id] > 0 or message.id in applied
            duplicate = before and not message.failed
            seen.append(duplicate)
            applies = not message.failed and not (duplicate and self.idempotent)
            if applies:
                applied.append(message.id)
            if applies or self.every_delivery:
                lines.append(json.dumps(_line(message, now, applies)) + "\n")
        if lines:
            self.file.write("".join(lines))
            self.file.flush()
        for mid in applied:  # counted once written: a failed write applied nothing
            self.counts[mid] += 1
        return seen


def _line(message: Delivery, now: float, applied: bool) -> dict[str, Any]:
    line: dict[str, Any] = {"id": message.id, "t": now, "consumer": message.consumer}
    if message.started_at is not None:
        line["start"] = message.started_at
    if not applied:
        line["applied"] = False
    return line


def _number(value: Any) -> float | None:
    is_number = isinstance(value, int | float) and not isinstance(value, bool)
    return value if is_number else None


def parse(body: Any) -> list[Delivery]:
    if not isinstance(body, dict) or not isinstance(body.get("messages"), list):
        raise ValueError('body must be {"messages": [...]}')
    parsed = []
    for message in body["messages"]:
        if not isinstance(message, dict) or message.get("id") is None:
            raise ValueError("every message needs an id")
        parsed.append(
            Delivery(
                str(message["id"]),
                _number(message.get("enqueued_at")),
                str(message.get("consumer", "")),
                _number(message.get("started_at")),
                message.get("failed") is True,
            )
        )
    return parsed


class Refused(Exception):
    """A batch not written: the answer that says why."""

    def __init__(self, answer: web.Answer) -> None:
        self.answer = answer


def recorded_in(ledger: Ledger, body: bytes) -> tuple[list[Delivery], list[bool]]:
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
        for message, dup in zip(messages, duplicate, strict=True):
            if message.failed:
                continue
            if dup:
                duplicates.inc()
                if ledger.idempotent:
                    continue  # absorbed: not applied again
            recorded += 1
            processed.inc()
            if message.enqueued_at is not None:
                latency.observe(max(0.0, now - message.enqueued_at))
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
    dead_letters = Ledger(
        Path(service.env_str("DEAD_LETTER_FILE")), idempotent=True, every_delivery=False
    )
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
