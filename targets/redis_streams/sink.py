"""Sink: owns the processing ledger, recording every processing of a message id.

``POST /processed`` ``{"messages": [{"id", "enqueued_at", "consumer"}, ...]}`` appends one JSON line
``{"id", "t", "consumer"}`` per message to LEDGER_FILE and flushes before answering 200
``{"recorded": n}``. ``GET /ledger`` -> ``{"processed": {id: count}}``; ``/healthz``, ``/metrics``.
Env: PORT (required), LEDGER_FILE (required), QUEUE (metric label, default ``jobs``).
"""

from __future__ import annotations

import json
import sys
import time
from collections import Counter as Tally
from pathlib import Path
from typing import Any

from prometheus_client import Counter, Histogram
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common

log = common.setup_logging("sink")

PROCESSED = Counter("harness_messages_processed_total", "Processings recorded", ["queue"])
DUPLICATES = Counter(
    "harness_duplicates_total", "Processings of an id that had been recorded before", ["queue"]
)
LATENCY = Histogram(
    "harness_end_to_end_latency_seconds",
    "Time from enqueue (api) to record (sink)",
    ["queue"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)


class Ledger:
    """An append-only JSON-lines file plus the count of processings per id.

    Lines already in the file (a sink restarted on the same file) are counted at start, so that
    duplicates across a restart are still seen as duplicates.
    """

    def __init__(self, path: Path) -> None:
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
        """Append and flush one line per message; return whether each id was a duplicate."""
        now = time.time()
        self.file.write(
            "".join(
                json.dumps({"id": mid, "t": now, "consumer": consumer}) + "\n"
                for mid, _, consumer in messages
            )
        )
        self.file.flush()
        seen = []
        for mid, _, _ in messages:
            seen.append(self.counts[mid] > 0)
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


def build_app(ledger: Ledger, queue: str) -> Starlette:
    processed = PROCESSED.labels(queue=queue)
    duplicates = DUPLICATES.labels(queue=queue)
    latency = LATENCY.labels(queue=queue)

    async def post_processed(request: Request) -> JSONResponse:
        try:
            messages = parse(await request.json())
        except ValueError as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)
        try:
            duplicate = ledger.record(messages)
        except OSError as exc:
            log.error("cannot write the ledger: %s", exc)
            return JSONResponse({"error": f"ledger: {exc}"}, status_code=503)
        now = time.time()
        for (_, enqueued_at, _), dup in zip(messages, duplicate, strict=True):
            processed.inc()
            if dup:
                duplicates.inc()
            if enqueued_at is not None:
                latency.observe(max(0.0, now - enqueued_at))
        return JSONResponse({"recorded": len(messages)})

    async def get_ledger(request: Request) -> JSONResponse:
        return JSONResponse({"processed": dict(ledger.counts)})

    routes = [
        Route("/processed", post_processed, methods=["POST"]),
        Route("/ledger", get_ledger),
        *common.basic_routes(),
    ]
    return Starlette(routes=routes)


def main() -> int:
    port = common.env_int("PORT")
    path = Path(common.env_str("LEDGER_FILE"))
    queue = common.env_str("QUEUE", "jobs")
    ledger = Ledger(path)
    log.info(
        "sink listening on http://127.0.0.1:%d, ledger %s (%d lines already there), queue=%s",
        port,
        path,
        sum(ledger.counts.values()),
        queue,
    )
    try:
        common.serve_asgi(build_app(ledger, queue), port)
    finally:
        ledger.file.close()
    log.info("sink stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
