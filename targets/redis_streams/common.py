"""Shared plumbing for the Redis Streams reference target: env parsing, logging, signals, Redis.

The services in this folder are run as scripts (``python targets/redis_streams/api.py``); each one
puts this folder on ``sys.path`` and imports this module as ``common``.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Iterable, Mapping
from types import FrameType
from typing import Any, NoReturn

from redis.backoff import NoBackoff
from redis.retry import Retry

DEFAULT_REDIS_ADDR = "127.0.0.1:6379"


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
