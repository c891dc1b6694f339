"""The reference services' HTTP server: JSON routes over HTTP/1.1 keep-alive, on asyncio.

Every message the load sends is one ``POST /jobs``, so the API's cost per request is most of
the target's cost per message. An ASGI server (uvicorn) builds a scope, a task, receive and send
callables and their event dicts for each request, about a third of the API's CPU; these services
answer a handful of JSON routes and need none of it. httptools (the parser uvicorn itself uses)
does the parsing; this module turns a parsed request into a call of its route's handler and the
handler's answer into bytes.

A handler takes the request body and returns ``(status, document)``; the document is sent as
JSON. ``GET /healthz`` (``ok``) and ``GET /metrics`` (the default Prometheus registry) come with
every server. On SIGTERM or SIGINT the server stops listening, gives requests in progress up to
``GRACE_SECONDS`` (then cancels them: a handler may answer its cancellation, as the API does with
503), closes its connections, awaits ``on_stop`` and returns.
"""

from __future__ import annotations

import asyncio
import collections
import json
import signal
from collections.abc import Awaitable, Callable
from http import HTTPStatus
from typing import Any, cast

import httptools
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

Answer = tuple[int, Any]  # an HTTP status and the JSON document of its body
Handler = Callable[[bytes], Awaitable[Answer]]
Routes = dict[tuple[str, str], Handler]  # (method, path) -> handler

GRACE_SECONDS = 1.0
MAX_BODY_BYTES = 1 << 20
MAX_PIPELINED = 32  # requests read ahead of their answers before reading pauses


def reply(status: int, body: bytes, content_type: bytes, close: bool) -> bytes:
    """One HTTP/1.1 response, head and body."""
    head = b"HTTP/1.1 %d %s\r\ncontent-type: %s\r\ncontent-length: %d\r\n%s\r\n" % (
        status,
        HTTPStatus(status).phrase.encode(),
        content_type,
        len(body),
        b"connection: close\r\n" if close else b"",
    )
    return head + body


def json_reply(answer: Answer, close: bool) -> bytes:
    status, document = answer
    return reply(status, json.dumps(document).encode(), b"application/json", close)


class Request:
    """What a handler's call needs of one parsed request."""

    __slots__ = ("body", "keep_alive", "method", "path", "size")

    def __init__(self) -> None:
        self.method = ""
        self.path = b""
        self.body: list[bytes] = []  # kept while size is within MAX_BODY_BYTES
        self.size = 0
        self.keep_alive = True


class Connection(asyncio.Protocol):
    """One client connection: its requests are answered in the order they came."""

    def __init__(self, server: Server) -> None:
        self.server = server
        self.parser = httptools.HttpRequestParser(self)
        self.transport: asyncio.Transport | None = None
        self.request = Request()
        self.waiting: collections.deque[Request] = collections.deque()
        self.task: asyncio.Task[None] | None = None
        self.closing = False

    # asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's are not subclasses
        self.server.connections.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self.server.connections.discard(self)
        self.closing = True
        self.waiting.clear()

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self.fail(400, "protocol upgrades are not served")
        except httptools.HttpParserError as exc:
            self.fail(400, f"malformed HTTP request: {exc}")

    # httptools callbacks

    def on_message_begin(self) -> None:
        self.request = Request()

    def on_url(self, url: bytes) -> None:
        self.request.path += url

    def on_body(self, body: bytes) -> None:
        request = self.request
        request.size += len(body)
        if request.size <= MAX_BODY_BYTES:
            request.body.append(body)
        else:
            request.body = []

    def on_message_complete(self) -> None:
        request = self.request
        request.method = self.parser.get_method().decode("ascii", "replace")
        request.keep_alive = self.parser.should_keep_alive()
        self.waiting.append(request)
        if len(self.waiting) >= MAX_PIPELINED and self.transport is not None:
            self.transport.pause_reading()
        if self.task is None:
            self.task = asyncio.get_running_loop().create_task(self.answer_all())
            self.server.tasks.add(self.task)

    # answering

    async def answer_all(self) -> None:
        try:
            while self.waiting and not self.closing:
                request = self.waiting.popleft()
                close = not request.keep_alive or self.server.stopping
                self.write(await self.server.answer(request, close))
                if close:
                    self.close()
                elif len(self.waiting) < MAX_PIPELINED and self.transport is not None:
                    self.transport.resume_reading()
        finally:
            if self.task is not None:
                self.server.tasks.discard(self.task)
            self.task = None

    def write(self, data: bytes) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(data)

    def fail(self, status: int, message: str) -> None:
        self.write(json_reply((status, {"error": message}), close=True))
        self.close()

    def close(self) -> None:
        self.closing = True
        if self.transport is not None:
            self.transport.close()


class Server:
    """The routes, the connections and their requests in progress."""

    def __init__(self, routes: Routes) -> None:
        self.routes = routes
        self.connections: set[Connection] = set()
        self.tasks: set[asyncio.Task[None]] = set()
        self.stopping = False

    async def answer(self, request: Request, close: bool) -> bytes:
        """The response to ``request``, saying ``connection: close`` with ``close``."""
        path = request.path.split(b"?", 1)[0].decode("utf-8", "replace")
        if request.method == "GET" and path == "/healthz":
            return reply(200, b"ok", b"text/plain; charset=utf-8", close)
        if request.method == "GET" and path == "/metrics":
            return reply(200, generate_latest(), CONTENT_TYPE_LATEST.encode(), close)
        handler = self.routes.get((request.method, path))
        if handler is None:
            known = any(route_path == path for _, route_path in self.routes)
            status = 405 if known else 404
            return json_reply((status, {"error": HTTPStatus(status).phrase.lower()}), close)
        if request.size > MAX_BODY_BYTES:
            return json_reply((413, {"error": f"body over {MAX_BODY_BYTES} bytes"}), close)
        return json_reply(await handler(b"".join(request.body)), close)

    async def stop(self) -> None:
        """Finish (or after the grace, cancel) the requests in progress; close every
        connection."""
        self.stopping = True
        for connection in list(self.connections):
            if connection.task is None:
                connection.close()
        if self.tasks:
            _, late = await asyncio.wait(set(self.tasks), timeout=GRACE_SECONDS)
            for task in late:
                task.cancel()
            if late:
                await asyncio.wait(late, timeout=GRACE_SECONDS)
        for connection in list(self.connections):
            connection.close()


async def serve_routes(
    routes: Routes, host: str, port: int, on_stop: Callable[[], Awaitable[None]] | None = None
) -> None:
    """Serve until SIGTERM or SIGINT, then stop as the module's docstring says."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    server = Server(routes)
    listener = await loop.create_server(lambda: Connection(server), host, port, backlog=1024)
    try:
        await stop.wait()
    finally:
        listener.close()
        await server.stop()
        await listener.wait_closed()
        if on_stop is not None:
            await on_stop()


def run(
    routes: Routes, host: str, port: int, on_stop: Callable[[], Awaitable[None]] | None = None
) -> None:
    """Serve ``routes`` in this process until SIGTERM/SIGINT, on uvloop where installed."""
    try:
        import uvloop
    except ImportError:
        asyncio.run(serve_routes(routes, host, port, on_stop))
    else:
        uvloop.run(serve_routes(routes, host, port, on_stop))
