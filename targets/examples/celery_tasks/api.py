"""The application's HTTP API: ``POST /jobs`` ``{"id": str}`` queues the task ``apply`` for that
id and answers 202; 503 when the broker refuses. ``GET /healthz``. Env: PORT, and app.py's.
"""

from __future__ import annotations

import os

import uvicorn
from app import apply
from kombu.exceptions import OperationalError
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse
from starlette.routing import Route


async def post_job(request: Request) -> JSONResponse:
    body = await request.json()
    job_id = body.get("id") if isinstance(body, dict) else None
    if not isinstance(job_id, str):
        return JSONResponse({"error": 'body must be {"id": str}'}, status_code=400)
    try:
        await run_in_threadpool(apply.apply_async, (job_id,), retry=False)
    except OperationalError as exc:
        return JSONResponse({"error": f"broker: {exc}"}, status_code=503)
    return JSONResponse({"id": job_id}, status_code=202)


async def healthz(request: Request) -> PlainTextResponse:
    return PlainTextResponse("ok")


api = Starlette(routes=[Route("/jobs", post_job, methods=["POST"]), Route("/healthz", healthz)])

if __name__ == "__main__":
    uvicorn.run(api, host="127.0.0.1", port=int(os.environ["PORT"]), log_level="warning")
