"""Producer API: owns the admission of jobs into the Redis stream (XADD) and back-pressure.

``POST /jobs`` ``{"id": str?, "payload": any?}`` -> 202 ``{"id", "stream_id"}``; 429
``{"error": "backpressure"}`` when the group's backlog (undelivered + pending) reaches
MAX_BACKLOG (0 = accept everything, the weakness); 503 when Redis fails; 400 on a bad body.
POISON_PERCENT (float, default 0) of the ids, chosen by a hash of the id, are stored with
``poison=1``: workers always fail them. Each accepted job owes a notification, by NOTIFY_MODE:
``outbox`` (default) adds ``{id}`` to the NOTIFY_STREAM stream in the same MULTI/EXEC as the job;
``sync`` (the weakness) POSTs it to NOTIFIER_URL/notify inside the request (2 s timeout) and
answers 503 if that fails, although the job is already enqueued; ``off`` sends none.
Also ``/healthz``, ``/metrics``. Env: PORT (required), REDIS_ADDR, STREAM, GROUP, MAX_BACKLOG,
POISON_PERCENT, NOTIFY_MODE, NOTIFY_STREAM (default ``notifications``), NOTIFIER_URL (for sync).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import sys
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import redis.asyncio as aioredis
from prometheus_client import Counter
from redis.exceptions import RedisError, ResponseError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common

log = common.setup_logging("api")
errors_log = common.Throttled(log)

PRODUCED = Counter("harness_messages_produced_total", "Jobs added to the stream", ["queue"])
REJECTED = Counter(
    "harness_backpressure_rejections_total", "Jobs refused because of MAX_BACKLOG", ["queue"]
)
API_ERRORS = Counter(
    "harness_api_errors_total", "Jobs refused because Redis failed or timed out", ["queue"]
)
POISON = Counter("harness_poison_produced_total", "Accepted jobs marked poison=1", ["queue"])
NOTIFICATIONS = Counter(
    "harness_notifications_enqueued_total",
    "Notifications owed for accepted jobs (outbox entries, or sync posts attempted)",
    ["queue"],
)
NOTIFY_ERRORS = Counter(
    "harness_notify_errors_total", "Jobs answered 503 because the notifier failed (sync)", ["queue"]
)

BACKLOG_CACHE_SECONDS = 0.2


@dataclass(frozen=True)
class Config:
    port: int
    redis_host: str
    redis_port: int
    stream: str
    group: str
    max_backlog: int
    poison_percent: float
    notify_mode: str
    notify_stream: str
    notifier_url: str

    @classmethod
    def from_env(cls) -> Config:
        host, port = common.redis_addr()
        mode = common.env_choice("NOTIFY_MODE", "outbox", ("outbox", "sync", "off"))
        return cls(
            port=common.env_int("PORT"),
            redis_host=host,
            redis_port=port,
            stream=common.env_str("STREAM", "jobs"),
            group=common.env_str("GROUP", "workers"),
            max_backlog=common.env_int("MAX_BACKLOG", 0),
            poison_percent=common.env_float("POISON_PERCENT", 0.0),
            notify_mode=mode,
            notify_stream=common.env_str("NOTIFY_STREAM", "notifications"),
            notifier_url=common.env_str("NOTIFIER_URL", None if mode == "sync" else "").rstrip("/"),
        )


def is_poison(job_id: str, percent: float) -> bool:
    """Deterministic: the same id is poison in every run and every replica."""
    return int(hashlib.sha256(job_id.encode()).hexdigest()[:8], 16) % 10000 < percent * 100


class BacklogCache:
    """The group's undelivered + pending count, asked of Redis at most every 200 ms.

    A failed look-up is cached too, so that a slow Redis costs one timeout per period rather
    than one per waiting request.
    """

    def __init__(self, client: aioredis.Redis, stream: str, group: str) -> None:
        self._client, self._stream, self._group = client, stream, group
        self._lock = asyncio.Lock()
        self._at = float("-inf")
        self._value = 0
        self._error: Exception | None = None

    def _fresh(self) -> bool:
        return time.monotonic() - self._at < BACKLOG_CACHE_SECONDS

    async def get(self) -> int:
        if not self._fresh():
            async with self._lock:
                if not self._fresh():
                    try:
                        self._value, self._error = await self._query(), None
                    except (RedisError, OSError) as exc:
                        self._error = exc
                    self._at = time.monotonic()
        if self._error is not None:
            raise self._error
        return self._value

    async def _query(self) -> int:
        async with self._client.pipeline(transaction=False) as pipe:
            pipe.xlen(self._stream)
            pipe.xinfo_groups(self._stream)
            xlen, groups = await pipe.execute(raise_on_error=False)
        if isinstance(xlen, Exception):
            raise xlen
        if isinstance(groups, ResponseError):  # "no such key": the stream does not exist yet
            groups = []
        elif isinstance(groups, Exception):
            raise groups
        depth, pending = common.group_counts(common.find_group(groups, self._group), int(xlen))
        return depth + pending


def error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


def build_app(cfg: Config) -> Starlette:
    pool = aioredis.ConnectionPool(
        host=cfg.redis_host,
        port=cfg.redis_port,
        socket_timeout=5,
        socket_connect_timeout=2,
        decode_responses=True,
        protocol=2,
        retry=common.no_retry(),
    )
    client = aioredis.Redis(connection_pool=pool)
    notifier = httpx.AsyncClient(timeout=2.0)
    backlog = BacklogCache(client, cfg.stream, cfg.group)
    produced = PRODUCED.labels(queue=cfg.stream)
    rejected = REJECTED.labels(queue=cfg.stream)
    api_errors = API_ERRORS.labels(queue=cfg.stream)
    poison = POISON.labels(queue=cfg.stream)
    notifications = NOTIFICATIONS.labels(queue=cfg.stream)
    notify_errors = NOTIFY_ERRORS.labels(queue=cfg.stream)

    async def enqueue(fields: dict[str, str]) -> str:
        """XADD the job; with the outbox, its notification too, in one MULTI/EXEC."""
        if cfg.notify_mode != "outbox":
            return str(await client.xadd(cfg.stream, fields))  # type: ignore[arg-type]
        async with client.pipeline(transaction=True) as pipe:
            pipe.xadd(cfg.stream, fields)  # type: ignore[arg-type]
            pipe.xadd(cfg.notify_stream, {"id": fields["id"]})
            stream_id, _ = await pipe.execute()
        notifications.inc()
        return str(stream_id)

    async def notify(job_id: str) -> str | None:
        """Sync mode: the notifier's failure, if it failed."""
        notifications.inc()
        try:
            answer = await notifier.post(f"{cfg.notifier_url}/notify", json={"id": job_id})
            answer.raise_for_status()
        except httpx.HTTPError as exc:
            notify_errors.inc()
            errors_log.warning(f"notifier failed: {type(exc).__name__}: {exc}")
            return f"notifier: {type(exc).__name__}: {exc}"
        return None

    async def post_job(request: Request) -> JSONResponse:
        try:
            body = await request.json()
        except ValueError:
            return error(400, "body is not valid JSON")
        if not isinstance(body, dict):
            return error(400, "body must be a JSON object")
        job_id = body.get("id")
        if job_id is None:
            job_id = uuid.uuid4().hex
        elif isinstance(job_id, str | int) and not isinstance(job_id, bool):
            job_id = str(job_id)
        else:
            return error(400, "id must be a string")
        fields = {
            "id": job_id,
            "enqueued_at": repr(time.time()),
            "payload": json.dumps(body.get("payload")),
        }
        poisoned = cfg.poison_percent > 0 and is_poison(job_id, cfg.poison_percent)
        if poisoned:
            fields["poison"] = "1"
        try:
            if cfg.max_backlog > 0 and await backlog.get() >= cfg.max_backlog:
                rejected.inc()
                return error(429, "backpressure")
            stream_id = await enqueue(fields)
        except (RedisError, OSError) as exc:
            api_errors.inc()
            errors_log.warning(f"redis failed: {type(exc).__name__}: {exc}")
            return error(503, f"redis: {type(exc).__name__}: {exc}")
        except asyncio.CancelledError:  # uvicorn's graceful-shutdown timeout hit a hung Redis
            return error(503, "shutting down")
        produced.inc()
        if poisoned:
            poison.inc()
        if cfg.notify_mode == "sync":
            try:
                failure = await notify(job_id)
            except asyncio.CancelledError:
                return error(503, "shutting down")
            if failure is not None:
                return error(503, failure)  # the job is enqueued all the same
        return JSONResponse({"id": job_id, "stream_id": stream_id}, status_code=202)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        await notifier.aclose()
        await client.aclose()
        await pool.aclose()

    routes = [Route("/jobs", post_job, methods=["POST"]), *common.basic_routes()]
    return Starlette(routes=routes, lifespan=lifespan)


def main() -> int:
    cfg = Config.from_env()
    log.info(
        "api listening on http://127.0.0.1:%d, producing to redis %s:%d stream=%s group=%s "
        "max_backlog=%d poison_percent=%g notify=%s",
        cfg.port,
        cfg.redis_host,
        cfg.redis_port,
        cfg.stream,
        cfg.group,
        cfg.max_backlog,
        cfg.poison_percent,
        cfg.notify_mode,
    )
    common.serve_asgi(build_app(cfg), cfg.port)
    log.info("api stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
