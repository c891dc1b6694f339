"""Shared plumbing for the Redis Streams reference target: env parsing, logging, signals, Redis.

The services in this folder are run as scripts (``python targets/redis_streams/api.py``); each one
puts this folder on ``sys.path`` and imports this module as ``common``.
"""

from __future__ import annotations

import logging
import os
import random
import signal
import sys
import threading
import time
from collections.abc import Iterable, Mapping
from types import FrameType
from typing import Any, NoReturn

import redis
from redis.backoff import NoBackoff
from redis.exceptions import ResponseError
from redis.retry import Retry

DEFAULT_REDIS_ADDR = "127.0.0.1:6379"
Entry = tuple[str, dict[str, str] | None]  # a stream entry as redis-py returns it; None if XDELed


def fail(message: str) -> NoReturn:
    """Abort start-up on a configuration error (exit code 2)."""
    print(f"configuration error: {message}", file=sys.stderr, flush=True)
    raise SystemExit(2)


def env_str(name: str, default: str | None = None) -> str:
    """Read a string variable; ``default=None`` makes it required."""
    value = os.environ.get(name, "").strip()
    if value:
        return value
    if default is None:
        fail(f"environment variable {name} is required")
    return str(default)


def env_int(name: str, default: int | None = None) -> int:
    """Read an integer variable; ``default=None`` makes it required."""
    raw = env_str(name, None if default is None else str(default))
    try:
        return int(raw)
    except ValueError:
        fail(f"{name}={raw!r} is not an integer")


def env_float(name: str, default: float) -> float:
    raw = env_str(name, str(default))
    try:
        return float(raw)
    except ValueError:
        fail(f"{name}={raw!r} is not a number")


def env_flag(name: str, default: bool) -> bool:
    """A switch: ``1``/``0`` (also true/false, yes/no, on/off)."""
    raw = env_str(name, "1" if default else "0").lower()
    if raw in ("1", "true", "yes", "on"):
        return True
    if raw in ("0", "false", "no", "off"):
        return False
    fail(f"{name}={raw!r} is not 1 or 0")


def env_choice(name: str, default: str, choices: tuple[str, ...]) -> str:
    raw = env_str(name, default).lower()
    if raw not in choices:
        fail(f"{name}={raw!r} is not one of {', '.join(choices)}")
    return raw


def backoff_seconds(attempt: int, base_ms: float, max_ms: float) -> float:
    """Exponential backoff with jitter: min(max, base * 2^(attempt-1)) * random(0.5..1.0)."""
    return min(max_ms, base_ms * 2 ** max(0, attempt - 1)) * random.uniform(0.5, 1.0) / 1000


def redis_addr() -> tuple[str, int]:
    """``REDIS_ADDR`` (``host:port``, IPv6 as ``[::1]:6379``) as ``(host, port)``."""
    raw = env_str("REDIS_ADDR", DEFAULT_REDIS_ADDR)
    host, sep, port = raw.rpartition(":")
    if not sep or not host or not port.isdigit():
        fail(f"REDIS_ADDR={raw!r} is not host:port")
    return host.strip("[]"), int(port)


def no_retry() -> Retry:
    """redis-py >= 6 retries 10 times with backoff by default: a 5 s timeout would then last a
    minute. The services retry on their own terms, so the client must fail fast."""
    return Retry(NoBackoff(), 0)


def connect(host: str, port: int, socket_timeout: float, connect_timeout: float = 2) -> redis.Redis:
    """A synchronous client speaking RESP2 that fails fast (reconnects on the next command)."""
    return redis.Redis(
        host=host,
        port=port,
        socket_timeout=socket_timeout,
        socket_connect_timeout=connect_timeout,
        decode_responses=True,
        protocol=2,
        retry=no_retry(),
    )


def setup_logging(name: str) -> logging.Logger:
    logging.basicConfig(
        stream=sys.stdout,
        level=logging.INFO,
        format="%(asctime)s %(name)s %(levelname)s %(message)s",
    )
    for chatty in ("httpx", "httpcore"):  # one INFO line per request otherwise
        logging.getLogger(chatty).setLevel(logging.WARNING)
    return logging.getLogger(name)


class Throttled:
    """Log a recurring failure at most once per ``interval`` seconds, with a suppressed count."""

    def __init__(self, log: logging.Logger, interval: float = 1.0) -> None:
        self._log = log
        self._interval = interval
        self._last = 0.0
        self._suppressed = 0
        self._lock = threading.Lock()

    def warning(self, message: str) -> None:
        with self._lock:
            now = time.monotonic()
            if now - self._last < self._interval:
                self._suppressed += 1
                return
            extra = f" (+{self._suppressed} similar)" if self._suppressed else ""
            self._last, self._suppressed = now, 0
        self._log.warning("%s%s", message, extra)


class Shutdown(BaseException):
    """Raised by the signal handler to abort a blocking call (like KeyboardInterrupt)."""


def install_stop_handler(interrupt: bool) -> threading.Event:
    """Turn SIGTERM/SIGINT into a stop event. With ``interrupt`` the first signal also raises
    :class:`Shutdown` in the main thread, so that a blocking socket read ends at once."""
    stop = threading.Event()

    def handler(signum: int, frame: FrameType | None) -> None:
        first = not stop.is_set()
        stop.set()
        if interrupt and first:
            raise Shutdown(signum)

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)
    return stop


def serve_asgi(app: Any, port: int) -> None:
    """Run an ASGI app on 127.0.0.1 in this process until SIGTERM/SIGINT, then return."""
    import uvicorn

    # uvicorn re-raises the caught signal once it has shut down, after restoring the handlers it
    # found: with Python's defaults that means death by SIGTERM, or a KeyboardInterrupt
    # traceback. Install no-op handlers first so that the process exits with code 0.
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda signum, frame: None)
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=port,
        access_log=False,
        log_level="warning",
        lifespan="on",
        workers=1,
        timeout_graceful_shutdown=1,
    )
    uvicorn.Server(config).run()


def basic_routes() -> list[Any]:
    """Starlette routes ``GET /healthz`` (200 ``ok``) and ``GET /metrics`` (default registry)."""
    from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
    from starlette.requests import Request
    from starlette.responses import PlainTextResponse, Response
    from starlette.routing import Route

    async def healthz(request: Request) -> Response:
        return PlainTextResponse("ok")

    async def metrics(request: Request) -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    return [Route("/healthz", healthz), Route("/metrics", metrics)]


def find_group(groups: Iterable[Mapping[str, Any]], name: str) -> Mapping[str, Any] | None:
    """The entry of ``XINFO GROUPS`` for group ``name``, if any."""
    return next((g for g in groups if g.get("name") == name), None)


def group_counts(group: Mapping[str, Any] | None, xlen: int) -> tuple[int, int]:
    """``(undelivered, pending)`` of a consumer group from its ``XINFO GROUPS`` entry.

    Redis 7 reports ``lag`` = entries not yet delivered to the group. It is nil when Redis
    cannot tell (e.g. after XDEL of an entry); then fall back on XLEN - entries-read, and on
    XLEN when ``entries-read`` is nil too (it is nil on a group created at ``0`` that has not
    read anything yet). A group that does not exist has everything undelivered.
    """
    if group is None:
        return xlen, 0
    pending = int(group.get("pending") or 0)
    lag = group.get("lag")
    if lag is None:
        read = group.get("entries-read")
        lag = xlen if read is None else max(0, xlen - int(read))
    return int(lag), pending


def stream_id_seconds(stream_id: str) -> float:
    """The unix time (seconds) encoded in an auto-generated stream id ``<ms>-<seq>``."""
    return int(stream_id.split("-", 1)[0]) / 1000.0


class GroupReader:
    """One consumer of a consumer group: entries another consumer left pending for longer than
    ``claim_idle_ms`` first (XAUTOCLAIM; ``0`` never claims), else new ones (XREADGROUP).
    ``cfg`` is any settings object with ``stream``, ``group``, ``consumer``, ``batch``,
    ``block_ms`` and ``claim_idle_ms``."""

    def __init__(self, client: redis.Redis, cfg: Any) -> None:
        self.client, self.cfg = client, cfg
        self.claim_cursor = "0-0"
        self.next_claim = 0.0

    def ensure_group(self) -> bool:
        """Create the group (and the stream) unless it exists; True if it was created."""
        try:
            self.client.xgroup_create(self.cfg.stream, self.cfg.group, id="0", mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise
            return False
        return True

    def next_batch(self) -> tuple[list[Entry], bool]:
        """Claimed entries (flag True), else new ones; an empty list after ``block_ms``."""
        cfg = self.cfg
        now = time.monotonic()
        if cfg.claim_idle_ms > 0 and now >= self.next_claim:
            reply: Any = self.client.xautoclaim(
                cfg.stream,
                cfg.group,
                cfg.consumer,
                min_idle_time=cfg.claim_idle_ms,
                start_id=self.claim_cursor,
                count=cfg.batch,
            )
            self.claim_cursor = str(reply[0])
            if self.claim_cursor == "0-0":  # scan of the pending list complete
                self.next_claim = now + cfg.claim_idle_ms / 2000
            if reply[1]:
                return list(reply[1]), True
        streams: Any = self.client.xreadgroup(
            cfg.group, cfg.consumer, {cfg.stream: ">"}, count=cfg.batch, block=cfg.block_ms
        )
        return [entry for _, entries in streams or [] for entry in entries], False
