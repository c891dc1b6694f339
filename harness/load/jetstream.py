"""A JetStream publisher for the load: NATS' text protocol on a plain (gevent) socket. Its
answers mean what ``publishing`` says every publisher's mean."""

from __future__ import annotations

import contextlib
import itertools
import json
import secrets
import socket
import time
from typing import TYPE_CHECKING

# Imported as ``harness.load.jetstream`` by the harness and its tests, and as a top-level
# module beside the locustfile by Locust, where it must not import the harness.
if TYPE_CHECKING or __package__:
    from harness.load import publishing
else:
    import publishing


# ------------------------------------------------------------------- NATS


class NatsProtocolError(Exception):
    """The server answered something this client does not understand, or -ERR."""


class NatsPublisher(publishing.Publisher):
    """A JetStream publish over NATS' text protocol, on a plain (gevent) socket: nats-py needs
    asyncio, which does not mix with gevent. HPUB with a reply inbox and the headers Nats-Msg-Id
    (so JetStream drops a second message with the same id within its duplicate window) and
    Content-Type; the answer is the stream's ack, a JetStream error, or a 503 status: no
    responders, no stream listens on the subject."""

    def __init__(self, to: publishing.Destination) -> None:
        super().__init__(to)
        self.sock: socket.socket | None = None
        self.buffer = b""
        self.inbox = ""
        self.replies = itertools.count()

    def send(self, message_id: str, body: str) -> publishing.Outcome:
        deadline = time.monotonic() + self.to.timeout_s
        try:
            sock = self.sock or self._connect(deadline)
            reply = f"{self.inbox}.{next(self.replies)}"
            headers = (
                f"NATS/1.0\r\nNats-Msg-Id: {message_id}\r\n"
                f"Content-Type: {self.to.content_type}\r\n\r\n"
            ).encode()
            payload = body.encode()
            size = len(headers) + len(payload)
            command = f"HPUB {self.to.name} {reply} {len(headers)} {size}\r\n".encode()
            sock.sendall(command + headers + payload + b"\r\n")
            return self._answer(reply, deadline)
        except (OSError, NatsProtocolError) as exc:
            self.close()
            timed_out = isinstance(exc, TimeoutError | socket.timeout)
            what = (
                f"no answer within {self.to.timeout_s:g} s" if timed_out else publishing.cause(exc)
            )
            return "info", None, what

    def _connect(self, deadline: float) -> socket.socket:
        sock = socket.create_connection((self.to.host, self.to.port), timeout=self.to.timeout_s)
        self.sock, self.buffer = sock, b""
        info = self._line(deadline)
        if not info.startswith(b"INFO "):
            raise NatsProtocolError(f"expected INFO, got {info[:80]!r}")
        if not json.loads(info[5:]).get("headers"):
            raise NatsProtocolError("the server does not support headers (NATS 2.2 or later)")
        connect = {
            "verbose": False,
            "pedantic": False,
            "name": "harness-load",
            "lang": "python-gevent",
            "version": "1",
            "protocol": 1,
            "headers": True,
            "no_responders": True,
        }
        self.inbox = f"_INBOX.{secrets.token_hex(8)}"
        sock.sendall(f"CONNECT {json.dumps(connect)}\r\nPING\r\n".encode())
        while (line := self._line(deadline)) != b"PONG":
            if line.startswith(b"-ERR"):
                raise NatsProtocolError(line.decode(errors="replace"))
        sock.sendall(f"SUB {self.inbox}.* 1\r\n".encode())
        return sock

    def _answer(self, reply: str, deadline: float) -> publishing.Outcome:
        """Read until the answer to reply comes; late answers to earlier sends are skipped."""
        assert self.sock is not None
        while True:
            line = self._line(deadline)
            if line == b"PING":
                self.sock.sendall(b"PONG\r\n")
                continue
            if line.startswith(b"-ERR"):
                text = line.decode(errors="replace")
                if "permissions violation" in text.lower():  # the publish itself was refused
                    return "fail", None, publishing.error_text(text)
                raise NatsProtocolError(text)
            if not line.startswith((b"MSG ", b"HMSG ")):
                continue  # PONG, +OK, INFO updates
            parts = line.decode().split()
            with_headers = parts[0] == "HMSG"
            total = int(parts[-1])
            header_size = int(parts[-2]) if with_headers else 0
            data = self._bytes(total + 2, deadline)[:total]
            if parts[1] != reply:
                continue
            return _jetstream_answer(data[:header_size], data[header_size:])

    def _line(self, deadline: float) -> bytes:
        while b"\r\n" not in self.buffer:
            self._read(deadline)
        line, self.buffer = self.buffer.split(b"\r\n", 1)
        return line

    def _bytes(self, size: int, deadline: float) -> bytes:
        while len(self.buffer) < size:
            self._read(deadline)
        data, self.buffer = self.buffer[:size], self.buffer[size:]
        return data

    def _read(self, deadline: float) -> None:
        assert self.sock is not None
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("timed out")
        self.sock.settimeout(left)
        chunk = self.sock.recv(65536)
        if not chunk:
            raise ConnectionResetError("the server closed the connection")
        self.buffer += chunk

    def close(self) -> None:
        sock, self.sock, self.buffer = self.sock, None, b""
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.close()


def _jetstream_answer(headers: bytes, payload: bytes) -> publishing.Outcome:
    """ok: the stream's ack (``{"stream", "seq"}``, a duplicate too: stored before); fail: a
    JetStream error, or status 503 (no responders: no stream listens on the subject)."""
    status_line = headers.split(b"\r\n", 1)[0].decode(errors="replace")
    status = status_line.split()[1] if len(status_line.split()) > 1 else ""
    if status == "503":
        return "fail", 503, "no responders: no stream listens on the subject"
    if status:
        return "info", int(status) if status.isdigit() else None, publishing.error_text(status_line)
    try:
        answer = json.loads(payload)
    except ValueError:
        return "info", None, publishing.error_text(f"not a JetStream answer: {payload[:80]!r}")
    if isinstance(answer, dict) and isinstance(answer.get("error"), dict):
        error = answer["error"]
        code = error.get("code")
        text = f"JetStream error {code}/{error.get('err_code')}: {error.get('description')}"
        return "fail", code if isinstance(code, int) else None, publishing.error_text(text)
    if isinstance(answer, dict) and "stream" in answer and "seq" in answer:
        return "ok", None, None
    return "info", None, publishing.error_text(f"not a JetStream answer: {payload[:80]!r}")
