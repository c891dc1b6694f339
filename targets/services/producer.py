"""Producer API: owns the admission of jobs into the broker and back-pressure, for any broker.

``POST /jobs`` ``{"id": str?, "key": str?, "payload": any?}`` -> 202 ``{"id", "broker_id"}``
(a non-empty ``key`` is stored with the job; a broker that partitions, Kafka, partitions by it); 429
``{"error": "backpressure"}`` when the queue's backlog reaches MAX_BACKLOG (0 = accept
everything, the weakness); 503 when the broker fails; 400 on a bad body. POISON_PERCENT (float,
default 0) of the ids, chosen by a hash of the id, are stored with ``poison=1``: workers always
fail them. Each accepted job owes a notification, by NOTIFY_MODE: ``outbox`` (default) puts
``{id}`` on the broker's NOTIFY_QUEUE along with the job, for the relay to deliver; ``sync`` (the
weakness) POSTs it to NOTIFIER_URL/notify inside the request (2 s timeout) and answers 503 if that
fails, although the job is already enqueued; ``off`` sends none.
Also ``/healthz``, ``/metrics``. Env: PORT (required), QUEUE (default ``jobs``), MAX_BACKLOG,
POISON_PERCENT, NOTIFY_MODE, NOTIFY_QUEUE (default ``notifications``), NOTIFIER_URL (for sync),
and the broker's own settings, read by its ``Broker``.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

import httpx
import service
import web
from prometheus_client import Counter

log = service.setup_logging("api")
errors_log = service.Throttled(log)

PRODUCED = Counter("harness_messages_produced_total", "Jobs added to the queue", ["queue"])
REJECTED = Counter(
    "harness_backpressure_rejections_total", "Jobs refused because of MAX_BACKLOG", ["queue"]
)
API_ERRORS = Counter(
    "harness_api_errors_total", "Jobs refused because the broker failed or timed out", ["queue"]
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
    queue: str
    max_backlog: int
    poison_percent: float
    notify_mode: str
    notify_queue: str
    notifier_url: str

    @classmethod
    def from_env(cls) -> Config:
        mode = service.env_choice("NOTIFY_MODE", "outbox", ("outbox", "sync", "off"))
        return cls(
            port=service.env_int("PORT"),
            queue=service.env_str("QUEUE", "jobs"),
            max_backlog=service.env_int("MAX_BACKLOG", 0),
            poison_percent=service.env_float("POISON_PERCENT", 0.0),
            notify_mode=mode,
            notify_queue=service.env_str("NOTIFY_QUEUE", "notifications"),
            notifier_url=service.env_str("NOTIFIER_URL", None if mode == "sync" else "").rstrip(
                "/"
            ),
        )


class Broker(Protocol):
    """What the API needs of a broker; each target implements it with its own client."""

    # The exceptions that mean "the broker failed": answered 503, never a crash.
    errors: tuple[type[BaseException], ...]

    async def enqueue(self, fields: dict[str, str], notify: bool) -> str:
        """Add the job (and with ``notify`` its ``{id}`` notification) durably; its broker id."""
        ...

    async def backlog(self) -> int:
        """Jobs accepted and not yet processed, as far as the broker can tell."""
        ...

    async def close(self) -> None: ...


def is_poison(job_id: str, percent: float) -> bool:
    """Deterministic: the same id is poison in every run and every replica."""
    return int(hashlib.sha256(job_id.encode()).hexdigest()[:8], 16) % 10000 < percent * 100


class BacklogCache:
    """The broker's backlog, asked at most every 200 ms.

    A failed look-up is cached too, so that a slow broker costs one timeout per period rather
    than one per waiting request.
    """

    def __init__(
        self, query: Callable[[], Awaitable[int]], errors: tuple[type[BaseException], ...]
    ) -> None:
        self._query, self._errors = query, errors
        self._lock = asyncio.Lock()
        self._at = float("-inf")
        self._value = 0
        self._error: BaseException | None = None

    def _fresh(self) -> bool:
        return time.monotonic() - self._at < BACKLOG_CACHE_SECONDS

    async def get(self) -> int:
        if not self._fresh():
            async with self._lock:
                if not self._fresh():
                    try:
                        self._value, self._error = await self._query(), None
                    except self._errors as exc:
                        self._error = exc
                    self._at = time.monotonic()
        if self._error is not None:
            raise self._error
        return self._value


def error(status: int, message: str) -> web.Answer:
    return status, {"error": message}


def build_routes(cfg: Config, broker: Broker, notifier: httpx.AsyncClient) -> web.Routes:
    """``POST /jobs``; ``/healthz`` and ``/metrics`` come with every server."""
    backlog = BacklogCache(broker.backlog, broker.errors)
    produced = PRODUCED.labels(queue=cfg.queue)
    rejected = REJECTED.labels(queue=cfg.queue)
    api_errors = API_ERRORS.labels(queue=cfg.queue)
    poison = POISON.labels(queue=cfg.queue)
    notifications = NOTIFICATIONS.labels(queue=cfg.queue)
    notify_errors = NOTIFY_ERRORS.labels(queue=cfg.queue)

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

    async def post_job(raw: bytes) -> web.Answer:
        try:
            body = json.loads(raw)
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
        if isinstance(body.get("key"), str) and body["key"]:
            fields["key"] = body["key"]
        poisoned = cfg.poison_percent > 0 and is_poison(job_id, cfg.poison_percent)
        if poisoned:
            fields["poison"] = "1"
        outbox = cfg.notify_mode == "outbox"
        try:
            if cfg.max_backlog > 0 and await backlog.get() >= cfg.max_backlog:
                rejected.inc()
                return error(429, "backpressure")
            broker_id = await broker.enqueue(fields, notify=outbox)
        except broker.errors as exc:
            api_errors.inc()
            errors_log.warning(f"broker failed: {type(exc).__name__}: {exc}")
            return error(503, f"broker: {type(exc).__name__}: {exc}")
        except asyncio.CancelledError:  # the server's shutdown grace ran out on a hung broker
            return error(503, "shutting down")
        produced.inc()
        if outbox:
            notifications.inc()
        if poisoned:
            poison.inc()
        if cfg.notify_mode == "sync":
            try:
                failure = await notify(job_id)
            except asyncio.CancelledError:
                return error(503, "shutting down")
            if failure is not None:
                return error(503, failure)  # the job is enqueued all the same
        return 202, {"id": job_id, "broker_id": broker_id}

    return {("POST", "/jobs"): post_job}


def main(make_broker: Callable[[Config], Broker], where: str) -> int:
    """Serve the API with the broker ``make_broker`` builds; ``where`` names it in the log."""
    cfg = Config.from_env()
    log.info(
        "api listening on http://127.0.0.1:%d, producing to %s queue=%s max_backlog=%d "
        "poison_percent=%g notify=%s",
        cfg.port,
        where,
        cfg.queue,
        cfg.max_backlog,
        cfg.poison_percent,
        cfg.notify_mode,
    )
    broker = make_broker(cfg)
    notifier = httpx.AsyncClient(timeout=2.0)

    async def close() -> None:
        await notifier.aclose()
        await broker.close()

    service.serve(build_routes(cfg, broker, notifier), cfg.port, on_stop=close)
    log.info("api stopped")
    return 0
