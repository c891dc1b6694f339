"""One pipelined connection to Redis, for a command sent per request (the API's enqueue).

redis-py takes a connection from its pool, wraps the call in its retry and observability layers
and gives the connection back, for every command: a third of the API's CPU per job. Here every
request's command goes down one connection as it comes and the replies, which Redis sends in the
same order, settle the callers' futures in turn; hiredis (redis-py's own parser) packs and
parses. A timeout or a broken connection fails the command with an ``OSError`` and drops the
connection, as redis-py does, so that the next command connects afresh.
"""

from __future__ import annotations

import asyncio
import collections
from typing import Any

import hiredis
from redis.exceptions import ResponseError


class RespProtocol(asyncio.Protocol):
    """The connection: commands written, their futures waiting in order."""

    def __init__(self) -> None:
        self.reader = hiredis.Reader(encoding="utf-8")
        self.waiting: collections.deque[asyncio.Future[Any]] = collections.deque()
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's are not subclasses

    def data_received(self, data: bytes) -> None:
        self.reader.feed(data)
        try:
            while (reply := self.reader.gets()) is not False:
                future = self.waiting.popleft()
                if future.done():  # its caller timed out
                    continue
                if isinstance(reply, hiredis.ReplyError):
                    future.set_exception(ResponseError(str(reply)))
                else:
                    future.set_result(reply)
        except (hiredis.ProtocolError, IndexError) as exc:
            self.drop(ConnectionResetError(f"unreadable reply from Redis: {exc}"))

    def connection_lost(self, exc: Exception | None) -> None:
        self.drop(ConnectionResetError(f"connection to Redis lost: {exc or 'closed by Redis'}"))

    def send(self, args: tuple[Any, ...]) -> asyncio.Future[Any]:
        future = asyncio.get_running_loop().create_future()
        assert self.transport is not None
        self.transport.write(hiredis.pack_command(args))
        self.waiting.append(future)
        return future

    def drop(self, error: OSError) -> None:
        """Fail every command still waiting and close the connection."""
        while self.waiting:
            future = self.waiting.popleft()
            if not future.done():
                future.set_exception(error)
        if self.transport is not None:
            self.transport.close()
            self.transport = None

    @property
    def usable(self) -> bool:
        return self.transport is not None and not self.transport.is_closing()


class RedisConnection:
    """Send commands to ``host:port`` over one connection, made on first use and again after a
    failure."""

    def __init__(self, host: str, port: int, connect_timeout: float, timeout: float) -> None:
        self.host, self.port = host, port
        self.connect_timeout, self.timeout = connect_timeout, timeout
        self.protocol: RespProtocol | None = None
        self.connecting = asyncio.Lock()

    async def connection(self) -> RespProtocol:
        if self.protocol is not None and self.protocol.usable:
            return self.protocol
        async with self.connecting:
            if self.protocol is None or not self.protocol.usable:
                loop = asyncio.get_running_loop()
                async with asyncio.timeout(self.connect_timeout):
                    _, self.protocol = await loop.create_connection(
                        RespProtocol, self.host, self.port
                    )
            return self.protocol

    async def call(self, *args: Any) -> Any:
        protocol = await self.connection()
        try:
            async with asyncio.timeout(self.timeout):
                return await protocol.send(args)
        except TimeoutError:  # an OSError: the caller answers it as the broker's failure
            protocol.drop(ConnectionResetError("Redis did not answer in time"))
            raise

    def close(self) -> None:
        if self.protocol is not None:
            self.protocol.drop(ConnectionResetError("closed"))
