"""Notifier: a downstream dependency that receives one notification per accepted job.

``POST /notify`` ``{"id": str}`` -> 200 ``{"new": bool}``; each distinct id is counted once in
harness_notifications_received_total (a repeated id is answered 200 and not counted again).
``GET /notifications`` -> ``{"ids": [...]}`` (distinct, in arrival order); ``/healthz``,
``/metrics``. Env: PORT (required), QUEUE (metric label, default ``notifications``).
"""

from __future__ import annotations

import sys
from pathlib import Path

from prometheus_client import Counter
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common

log = common.setup_logging("notifier")

RECEIVED = Counter("harness_notifications_received_total", "Distinct job ids notified", ["queue"])


def build_app(queue: str) -> Starlette:
    received = RECEIVED.labels(queue=queue)
    seen: dict[str, None] = {}  # an ordered set

    async def post_notify(request: Request) -> JSONResponse:
        try:
            body = await request.json()
        except ValueError:
            return JSONResponse({"error": "body is not valid JSON"}, status_code=400)
        job_id = body.get("id") if isinstance(body, dict) else None
        if not isinstance(job_id, str | int) or isinstance(job_id, bool):
            return JSONResponse({"error": 'body must be {"id": str}'}, status_code=400)
        new = str(job_id) not in seen
        if new:
            seen[str(job_id)] = None
            received.inc()
        return JSONResponse({"new": new})

    async def get_notifications(request: Request) -> JSONResponse:
        return JSONResponse({"ids": list(seen)})

    routes = [
        Route("/notify", post_notify, methods=["POST"]),
        Route("/notifications", get_notifications),
        *common.basic_routes(),
    ]
    return Starlette(routes=routes)


def main() -> int:
    port = common.env_int("PORT")
    queue = common.env_str("QUEUE", "notifications")
    log.info("notifier listening on http://127.0.0.1:%d, queue=%s", port, queue)
    common.serve_asgi(build_app(queue), port)
    log.info("notifier stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
