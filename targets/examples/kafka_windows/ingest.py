"""The event ingest: ``POST /events`` ``{"id": str}`` writes the event to the Kafka topic
``events``, keyed by its customer, and answers 202 once every in-sync replica has it (503 if
Kafka does not take it within 5 s). ``GET /healthz``. Env: PORT, KAFKA_ADDR.
"""

import json
import os
import threading
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from confluent_kafka import Producer

CUSTOMERS = 8
producer = Producer(
    {"bootstrap.servers": os.environ["KAFKA_ADDR"], "acks": "all", "linger.ms": 1,
     "enable.idempotence": True, "message.timeout.ms": 5000}
)  # fmt: skip


def customer(event_id: str) -> str:
    return f"customer-{zlib.crc32(event_id.encode()) % CUSTOMERS}"


class Handler(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        event_id = json.loads(self.rfile.read(int(self.headers["Content-Length"])))["id"]
        done, failed = threading.Event(), []

        def delivered(err: object, _msg: object) -> None:
            if err is not None:
                failed.append(err)
            done.set()

        producer.produce("events", event_id.encode(), key=customer(event_id), on_delivery=delivered)
        while not done.is_set():
            producer.poll(0.05)
        self.send_response(503 if failed else 202)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


ThreadingHTTPServer(("127.0.0.1", int(os.environ["PORT"])), Handler).serve_forever()
