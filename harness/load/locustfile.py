"""The load generator's sends, run inside Locust: one POST per message, or one publish straight
into the broker (``publishers.py``), each one in the ledger.

Never import this module from the harness: Locust and gevent monkey-patch the interpreter.
Locust imports it as a top-level module named ``locustfile``, so it must not import harness.
Its whole configuration comes from the ``--harness-*`` options ``harness.load.process`` puts on
Locust's command line; in a distributed run the master forwards them to its workers, so a
worker needs nothing but the master's address. One user class per way of sending; the harness
names the one a run uses on the command line (``Producer`` POSTs; the others publish).

Two models of arrival, named by ``--harness-model``. Closed: each user sends, waits for the
answer, and paces its next send at its share of the rate, so a slow answer delays the sends
after it. Open: one user per process sends at ``start + n / rate`` whatever the answers, each
send in its own greenlet, at most ``--harness-max-in-flight`` at once; a send due
while that many are in flight waits for one of them, and is counted as delayed.

Ledger lines (JSON, one per line): ``{"id", "type": "invoke", "t", "due"}`` before a send (``due``:
when it was meant to leave, by the user's pacing or the open schedule), then
``{"id", "type": "ok"|"fail"|"info", "t", "status", "error"}`` once its outcome is known.
``harness_load_request_service_seconds`` is measured from the moment a send left;
``harness_load_request_duration_seconds`` in the open model from when it was due (a send held
back for room in flight, or by a busy core, counts its wait: no coordinated omission), in the
closed model from when it left, as its users pace themselves by their answers (its ``due`` in
the ledger tells the wait of a send held back by the answer before it).
A process that sends (alone, or a worker) buffers its lines and observations; alone it writes
them itself, as a worker it sends them to the master in batches, and the master, which owns
the ledger file and the metrics endpoint, writes them. One ledger, one endpoint, however many
workers and wherever they run.
"""

from __future__ import annotations

import collections
import gc
import itertools
import json
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import gevent
import gevent.pool
from locust import FastHttpUser, User, constant_throughput, events, task
from locust.env import Environment
from locust.exception import StopUser
from locust.runners import MasterRunner, WorkerRunner
from prometheus_client import Counter, Gauge, Histogram, start_http_server

if TYPE_CHECKING:
    from harness.load import publishers
    from harness.load.keys import message_key
    from harness.load.pacing import due_times, rate_at
else:
    import publishers  # beside this file: Locust puts its folder on the path while importing it
    from keys import message_key
    from pacing import due_times, rate_at

_FLUSH_EVERY_S = 0.2
_ERROR_CHARS = 200
_GC_YOUNG = 20_000  # objects made between young collections (Python's default: 700)
_BATCH = "harness_batch"

REQUESTS = Counter("harness_load_requests", "Sends by what the producer answered.", ["outcome"])
DURATION = Histogram(
    "harness_load_request_duration_seconds",
    "Time to a send's outcome from when it was due (open model) or left (closed model).",
)
SERVICE = Histogram(
    "harness_load_request_service_seconds", "Time from when a send left to its outcome."
)
RUNNING_USERS = Gauge("harness_load_users", "Locust users currently sending.")
TARGET_RATE = Gauge("harness_load_target_rate", "Sends per second the run aims for.")
DELAYED = Counter(
    "harness_load_sends_delayed",
    "Sends of the open model that waited for one of the most sends allowed in flight.",
)
IN_FLIGHT = Gauge("harness_load_in_flight", "Sends waiting for their outcome.")


@dataclass(frozen=True)
class Config:
    path: str
    body: str
    key: str
    content_type: str
    rate: float
    users: int
    seed: int
    timeout_s: float
    workers: int
    publish_name: str
    publish_routing_key: str
    publish_field: str
    model: str
    max_in_flight: int
    shape: list[list[float]]  # the open model's segments: start, end, rate at each (empty: rate)

    @classmethod
    def of(cls, options: Any) -> Config:
        return cls(
            options.harness_path,
            options.harness_body,
            options.harness_key,
            options.harness_content_type,
            options.harness_rate,
            options.harness_users,
            options.harness_seed,
            options.harness_timeout,
            max(1, options.expect_workers or 1) if options.harness_distributed else 1,
            options.harness_publish_name,
            options.harness_publish_routing_key,
            options.harness_publish_field,
            options.harness_model,
            options.harness_max_in_flight,
            json.loads(options.harness_shape),
        )


@events.init_command_line_parser.add_listener  # type: ignore[untyped-decorator]
def _options(parser: Any) -> None:
    parser.add_argument("--harness-path", default="/jobs")
    parser.add_argument("--harness-body", default='{"id": "{id}", "payload": {"seq": {seq}}}')
    parser.add_argument("--harness-key", default="")
    parser.add_argument("--harness-content-type", default="application/json")
    parser.add_argument("--harness-rate", type=float, default=1.0)
    parser.add_argument("--harness-users", type=int, default=1)
    parser.add_argument("--harness-seed", type=int, default=0)
    parser.add_argument("--harness-timeout", type=float, default=5.0)
    parser.add_argument("--harness-distributed", action="store_true", default=False)
    parser.add_argument("--harness-duration", type=float, default=0.0)
    # A load that publishes into the broker at --host (its user class is named, too).
    parser.add_argument("--harness-publish-name", default="")
    parser.add_argument("--harness-publish-routing-key", default="")
    parser.add_argument("--harness-publish-field", default="body")
    parser.add_argument("--harness-model", choices=("closed", "open"), default="closed")
    parser.add_argument("--harness-max-in-flight", type=int, default=1000)
    parser.add_argument("--harness-shape", default="[]")
    # Only where the ledger is written (alone, or the master): not forwarded to workers.
    parser.add_argument("--harness-ledger", default="")
    parser.add_argument("--harness-metrics-port", type=int, default=0)
    parser.add_argument("--harness-metrics-host", default="127.0.0.1")


class Batch:
    """Ledger lines and metric observations, held in memory between flushes."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.outcomes: list[str] = []
        self.durations: list[float] = []  # from when each send was due
        self.services: list[float] = []  # from when each send left
        self.delayed: list[int] = []  # sends that waited for room in flight, in ones
        self.in_flight = 0  # not taken: this process's sends waiting for their outcome

    def take(self) -> dict[str, Any]:
        # Swapping the buffers is safe: greenlets only switch on I/O.
        taken: dict[str, Any] = {
            "lines": self.lines,
            "outcomes": self.outcomes,
            "durations": self.durations,
            "services": self.services,
            "delayed": self.delayed,
            "in_flight": self.in_flight,
        }
        self.lines, self.outcomes, self.durations, self.services, self.delayed = [], [], [], [], []
        return taken


class Ledger:
    """The ledger file and the metrics, written from batches: its own, or its workers'."""

    def __init__(self, path: str) -> None:
        self._file = open(path, "a", encoding="utf-8")  # noqa: SIM115 -- open for the run
        self._in_flight: dict[str, int] = {}  # by process: its own, or each worker's

    def write(self, batch: dict[str, Any], sender: str = "") -> None:
        for outcome, count in collections.Counter(batch["outcomes"]).items():
            REQUESTS.labels(outcome).inc(count)
        for seconds in batch["durations"]:
            DURATION.observe(seconds)
        for seconds in batch.get("services", ()):
            SERVICE.observe(seconds)
        if batch.get("delayed"):
            DELAYED.inc(len(batch["delayed"]))
        self._in_flight[sender] = int(batch.get("in_flight") or 0)
        IN_FLIGHT.set(sum(self._in_flight.values()))
        if batch["lines"]:
            self._file.write("".join(batch["lines"]))
            self._file.flush()


pending = Batch()
ledger: Ledger | None = None  # alone or master
config: Config | None = None
# Locust stops a waiting user by killing it a moment later; a user that wakes in between would
# start a send and be killed mid-request, leaving an indeterminate send for no reason.
stopping = False


def flush(environment: Environment) -> None:
    """A worker sends its batch to the master; alone or as the master, write it."""
    batch, runner = pending.take(), environment.runner
    if isinstance(runner, WorkerRunner):
        if batch["lines"] or batch["outcomes"] or batch["in_flight"]:
            runner.send_message(_BATCH, batch)
        return
    if ledger is not None:
        ledger.write(batch)
    if runner is not None:
        RUNNING_USERS.set(runner.user_count)


def _flush_forever(environment: Environment) -> None:
    while True:
        gevent.sleep(_FLUSH_EVERY_S)
        flush(environment)


def _on_init(environment: Environment, **_kwargs: Any) -> None:
    """Serve metrics before any user spawns: the harness waits for this port to call us ready."""
    global ledger
    if isinstance(environment.runner, WorkerRunner):
        return
    options: Any = environment.parsed_options
    port, host = options.harness_metrics_port, options.harness_metrics_host
    try:
        start_http_server(port, addr=host)
    except OSError as error:
        # An exception here would only be logged; the harness must see the load step fail.
        raise SystemExit(f"metrics port {host}:{port}: {error}") from None
    TARGET_RATE.set(options.harness_rate)
    for outcome in ("ok", "fail", "info"):
        REQUESTS.labels(outcome)  # zero series exist from the start, so rate() sees them
    ledger = Ledger(options.harness_ledger)
    if isinstance(environment.runner, MasterRunner):
        receiver = ledger  # the message handler outlives this function's narrowing of ledger
        environment.runner.register_message(
            _BATCH, lambda msg, **_: receiver.write(msg.data, str(msg.node_id))
        )
    gevent.spawn(_flush_forever, environment)


def _on_test_start(environment: Environment, **_kwargs: Any) -> None:
    """A worker learns the run from the options its master forwarded with the spawn."""
    global config
    config = Config.of(environment.parsed_options)
    Sender.wait_time = constant_throughput(config.rate / config.users)
    Producer.network_timeout = Producer.connection_timeout = config.timeout_s
    # The open model's one user per process shares its connection pool among its sends.
    Producer.concurrency = config.max_in_flight if config.model == "open" else 10
    # What Locust and the harness made at start lives for the run: out of the collector's
    # way, and its young generation collected less often (each send makes a greenlet).
    gc.freeze()
    gc.set_threshold(_GC_YOUNG, *gc.get_threshold()[1:])
    if isinstance(environment.runner, WorkerRunner):
        gevent.spawn(_flush_forever, environment)
        return
    if config.shape:
        gevent.spawn(_follow_shape, config)
    if isinstance(environment.runner, MasterRunner):
        options: Any = environment.parsed_options
        gevent.spawn_later(options.harness_duration, _end, environment)


def _follow_shape(config: Config) -> None:
    """Where the metrics are served, the rate the shape aims for, as the sends follow it."""
    start = time.time()
    while not stopping:
        TARGET_RATE.set(rate_at(config.rate, config.shape, time.time() - start))
        gevent.sleep(0.25)


def _end(environment: Environment) -> None:
    """A master's end of the run: stop the workers and wait until each has said it stopped,
    which it does after sending its last batch, then let them and itself quit."""
    runner = environment.runner
    assert isinstance(runner, MasterRunner)
    workers = [client.id for client in runner.clients.all]
    runner.stop()
    # A stopped worker is no longer the master's client, so quit() would not reach it.
    for worker in workers:
        runner.send_message("quit", client_id=worker)
    runner.quit()


def _on_stopping(**_kwargs: Any) -> None:
    global stopping
    stopping = True


def _on_stop(environment: Environment, **_kwargs: Any) -> None:
    flush(environment)


def _on_quitting(environment: Environment, **_kwargs: Any) -> None:
    """Fail the run on a locustfile bug, which --exit-code-on-error 0 would otherwise hide."""
    flush(environment)
    if environment.runner is not None and environment.runner.exceptions:
        environment.process_exit_code = 2


# Locust's EventHook.add_listener carries no annotations, hence the ignores.
events.init.add_listener(_on_init)  # type: ignore[no-untyped-call]
events.test_start.add_listener(_on_test_start)  # type: ignore[no-untyped-call]
events.test_stopping.add_listener(_on_stopping)  # type: ignore[no-untyped-call]
# test_stop is the flush that matters: it fires once users finished their in-flight sends, also
# on SIGTERM, which fires quitting first, while users may still be waiting for answers. On a
# worker it fires before the worker tells its master it stopped, so the master, which waits
# for that, has every batch before its own test_stop.
events.test_stop.add_listener(_on_stop)  # type: ignore[no-untyped-call]
events.quitting.add_listener(_on_quitting)  # type: ignore[no-untyped-call]


class Sender(User):
    """What every way of sending shares: message ids, pacing at an equal share of the target
    rate, and the ledger. A subclass sends one message in ``_send``."""

    abstract = True
    wait_time = constant_throughput(1.0)  # each run's own is set at test start

    _numbers = itertools.count()

    def on_start(self) -> None:
        assert config is not None, "test_start sets the config before any user starts"
        runner = self.environment.runner
        worker = runner.worker_index if isinstance(runner, WorkerRunner) else 0
        # Unique across the run: each worker's users interleave with the other workers'.
        self.number = next(self._numbers) * config.workers + worker
        self.seq = itertools.count()
        # Users spawn together and constant_throughput paces each from its spawn, so every user
        # would send at once each period: stagger the first sends and restart the pacing clock
        # (Locust's private anchor; if it is ever renamed, arrivals only go back to bursts).
        gevent.sleep((self.number % config.users) / config.rate)
        self._cp_last_run = time.perf_counter()
        self.period = config.users / config.rate
        self.last_sent: float | None = None

    @task
    def send(self) -> None:
        if stopping or config is None:
            raise StopUser
        if config.model == "open":
            self._arrivals(config)
            raise StopUser
        # The closed model's pacing meant each send to leave one period after the one before
        # left; after a slow answer it leaves late, and its latency counts the wait.
        now = time.time()
        due = now if self.last_sent is None else min(now, self.last_sent + self.period)
        self.last_sent = now
        self._send_one(config, next(self.seq), due)

    def _arrivals(self, config: Config) -> None:
        """The open model: each send due at ``start + n / rate`` (or where a shape's rate
        integrates to n; a process takes every Nth of N), whatever the answers, in a greenlet
        of its own; a send due while the most allowed are in flight waits for room, and is
        counted as delayed."""
        in_flight = gevent.pool.Pool(config.max_in_flight)
        runner = self.environment.runner
        worker = runner.worker_index if isinstance(runner, WorkerRunner) else 0
        start = time.time()
        for seq, offset in zip(
            self.seq, due_times(config.rate, config.shape, config.workers, worker), strict=False
        ):
            due = start + offset
            if (wait := due - time.time()) > 0:
                gevent.sleep(wait)
            if stopping:
                break
            if in_flight.full():
                pending.delayed.append(1)
                in_flight.wait_available()
            in_flight.spawn(self._send_one, config, seq, due)
        in_flight.join(timeout=config.timeout_s)

    def _send_one(self, config: Config, seq: int, due: float) -> None:
        """One message: its invoke line (with when it was due), the send, its outcome."""
        message_id = f"{config.seed:08x}-{self.number}-{seq}"
        body = config.body.replace("{id}", message_id).replace("{seq}", str(seq))
        now = time.time()
        key = None
        if config.key:
            key = message_key(config.key, self.number, seq)
            body = body.replace("{key}", key)
        _record_invoke(message_id, now, round(due, 6), key)
        started = time.perf_counter()
        pending.in_flight += 1
        try:
            outcome, status, error = self._send(message_id, body)
        finally:
            pending.in_flight -= 1
        done = time.perf_counter()
        pending.services.append(done - started)
        waited = now - due if config.model == "open" else 0.0
        pending.durations.append(done - started + waited)
        pending.outcomes.append(outcome)
        _record_outcome(message_id, outcome, time.time(), status, error)

    def _send(self, message_id: str, body: str) -> publishers.Outcome:
        """Send one message: ok, fail or info (see ``_outcome``), a status code, an error."""
        raise NotImplementedError


class Producer(Sender, FastHttpUser):
    """A client of the producer: one POST per message."""

    # A retried POST would be a duplicate caused by the load generator itself.
    max_retries = 0

    def _send(self, message_id: str, body: str) -> publishers.Outcome:
        assert config is not None
        with self.client.post(
            config.path,
            data=body,
            headers={"Content-Type": config.content_type},
            catch_response=True,
            # A followed redirect would POST the message a second time.
            allow_redirects=False,
        ) as response:
            status = response.status_code
            # Only a response standing in for a connection error carries .error.
            outcome, error = _outcome(status, getattr(response, "error", None))
            if outcome == "ok":
                response.success()
            else:
                response.failure(error)
        return outcome, status or None, error


class BrokerPublisher(Sender):
    """A client of the broker at --host: one publish per message, through a connection of its
    own; the open model's sends in flight at once each take one (made when none is idle)."""

    abstract = True
    publisher_class: ClassVar[type[publishers.Publisher]]

    def on_start(self) -> None:
        assert config is not None and self.host is not None
        self.destination = publishers.Destination.of(self.host, config)
        self.idle = [self.publisher_class(self.destination)]
        super().on_start()

    def _send(self, message_id: str, body: str) -> publishers.Outcome:
        try:
            publisher = self.idle.pop() if self.idle else self.publisher_class(self.destination)
        except Exception as exc:  # the broker is unreachable: this send's outcome is unknown
            return "info", None, f"{type(exc).__name__}: {exc}"[:_ERROR_CHARS]
        try:
            return self._publish(publisher, message_id, body)
        finally:
            self.idle.append(publisher)

    def _publish(
        self, publisher: publishers.Publisher, message_id: str, body: str
    ) -> publishers.Outcome:
        started = time.perf_counter()
        outcome, status, error = publisher.send(message_id, body)
        # Locust's own statistics (its summary in the load's log), as an HTTP client fills them.
        self.environment.events.request.fire(
            request_type=self.publisher_class.__name__.removesuffix("Publisher"),
            name=publisher.to.name,
            response_time=(time.perf_counter() - started) * 1000,
            response_length=0,
            exception=None if outcome == "ok" else RuntimeError(f"{outcome}: {error}"),
            context={},
        )
        return outcome, status, error

    def on_stop(self) -> None:
        for publisher in self.idle:
            publisher.close()


class RedisStreamPublisher(BrokerPublisher):
    publisher_class = publishers.RedisStreamPublisher


class RedisListPublisher(BrokerPublisher):
    publisher_class = publishers.RedisListPublisher


class RabbitMQPublisher(BrokerPublisher):
    publisher_class = publishers.RabbitMQPublisher


class KafkaPublisher(BrokerPublisher):
    publisher_class = publishers.KafkaPublisher


class NatsPublisher(BrokerPublisher):
    publisher_class = publishers.NatsPublisher


# The ledger's two lines per send, formatted by hand: json.dumps of a dict was a tenth of the
# sender's time at its ceiling. Each line is what json.dumps would write (floats as repr); a
# message id is hex and digits, and only a key and an error need escaping.
def _record_invoke(message_id: str, t: float, due: float, key: str | None) -> None:
    keyed = "" if key is None else f', "key": {json.dumps(key)}'
    pending.lines.append(
        f'{{"id": "{message_id}", "type": "invoke", "t": {t!r}, "due": {due!r}{keyed}}}\n'
    )


def _record_outcome(
    message_id: str, outcome: str, t: float, status: int | None, error: str | None
) -> None:
    code = "null" if status is None else status
    said = "null" if error is None else json.dumps(error)
    pending.lines.append(
        f'{{"id": "{message_id}", "type": "{outcome}", "t": {t!r}, "status": {code}, '
        f'"error": {said}}}\n'
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
