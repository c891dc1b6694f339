"""Producer API on NATS JetStream: the job is published to the subject QUEUE and accepted once
the stream acknowledged it, with the job id as ``Nats-Msg-Id`` so that the stream drops a
repeat; with the outbox, its notification is published to NOTIFY_QUEUE at the same time (two
publishes, not one transaction: a failure between them leaves a notification too many, never
one too few). While the client is reconnecting the API answers 503 at once rather than
waiting. The backlog is the stream's message count (work-queue retention: those not yet
acknowledged). Everything else is ``producer.py``'s.
Env: NATS_ADDR, PUBLISH_TIMEOUT_MS (default 2000), and those of ``producer.py``.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from nats.aio.client import Client
from nats.errors import Error as NatsError
from nats.js import JetStreamContext

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "services"))
import common
import producer
import service


class NotConnected(Exception):
    """The client is between connections."""


class NatsBroker:
    errors = (NatsError, NotConnected, OSError, asyncio.TimeoutError)

    def __init__(self, cfg: producer.Config) -> None:
        self.cfg = cfg
        self.timeout_s = service.env_int("PUBLISH_TIMEOUT_MS", 2000) / 1000
        self.client: Client | None = None
        self.js: JetStreamContext | None = None
        self.lock = asyncio.Lock()

    async def _jetstream(self) -> JetStreamContext:
        async with self.lock:
            if self.client is None:
                self.client = await common.connect(producer.log)
                js = self.client.jetstream(timeout=self.timeout_s)
                for queue in (self.cfg.queue, self.cfg.notify_queue):
                    await common.declare(js, queue)
                self.js = js
        if self.js is None or not self.client.is_connected:
            raise NotConnected("not connected to nats (reconnecting)")
        return self.js

    async def enqueue(self, fields: dict[str, str], notify: bool) -> str:
        js = await self._jetstream()
        messages = [(self.cfg.queue, fields)]
        if notify:
            messages.append((self.cfg.notify_queue, {"id": fields["id"]}))
        acks = await asyncio.gather(
            *(
                js.publish(
                    subject,
                    service.encode(body),
                    timeout=self.timeout_s,
                    headers={"Nats-Msg-Id": f"{subject}:{body['id']}"},
                )
                for subject, body in messages
            )
        )
        return str(acks[0].seq)

    async def backlog(self) -> int:
        js = await self._jetstream()
        info = await js.stream_info(self.cfg.queue)
        return int(info.state.messages)

    async def close(self) -> None:
        if self.client is not None and not self.client.is_closed:
            await self.client.close()
        self.client = self.js = None


if __name__ == "__main__":
    host, port = common.nats_addr()
    sys.exit(producer.main(NatsBroker, f"nats {host}:{port}"))
