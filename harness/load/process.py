"""The load generator's process: Locust started, watched and stopped from the harness.

Locust monkey-patches the interpreter with gevent on import, so it never runs inside the
harness process: this module only spawns ``python -m locust`` on ``locustfile.py`` and talks
to it through its command line, its Prometheus port and the ledger file it writes.

With ``workers`` set, one Locust master and that many worker processes share the load: the
master forwards the run's options to the workers, collects their ledger lines and metrics,
and serves the one metrics endpoint; the workers send.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from harness.deploy.process import ManagedProcess, Readiness
from harness.errors import ComponentFailed
from harness.topology import DEFAULT_BODY, LoadTarget, PublishInto

LOCUSTFILE = Path(__file__).with_name("locustfile.py")

_LOCUST = [sys.executable, "-m", "locust", "-f", str(LOCUSTFILE)]
_READY_TIMEOUT_S = 10.0
_REMOTE_WAIT_S = 120.0  # someone starts the remote workers by hand, or a CI job does
_MSGS_PER_USER = 20.0
_MAX_USERS = 200


@dataclass(frozen=True)
class RemoteWorkers:
    """Load workers started elsewhere with ``harness load-worker --master HOST:PORT``, and the
    address the master listens on for them."""

    count: int
    host: str
    port: int

    @classmethod
    def parse(cls, count: int, master: str) -> RemoteWorkers:
        host, _, port = master.rpartition(":")
        if count < 1 or not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError(f"expected HOST:PORT and at least one worker, got {master!r}")
        return cls(count, host, int(port))


def worker_command(master_host: str, master_port: int) -> list[str]:
    """A worker needs only its master's address: the run's options come with the spawn."""
    return [*_LOCUST, "--worker", "--master-host", master_host, "--master-port", str(master_port)]


# The Locust user class for each way of sending (locustfile.py defines them).
USER_CLASSES: dict[PublishInto | None, str] = {
    None: "Producer",
    "redis-stream": "RedisStreamPublisher",
    "redis-list": "RedisListPublisher",
    "rabbitmq": "RabbitMQPublisher",
    "kafka": "KafkaPublisher",
    "nats": "NatsPublisher",
}
_SCHEMES: dict[PublishInto, str] = {
    "redis-stream": "redis",
    "redis-list": "redis",
    "rabbitmq": "amqp",
    "kafka": "kafka",
    "nats": "nats",
}


@dataclass(frozen=True)
class Publish:
    """A load that publishes straight into a broker, its defaults filled in: the stream key,
    list key, exchange, topic or subject, and RabbitMQ's routing key, or the stream's field."""

    into: PublishInto
    name: str
    routing_key: str = ""
    field: str = "body"

    @classmethod
    def of(cls, load: LoadTarget, queue: str) -> Publish | None:
        """What the topology's load says, the queue standing for an unnamed destination."""
        spec = load.publish
        if spec is None:
            return None
        name = queue if spec.name is None else spec.name
        routing_key = name if spec.routing_key is None else spec.routing_key
        return cls(spec.into, name, routing_key, spec.field or "body")

    def url(self, port: int, host: str = "127.0.0.1") -> str:
        """The broker's address as the load's ``--host``."""
        return f"{_SCHEMES[self.into]}://{host}:{port}"

    def describe(self, port: int, host: str = "127.0.0.1") -> str:
        """Where the messages go, for a person: ``redis://127.0.0.1:6379 (XADD jobs)``."""
        exchange = self.name or "'' (the default)"
        what = {
            "redis-stream": f"XADD {self.name}, body in field {self.field}",
            "redis-list": f"LPUSH {self.name}",
            "rabbitmq": f"exchange {exchange}, routing key {self.routing_key}",
            "kafka": f"topic {self.name}",
            "nats": f"JetStream subject {self.name}",
        }[self.into]
        return f"{self.url(port, host)} ({what})"

    def options(self) -> list[str]:
        return [
            "--harness-publish-name",
            self.name,
            "--harness-publish-routing-key",
            self.routing_key,
            "--harness-publish-field",
            self.field,
        ]


def load_address(
    load: LoadTarget, queue: str, port: int, host: str = "127.0.0.1"
) -> tuple[str, Publish | None]:
    """The load's ``host`` (the producer's base URL, or the broker's address) and how it
    publishes, if it does, for a load component listening on port."""
    publish = Publish.of(load, queue)
    return (publish.url(port, host) if publish else f"http://{host}:{port}"), publish


@dataclass(frozen=True)
class LoadPlan:
    """What to send, how fast and for how long, and where the evidence of sending goes."""

    host: str
    path: str
    rate: float
    duration_s: float
    metrics_port: int
    ledger_path: Path
    log_path: Path
    users: int | None = None
    seed: int = 0
    timeout_s: float = 5.0
    model: str = "closed"  # or "open": sends on schedule, at most max_in_flight at once
    max_in_flight: int = 1000
    # The open model's rate over time, as (start, end, rate at start, rate at end) from the
    # load's start; empty: ``rate`` throughout.
    shape: tuple[tuple[float, float, float, float], ...] = ()
    workers: int = 0  # 0: Locust alone in one process; N: a master and N workers
    master_port: int | None = None  # where the master listens for its workers
    remote: RemoteWorkers | None = None  # workers on other machines, and the master's address
    body: str = DEFAULT_BODY  # {id}: the message id, {seq}: the sender's sequence number
    key: str = ""  # each message's key template ({user}, {seq}); "": unkeyed
    content_type: str = "application/json"
    publish: Publish | None = None  # straight into the broker at host; None: POST to host+path
    # Where the metrics are served: loopback, or the host's address on a container network
    # whose Prometheus scrapes them.
    metrics_host: str = "127.0.0.1"

    def __post_init__(self) -> None:
        if self.rate <= 0 or self.duration_s <= 0 or self.timeout_s <= 0:
            raise ValueError("rate, duration_s and timeout_s must be positive")
        if self.users is not None and self.users < 1:
            raise ValueError("users must be at least 1")
        if self.workers and self.master_port is None and self.remote is None:
            raise ValueError("a distributed load needs a master_port")

    @property
    def expected_workers(self) -> int:
        return self.workers + (self.remote.count if self.remote else 0)

    @property
    def master_address(self) -> tuple[str, int]:
        """Where the master listens (the remote workers' address for it, when there are any)."""
        if self.remote is not None:
            return self.remote.host, self.remote.port
        assert self.master_port is not None
        return "127.0.0.1", self.master_port

    @property
    def user_count(self) -> int:
        """Closed: enough users that each paces about 20 msg/s (one user's sends are
        sequential). Open: one per process, which sends on schedule."""
        if self.model == "open":
            return max(1, self.expected_workers)
        wanted = self.users or min(_MAX_USERS, max(1, math.ceil(self.rate / _MSGS_PER_USER)))
        return max(wanted, self.expected_workers)  # every worker sends


class LoadProcess:
    """One Locust run of a plan, in its own process group so signals to the harness miss it."""

    def __init__(self, plan: LoadPlan) -> None:
        self.plan = plan
        # Users start once every worker is connected: remote ones may take a while.
        self.ready_timeout_s = _REMOTE_WAIT_S if plan.remote else _READY_TIMEOUT_S
        plan.ledger_path.parent.mkdir(parents=True, exist_ok=True)
        env = self.environment()
        # Locust reads locust.conf and pyproject.toml from its working directory.
        folder = plan.log_path.parent
        self.process = ManagedProcess("load", self.command(), plan.log_path, env, cwd=folder)
        self.workers = [
            ManagedProcess(
                f"load-worker-{n}",
                self.worker_command(),
                plan.log_path.with_name(f"{plan.log_path.stem}-worker-{n}.log"),
                env,
                cwd=folder,
            )
            for n in range(1, plan.workers + 1)
        ]

    @property
    def processes(self) -> list[ManagedProcess]:
        return [self.process, *self.workers]

    def start(self) -> None:
        """Spawn Locust and return once its users send: the run's clock starts with the load.

        A master starts its users only once its workers connected, a second or two later.
        """
        for process in self.processes:
            process.start()
        try:
            ready = Readiness(self.plan.metrics_port, "/metrics", host=self.plan.metrics_host)
            self.process.wait_ready(_READY_TIMEOUT_S, ready)
            self._wait_for_users()
        except ComponentFailed:
            self.stop()
            raise

    def _wait_for_users(self) -> None:
        deadline = time.monotonic() + self.ready_timeout_s
        url = f"http://{self.plan.metrics_host}:{self.plan.metrics_port}/metrics"
        while time.monotonic() < deadline:
            code = self.process.returncode()
            if code is not None:
                raise ComponentFailed("load", f"exited with code {code} at start", self.tail())
            with contextlib.suppress(httpx.HTTPError):
                text = httpx.get(url, timeout=1.0, trust_env=False).text
                if _users(text) > 0:
                    return
            time.sleep(0.05)
        raise ComponentFailed(
            "load", f"no user was sending after {self.ready_timeout_s:g} s", self.tail()
        )

    def tail(self) -> str:
        """The end of the master's log, and of each worker's."""
        return "\n".join(p.tail() for p in self.processes)

    def command(self) -> list[str]:
        """The Locust command line (alone, or the master); everything that shapes the run is on
        it, and a master forwards the ``--harness-*`` options to its workers."""
        plan = self.plan
        users = str(plan.user_count)
        if plan.expected_workers:
            host, port = plan.master_address
            mode = [
                "--master",
                "--master-bind-host",
                host,
                "--master-bind-port",
                str(port),
                "--expect-workers",
                str(plan.expected_workers),
                # A worker that never connects fails the load step instead of hanging it.
                "--expect-workers-max-wait",
                str(int(self.ready_timeout_s)),
                "--harness-distributed",
                # Not --run-time: at its end a headless master quits at once and drops the
                # workers' last batches. The locustfile stops the workers first, then quits.
                "--harness-duration",
                repr(float(math.ceil(plan.duration_s))),
            ]
        else:
            # Locust only accepts whole seconds; rounding up never cuts the run short.
            mode = ["--run-time", f"{math.ceil(plan.duration_s)}s"]
        return [
            *_LOCUST,
            *mode,
            "--harness-path",
            plan.path,
            "--harness-body",
            plan.body,
            "--harness-key",
            plan.key,
            "--harness-content-type",
            plan.content_type,
            "--harness-rate",
            repr(plan.rate),
            "--harness-users",
            users,
            "--harness-seed",
            str(plan.seed),
            "--harness-timeout",
            repr(plan.timeout_s),
            "--harness-model",
            plan.model,
            "--harness-max-in-flight",
            str(max(1, plan.max_in_flight // max(1, plan.expected_workers))),
            "--harness-shape",
            json.dumps([list(segment) for segment in plan.shape]),
            "--harness-ledger",
            str(plan.ledger_path.resolve()),
            "--harness-metrics-port",
            str(plan.metrics_port),
            "--harness-metrics-host",
            plan.metrics_host,
            "--headless",
            "--users",
            users,
            "--spawn-rate",
            users,
            "--host",
            plan.host,
            "--stop-timeout",
            "10",
            "--only-summary",
            "--loglevel",
            "WARNING",
            # Refused sends are the experiment's data, not a failure of the load step.
            "--exit-code-on-error",
            "0",
            *(plan.publish.options() if plan.publish else []),
            # The one user class that sends this way (a worker learns it from its master).
            USER_CLASSES[plan.publish.into if plan.publish else None],
        ]

    def worker_command(self) -> list[str]:
        host, port = self.plan.master_address
        return worker_command("127.0.0.1" if host in ("0.0.0.0", "::") else host, port)

    @staticmethod
    def environment() -> dict[str, str]:
        """The caller's environment without LOCUST_* overrides: the command line rules."""
        return {k: v for k, v in os.environ.items() if not k.startswith("LOCUST_")}

    @property
    def pid(self) -> int | None:
        return self.process.pid

    def running(self) -> bool:
        return self.process.running()

    def wait(self, timeout: float | None = None) -> int | None:
        """The exit code, or None if Locust is still running after timeout (or never started)."""
        return self.process.wait(timeout)

    def stop(self, grace_s: float = 5.0) -> None:
        """Ask Locust to finish in-flight sends and flush its ledger, then kill it if it lingers.

        The workers first: each flushes its last batch to the master as it quits, and the
        master stops by itself once the last worker is gone.
        """
        for process in [*self.workers, self.process]:
            process.stop(grace_s)


def _users(metrics: str) -> float:
    """The value of ``harness_load_users`` in Prometheus' text format, 0 if absent."""
    for line in metrics.splitlines():
        if line.startswith("harness_load_users "):
            return float(line.split()[1])
    return 0.0
