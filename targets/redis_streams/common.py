"""Redis plumbing shared by the Redis Streams reference services: the address, a fail-fast
client, consumer groups.

Each script of this folder puts it on ``sys.path`` and imports this module as ``common``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import redis
import service
from redis.asyncio.retry import Retry as AsyncRetry
from redis.backoff import NoBackoff
from redis.exceptions import ResponseError
from redis.retry import Retry

DEFAULT_REDIS_ADDR = "127.0.0.1:6379"
Entry = tuple[str, dict[str, str] | None]  # a stream entry as redis-py returns it; None if XDELed


def redis_addr() -> tuple[str, int]:
    """``REDIS_ADDR`` (``host:port``, IPv6 as ``[::1]:6379``) as ``(host, port)``."""
    raw = service.env_str("REDIS_ADDR", DEFAULT_REDIS_ADDR)
    host, sep, port = raw.rpartition(":")
    if not sep or not host or not port.isdigit():
        service.fail(f"REDIS_ADDR={raw!r} is not host:port")
    return host.strip("[]"), int(port)


def no_retry(asynchronous: bool = False) -> Retry | AsyncRetry:
    """redis-py >= 6 retries 10 times with backoff by default: a 5 s timeout would then last a
    minute. The services retry on their own terms, so the client must fail fast. An asyncio
    client takes its own kind of Retry (it converts the other with a warning)."""
    return AsyncRetry(NoBackoff(), 0) if asynchronous else Retry(NoBackoff(), 0)


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
    ``batch_wait_ms``, ``block_ms`` and ``claim_idle_ms``.

    The acknowledgements of what the consumer finished ride on its next read, in the same round
    trip: a batch costs one round trip to the broker, not two. After a read that found fewer
    than ``batch`` entries, the next one waits ``batch_wait_ms`` first (until ``stop``), so
    that batches fill at a light load."""

    def __init__(self, client: redis.Redis, cfg: Any, stop: threading.Event) -> None:
        self.client, self.cfg, self.stop = client, cfg, stop
        self.claim_cursor = "0-0"
        self.next_claim = 0.0
        self.short = False  # the last read found some entries, fewer than a batch

    def ensure_group(self) -> bool:
        """Create the group (and the stream) unless it exists; True if it was created."""
        try:
            self.client.xgroup_create(self.cfg.stream, self.cfg.group, id="0", mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise
            return False
        return True

    def next_batch(self, ack: Sequence[str] = ()) -> tuple[list[Entry], bool]:
        """Acknowledge ``ack``, then claimed entries (flag True), else new ones; an empty list
        after ``block_ms``. When it returns, ``ack`` has been acknowledged."""
        cfg = self.cfg
        if self.short:
            self.stop.wait(cfg.batch_wait_ms / 1000)
        entries, claimed = self._read(ack)
        self.short = 0 < len(entries) < cfg.batch
        return entries, claimed

    def _read(self, ack: Sequence[str]) -> tuple[list[Entry], bool]:
        cfg = self.cfg
        now = time.monotonic()
        if cfg.claim_idle_ms > 0 and now >= self.next_claim:
            reply: Any = self._with_ack(
                ack,
                "xautoclaim",
                cfg.stream,
                cfg.group,
                cfg.consumer,
                min_idle_time=cfg.claim_idle_ms,
                start_id=self.claim_cursor,
                count=cfg.batch,
            )
            ack = ()
            self.claim_cursor = str(reply[0])
            if self.claim_cursor == "0-0":  # scan of the pending list complete
                self.next_claim = now + cfg.claim_idle_ms / 2000
            if reply[1]:
                return list(reply[1]), True
        streams: Any = self._with_ack(
            ack, "xreadgroup", cfg.group, cfg.consumer, {cfg.stream: ">"}, count=cfg.batch,
            block=cfg.block_ms,
        )  # fmt: skip
        return [entry for _, entries in streams or [] for entry in entries], False

    def _with_ack(self, ack: Sequence[str], command: str, *args: Any, **kwargs: Any) -> Any:
        """``command``'s reply, sent after an XACK of ``ack`` in one round trip if any."""
        if not ack:
            return getattr(self.client, command)(*args, **kwargs)
        pipe = self.client.pipeline(transaction=False)
        pipe.xack(self.cfg.stream, self.cfg.group, *ack)
        getattr(pipe, command)(*args, **kwargs)
        _, reply = pipe.execute()
        return reply
