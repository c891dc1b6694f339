"""Producer API on Redis Streams: the job is an XADD to the stream QUEUE; with the outbox, its
notification is an XADD to NOTIFY_QUEUE in the same script (atomic, as a MULTI/EXEC is, in one
command instead of four), sent over ``resp.py``'s connection. The backlog is the group's
undelivered plus pending entries. Everything else is ``producer.py``'s.
Env: REDIS_ADDR, GROUP (default ``workers``), and those of ``producer.py``.
"""

from __future__ import annotations

import asyncio
import hashlib
import sys
from pathlib import Path

import redis.asyncio as aioredis
from redis.exceptions import RedisError, ResponseError

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "services"))
import common
import producer
import resp
import service

COMMAND_TIMEOUT_S = 5.0

# KEYS: the jobs stream, the notifications stream; ARGV: "1" to notify, the job id, then the
# job's fields and values. Returns the job's stream id.
ENQUEUE = """
local id = redis.call('XADD', KEYS[1], '*', unpack(ARGV, 3))
if ARGV[1] == '1' then
  redis.call('XADD', KEYS[2], '*', 'id', ARGV[2])
end
return id
"""
ENQUEUE_SHA = hashlib.sha1(ENQUEUE.encode()).hexdigest()


class RedisBroker:
    errors = (RedisError, OSError)

    def __init__(self, cfg: producer.Config) -> None:
        host, port = common.redis_addr()
        self.cfg = cfg
        self.group = service.env_str("GROUP", "workers")
        # The backlog, asked at most every 200 ms, through redis-py (which parses XINFO's
        # answer); the jobs, one command each, through a connection of their own.
        self.client = aioredis.Redis(
            host=host,
            port=port,
            socket_timeout=None,  # backlog() sets its own deadline
            socket_connect_timeout=2,
            decode_responses=True,
            protocol=2,
            retry=common.no_retry(asynchronous=True),
        )
        self.jobs = resp.RedisConnection(host, port, connect_timeout=2, timeout=COMMAND_TIMEOUT_S)

    async def enqueue(self, fields: dict[str, str], notify: bool) -> str:
        flat = [item for pair in fields.items() for item in pair]
        args = (2, self.cfg.queue, self.cfg.notify_queue, "1" if notify else "0", fields["id"])
        try:
            return str(await self.jobs.call("EVALSHA", ENQUEUE_SHA, *args, *flat))
        except ResponseError as exc:
            if not str(exc).startswith("NOSCRIPT"):
                raise
        # A Redis started afresh (or after a restart) has not seen the script yet.
        return str(await self.jobs.call("EVAL", ENQUEUE, *args, *flat))

    async def backlog(self) -> int:
        async with (
            asyncio.timeout(COMMAND_TIMEOUT_S),
            self.client.pipeline(transaction=False) as pipe,
        ):
            pipe.xlen(self.cfg.queue)
            pipe.xinfo_groups(self.cfg.queue)
            xlen, groups = await pipe.execute(raise_on_error=False)
        if isinstance(xlen, Exception):
            raise xlen
        if isinstance(groups, ResponseError):  # "no such key": the stream does not exist yet
            groups = []
        elif isinstance(groups, Exception):
            raise groups
        depth, pending = common.group_counts(common.find_group(groups, self.group), int(xlen))
        return depth + pending

    async def close(self) -> None:
        self.jobs.close()
        await self.client.aclose()


if __name__ == "__main__":
    host, port = common.redis_addr()
    sys.exit(producer.main(RedisBroker, f"redis {host}:{port}"))
