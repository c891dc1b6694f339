"""Producer API on Redis Streams: the job is an XADD to the stream QUEUE; with the outbox, its
notification is an XADD to NOTIFY_QUEUE in the same script (atomic, as a MULTI/EXEC is, in one
command instead of four). The backlog is the group's
undelivered plus pending entries. Everything else is ``producer.py``'s.
Env: REDIS_ADDR, GROUP (default ``workers``), and those of ``producer.py``.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import redis.asyncio as aioredis
from redis.exceptions import RedisError, ResponseError

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "services"))
import common
import producer
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


class RedisBroker:
    errors = (RedisError, OSError)

    def __init__(self, cfg: producer.Config) -> None:
        host, port = common.redis_addr()
        self.cfg = cfg
        self.group = service.env_str("GROUP", "workers")
        self.pool = aioredis.ConnectionPool(
            host=host,
            port=port,
            # No socket timeout: redis-py would wrap every send in asyncio.wait_for, a task per
            # command. Each call has a deadline of its own instead (a timer, no task).
            socket_timeout=None,
            socket_connect_timeout=2,
            decode_responses=True,
            protocol=2,
            retry=common.no_retry(),
        )
        self.client = aioredis.Redis(connection_pool=self.pool)
        self.script = self.client.register_script(ENQUEUE)

    async def enqueue(self, fields: dict[str, str], notify: bool) -> str:
        flat = [item for pair in fields.items() for item in pair]
        keys = [self.cfg.queue, self.cfg.notify_queue]
        args = ["1" if notify else "0", fields["id"], *flat]
        # A TimeoutError is an OSError: answered 503, and redis-py drops the connection it
        # interrupted.
        async with asyncio.timeout(COMMAND_TIMEOUT_S):
            return str(await self.script(keys=keys, args=args))

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
        await self.client.aclose()
        await self.pool.aclose()


if __name__ == "__main__":
    host, port = common.redis_addr()
    sys.exit(producer.main(RedisBroker, f"redis {host}:{port}"))
