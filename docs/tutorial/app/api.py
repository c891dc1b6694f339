"""The shop's API: POST /jobs {"id": ...} puts the job on the Redis list `jobs` and answers 202."""

import json
import os
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import redis

broker = redis.Redis.from_url(os.environ["BROKER_URL"])


class Handler(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        try:
            broker.lpush("jobs", body["id"])
            self.send_response(202)
        except redis.RedisError:
            self.send_response(503)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def do_GET(self) -> None:  # /healthz
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


ThreadingHTTPServer(("127.0.0.1", int(os.environ["PORT"])), Handler).serve_forever()
