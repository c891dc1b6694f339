"""Plumbing every reference service shares, whatever its broker: env parsing, logging, signals,
serving HTTP.

The services are run as scripts (``python targets/rabbitmq/api.py``); each one puts this folder
(and its broker's own) on ``sys.path`` and imports this module as ``service``.
"""

from __future__ import annotations

import json
import logging
import os
import random
import signal
import sys
import threading
import time
from collections.abc import Awaitable, Callable
from types import FrameType
from typing import TYPE_CHECKING, Any, NoReturn

if TYPE_CHECKING:
    import web


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


def bind_addr() -> str:
    """Where to listen: BIND (the harness's {bind}: 0.0.0.0 in a container), else loopback."""
    return os.environ.get("BIND", "127.0.0.1")


def serve(
    routes: web.Routes, port: int, on_stop: Callable[[], Awaitable[None]] | None = None
) -> None:
    """Serve ``routes`` (see ``web.py``) on bind_addr() in this process until SIGTERM/SIGINT,
    then return (exit code 0), having awaited ``on_stop``."""
    import web  # here: the workers import this module too and serve no HTTP

    web.run(routes, bind_addr(), port, on_stop)


def queue_pairs(text: str, what: str) -> list[tuple[str, str]]:
    """QUEUES (``a:b,c:d``) as pairs, such as stream and group; ``a`` may itself hold ``:``."""
    pairs = []
    for item in filter(None, (part.strip() for part in text.split(","))):
        first, sep, second = item.rpartition(":")
        if not sep or not first or not second:
            fail(f"QUEUES item {item!r} is not {what}")
        pairs.append((first, second))
    if not pairs:
        fail(f"QUEUES names no {what}")
    return pairs


# The body of a message on a broker that carries bytes: its fields as one JSON object.


def encode(fields: dict[str, str]) -> bytes:
    return json.dumps(fields, separators=(",", ":")).encode()


def decode(body: bytes) -> dict[str, str]:
    """A message's fields; a body that is not a JSON object becomes its ``payload``."""
    try:
        fields: Any = json.loads(body)
    except ValueError:
        return {"payload": body.decode(errors="replace")}
    if not isinstance(fields, dict):
        return {"payload": json.dumps(fields)}
    return {str(k): str(v) for k, v in fields.items()}
