"""NATS JetStream plumbing shared by the NATS reference services: the address, a client that
reconnects, the streams and how they are declared, the message format.

Each queue is a stream of the same name on the subject of the same name, with work-queue
retention (a message leaves the stream once acknowledged), stored in files. Its dead letters go
to the subject ``<queue>.dlq``, kept by the stream ``<queue>-dlq``. Every service declares what it
uses, with the same settings, so that none depends on another having started first.
Each script of this folder puts it on ``sys.path`` and imports this module as ``common``.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

import nats
import service
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.errors import Error as NatsError
from nats.errors import TimeoutError as NatsTimeout
from nats.js import JetStreamContext
from nats.js.api import ConsumerConfig, RetentionPolicy, StorageType

DEFAULT_NATS_ADDR = "127.0.0.1:4222"


def nats_addr() -> tuple[str, int]:
    """``NATS_ADDR`` (``host:port``) as ``(host, port)``."""
    raw = service.env_str("NATS_ADDR", DEFAULT_NATS_ADDR)
    host, sep, port = raw.rpartition(":")
    if not sep or not host or not port.isdigit():
        service.fail(f"NATS_ADDR={raw!r} is not host:port")
    return host.strip("[]"), int(port)


async def connect(log: logging.Logger) -> Client:
    """A client that reconnects every 250 ms for as long as it takes, logging (throttled) why it
    is disconnected rather than raising."""
    host, port = nats_addr()
    throttled = service.Throttled(log)

    async def error(exc: Exception) -> None:
        throttled.warning(f"nats: {type(exc).__name__}: {exc}")

    return await nats.connect(
        f"nats://{host}:{port}",
        connect_timeout=2,
        reconnect_time_wait=0.25,
        max_reconnect_attempts=-1,
        allow_reconnect=True,
        ping_interval=5,
        max_outstanding_pings=2,
        error_cb=error,
    )


async def declare(js: JetStreamContext, queue: str) -> None:
    """The stream of ``queue`` and of its dead letters (an identical declaration is a no-op)."""
    for name, subject in ((queue, queue), (f"{queue}-dlq", f"{queue}.dlq")):
        await js.add_stream(
            name=name,
            subjects=[subject],
            retention=RetentionPolicy.WORK_QUEUE if name == queue else RetentionPolicy.LIMITS,
            storage=StorageType.FILE,
        )


async def consume(
    log: logging.Logger,
    queue: str,
    consumer: ConsumerConfig,
    batch: int,
    batch_wait_ms: int,
    stop: threading.Event,
    handle: Callable[[list[Msg]], Awaitable[None]],
    setup: Callable[[Client, JetStreamContext], Awaitable[None]] | None = None,
    idle: Callable[[], Awaitable[None]] | None = None,
) -> None:
    """Fetch batches for the durable pull ``consumer`` of the stream ``queue`` and hand each to
    ``handle``, until ``stop``; ``setup`` runs once connected (to subscribe to more), ``idle``
    after a fetch that found nothing for 0.5 s. A fetch returns what the stream has, up to
    ``batch``, as soon as it has one; after a batch shorter than ``batch`` the next fetch waits
    ``batch_wait_ms``, so that it fills: a fetch and a post per batch, not per message."""
    client = await connect(log)
    throttled = service.Throttled(log)
    try:
        js = client.jetstream(timeout=5)
        await declare(js, queue)
        subscription = await js.pull_subscribe(
            queue, durable=consumer.durable_name, stream=queue, config=consumer
        )
        if setup is not None:
            await setup(client, js)
        while not stop.is_set():
            try:
                messages = await subscription.fetch(batch, timeout=0.5)
            except NatsTimeout:
                if idle is not None:
                    await idle()
                continue
            except NatsError as exc:
                throttled.warning(f"fetch failed: {type(exc).__name__}: {exc}")
                await asyncio.sleep(0.5)
                continue
            await handle(messages)
            if len(messages) < batch:
                await asyncio.sleep(batch_wait_ms / 1000)
    finally:
        await client.close()


def run_until_stopped(
    main: Callable[[], Coroutine[Any, Any, None]], stop: threading.Event, log: logging.Logger
) -> None:
    """Run ``main`` again whenever it fails (NATS down at start, say) until ``stop``."""
    throttled = service.Throttled(log)
    while not stop.is_set():
        try:
            asyncio.run(main())
        except (TimeoutError, NatsError, OSError) as exc:
            throttled.warning(f"nats failed: {type(exc).__name__}: {exc}")
            stop.wait(0.5)
