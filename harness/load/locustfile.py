"""The load generator's sends, run inside Locust: one POST per message, each one in the ledger.

Never import this module from the harness: Locust and gevent monkey-patch the interpreter.
Locust imports it as a top-level module named ``locustfile``, so it must not import harness.
Its whole configuration comes from the HARNESS_LOAD_* environment variables that
``harness.load.process`` sets.

Ledger lines (JSON, one per line): ``{"id", "type": "invoke", "t"}`` before a send, then
``{"id", "type": "ok"|"fail"|"info", "t", "status", "error"}`` once its outcome is known.
"""

from __future__ import annotations

import itertools
import json
import os
import time
from typing import Any

import gevent
from locust import FastHttpUser, constant_throughput, events, task
from locust.env import Environment
from locust.exception import StopUser
from prometheus_client import Counter, Gauge, Histogram, start_http_server

_FLUSH_EVERY_S = 0.2
_ERROR_CHARS = 200


def _env(name: str) -> str:
    try:
        return os.environ[name]
    except KeyError:
        raise SystemExit(f"{name} is not set: run this locustfile through harness.load") from None


PATH = _env("HARNESS_LOAD_PATH")
RATE = float(_env("HARNESS_LOAD_RATE"))
USERS = int(_env("HARNESS_LOAD_USERS"))
METRICS_PORT = int(_env("HARNESS_LOAD_METRICS_PORT"))
LEDGER = _env("HARNESS_LOAD_LEDGER")
SEED = int(_env("HARNESS_LOAD_SEED"))
TIMEOUT_S = float(_env("HARNESS_LOAD_TIMEOUT"))

REQUESTS = Counter("harness_load_requests", "Sends by what the producer answered.", ["outcome"])
DURATION = Histogram("harness_load_request_duration_seconds", "Time from send to outcome.")
RUNNING_USERS = Gauge("harness_load_users", "Locust users currently sending.")
TARGET_RATE = Gauge("harness_load_target_rate", "Sends per second the run aims for.")


class Ledger:
    """Ledger lines held in memory and appended in batches, so a send costs no disk write."""

    def __init__(self, path: str) -> None:
        self._file = open(path, "a", encoding="utf-8")  # noqa: SIM115 -- open for the run
        self._pending: list[str] = []

    def record(self, **fields: Any) -> None:
        self._pending.append(json.dumps(fields) + "\n")

    def flush(self) -> None:
        # Swapping the buffer before writing is safe: greenlets only switch on I/O.
        lines, self._pending = self._pending, []
        if lines:
            self._file.write("".join(lines))
            self._file.flush()

    def flush_forever(self) -> None:
        while True:
            gevent.sleep(_FLUSH_EVERY_S)
            self.flush()


ledger = Ledger(LEDGER)
# Locust stops a waiting user by killing it a moment later; a user that wakes in between would
# start a send and be killed mid-request, leaving an indeterminate send for no reason.
stopping = False


def _on_init(**_kwargs: Any) -> None:
    """Serve metrics before any user spawns: the harness waits for this port to call us ready."""
    try:
        start_http_server(METRICS_PORT, addr="127.0.0.1")
    except OSError as error:
        # An exception here would only be logged; the harness must see the load step fail.
        raise SystemExit(f"metrics port 127.0.0.1:{METRICS_PORT}: {error}") from None
    TARGET_RATE.set(RATE)
    for outcome in ("ok", "fail", "info"):
        REQUESTS.labels(outcome)  # zero series exist from the start, so rate() sees them
    gevent.spawn(ledger.flush_forever)


def _on_stopping(**_kwargs: Any) -> None:
    global stopping
    stopping = True


def _on_stop(**_kwargs: Any) -> None:
    ledger.flush()


def _on_quitting(environment: Environment, **_kwargs: Any) -> None:
    """Fail the run on a locustfile bug, which --exit-code-on-error 0 would otherwise hide."""
    ledger.flush()
    if environment.runner is not None and environment.runner.exceptions:
        environment.process_exit_code = 2


# Locust's EventHook.add_listener carries no annotations, hence the ignores.
events.init.add_listener(_on_init)  # type: ignore[no-untyped-call]
events.test_stopping.add_listener(_on_stopping)  # type: ignore[no-untyped-call]
# test_stop is the flush that matters: it fires once users finished their in-flight sends, also
# on SIGTERM, which fires quitting first, while users may still be waiting for answers.
events.test_stop.add_listener(_on_stop)  # type: ignore[no-untyped-call]
events.quitting.add_listener(_on_quitting)  # type: ignore[no-untyped-call]


class Producer(FastHttpUser):
    """A client of the producer, sending messages at an equal share of the target rate."""

    wait_time = constant_throughput(RATE / USERS)
    network_timeout = TIMEOUT_S
    connection_timeout = TIMEOUT_S
    # A retried POST would be a duplicate caused by the load generator itself.
    max_retries = 0

    _numbers = itertools.count()

    def on_start(self) -> None:
        self.number = next(self._numbers)
        self.seq = itertools.count()
        RUNNING_USERS.inc()
        # Users spawn together and constant_throughput paces each from its spawn, so every user
        # would send at once each period: stagger the first sends and restart the pacing clock
        # (Locust's private anchor; if it is ever renamed, arrivals only go back to bursts).
        gevent.sleep((self.number % USERS) / RATE)
        self._cp_last_run = time.perf_counter()

    def on_stop(self) -> None:
        RUNNING_USERS.dec()

    @task
    def send(self) -> None:
        if stopping:
            raise StopUser
        seq = next(self.seq)
        message_id = f"{SEED:08x}-{self.number}-{seq}"
        ledger.record(id=message_id, type="invoke", t=time.time())
        started = time.perf_counter()
        with self.client.post(
            PATH,
            json={"id": message_id, "payload": {"seq": seq}},
            catch_response=True,
            # A followed redirect would POST the message a second time.
            allow_redirects=False,
        ) as response:
            DURATION.observe(time.perf_counter() - started)
            status = response.status_code
            # Only a response standing in for a connection error carries .error.
            outcome, error = _outcome(status, getattr(response, "error", None))
            if outcome == "ok":
                response.success()
            else:
                response.failure(error)
        REQUESTS.labels(outcome).inc()
        ledger.record(
            id=message_id, type=outcome, t=time.time(), status=status or None, error=error
        )


def _outcome(status: int, error: BaseException | None) -> tuple[str, str | None]:
    """ok: acknowledged; fail: the producer said no; info: no answer, it may be enqueued."""
    if 200 <= status < 300:
        return "ok", None
    if 400 <= status < 600:
        return "fail", f"HTTP {status}"
    if status:
        return "info", f"HTTP {status}"
    # geventhttpclient wraps the socket error that says what happened in RetriesExceeded.
    cause = getattr(error, "original", None) or error
    return "info", f"{type(cause).__name__}: {cause}"[:_ERROR_CHARS]
