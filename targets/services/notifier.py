"""Notifier: a downstream dependency that receives one notification per accepted job.

``POST /notify`` ``{"id": str}`` -> 200 ``{"new": bool}``, or a batch ``{"ids": [str, ...]}`` (as
the relays send them) -> 200 ``{"new": int}``, how many were new; each distinct id is counted once
in harness_notifications_received_total (a repeated id is answered 200 and not counted again).
With STATE_FILE, the ids are appended to that file (one JSON string a line) and read back at
start, so that a restarted notifier still knows (and counts) what it received before.
``GET /notifications`` -> ``{"ids": [...]}`` (distinct, in arrival order); ``/healthz``,
``/metrics``. Env: PORT (required), QUEUE (metric label: the queue of the jobs notified, default
``jobs``), STATE_FILE (optional; default: in memory only).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TextIO

from prometheus_client import Counter

sys.path.insert(0, str(Path(__file__).resolve().parent))
import service
import web

log = service.setup_logging("notifier")

RECEIVED = Counter("harness_notifications_received_total", "Distinct job ids notified", ["queue"])


def load_state(path: Path | None) -> tuple[dict[str, None], TextIO | None]:
    """The ids a previous run of this notifier received (an ordered set), and the file to
    append new ones to."""
    seen: dict[str, None] = {}
    if path is None:
        return seen, None
    path.parent.mkdir(parents=True, exist_ok=True)
    text = path.read_text(encoding="utf-8") if path.exists() else ""
    for line in text.splitlines():
        try:
            seen[str(json.loads(line))] = None
        except ValueError:
            continue  # a line torn by a crash
    state = path.open("a", encoding="utf-8")
    if text and not text.endswith("\n"):
        state.write("\n")
    return seen, state


def build_routes(queue: str, seen: dict[str, None], state: TextIO | None) -> web.Routes:
    received = RECEIVED.labels(queue=queue)
    received.inc(len(seen))

    def note(job_ids: list[str]) -> int:
        """Remember the ids not seen before (written before they count); how many were new."""
        new = [i for i in dict.fromkeys(job_ids) if i not in seen]
        if new and state is not None:
            state.write("".join(json.dumps(i) + "\n" for i in new))
            state.flush()
        seen.update(dict.fromkeys(new))
        received.inc(len(new))
        return len(new)

    async def post_notify(raw: bytes) -> web.Answer:
        try:
            body = json.loads(raw)
        except ValueError:
            return 400, {"error": "body is not valid JSON"}
        if isinstance(body, dict) and isinstance(body.get("ids"), list):
            ids = body["ids"]
            if not all(_is_id(i) for i in ids):
                return 400, {"error": "every id must be a string"}
            return 200, {"new": note([str(i) for i in ids])}
        job_id = body.get("id") if isinstance(body, dict) else None
        if not _is_id(job_id):
            return 400, {"error": 'body must be {"id": str} or {"ids": [str, ...]}'}
        return 200, {"new": note([str(job_id)]) == 1}

    async def get_notifications(body: bytes) -> web.Answer:
        return 200, {"ids": list(seen)}

    return {("POST", "/notify"): post_notify, ("GET", "/notifications"): get_notifications}


def _is_id(value: object) -> bool:
    return isinstance(value, str | int) and not isinstance(value, bool)


def main() -> int:
    port = service.env_int("PORT")
    queue = service.env_str("QUEUE", "jobs")
    path = service.env_str("STATE_FILE", "")
    seen, state = load_state(Path(path) if path else None)
    log.info(
        "notifier listening on http://127.0.0.1:%d, queue=%s, state %s (%d ids already there)",
        port,
        queue,
        path or "in memory",
        len(seen),
    )
    try:
        service.serve(build_routes(queue, seen, state), port)
    finally:
        if state is not None:
            state.close()
    log.info("notifier stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
