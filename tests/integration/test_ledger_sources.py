"""Ledger sources read the processed side from where a system records its effects: a real
redis-server, a real SQLite file, a real PostgreSQL server, files and a real HTTP server; and a
source that cannot be read says which and why."""

from __future__ import annotations

import collections
import glob
import json
import os
import shutil
import sqlite3
import subprocess
import tempfile
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import psycopg
import pytest

from harness.deploy.ports import PortAllocator
from harness.ledger.sources import (
    FileLedger,
    HttpLedger,
    LedgerSourceError,
    PostgresLedger,
    RedisLedger,
    SqliteLedger,
    read,
)
from tests.integration.redis_streams_stack import Stack

TRUTH = collections.Counter({"a": 1, "b": 2, "c": 1})  # b was processed twice


def test_redis_keys_of_every_kind(stack: Stack) -> None:
    client = stack.start_redis()
    url = f"redis://{stack.redis_addr}/0"
    client.sadd("as-set", "a", "b", "c")
    client.hset("as-hash", mapping={"a": 1, "b": 2, "c": 1, "never": 0})
    client.zadd("as-zset", {"a": 1, "b": 2, "c": 1})
    client.rpush("as-list", "a", "b", "c", "b")
    assert read(RedisLedger(source="redis", url=url, key="as-set")) == {"a": 1, "b": 1, "c": 1}
    for key in ("as-hash", "as-zset", "as-list"):
        assert read(RedisLedger(source="redis", url=url, key=key)) == TRUTH, key
    assert read(RedisLedger(source="redis", url=url, key="nothing-yet")) == {}
    client.set("a-string", "x")
    with pytest.raises(LedgerSourceError, match="is a string; a ledger key is a set"):
        read(RedisLedger(source="redis", url=url, key="a-string"))
    client.hset("bad-count", "a", "many")
    with pytest.raises(LedgerSourceError, match="the count of 'a' is 'many'"):
        read(RedisLedger(source="redis", url=url, key="bad-count"))
    stack.stop_all()
    with pytest.raises(LedgerSourceError, match=f"redis key 'as-set' at {url}: ConnectionError"):
        read(RedisLedger(source="redis", url=url, key="as-set"))


def test_sqlite_rows_or_counts(tmp_path: Path) -> None:
    path = tmp_path / "app.db"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE effects (job_id TEXT, n INTEGER)")
        db.executemany("INSERT INTO effects VALUES (?, 1)", [("a",), ("b",), ("c",), ("b",)])
    rows = SqliteLedger(source="sqlite", path=str(path), query="SELECT job_id FROM effects")
    assert read(rows) == TRUTH
    grouped = "SELECT job_id, SUM(n) FROM effects GROUP BY job_id"
    assert read(SqliteLedger(source="sqlite", path=str(path), query=grouped)) == TRUTH
    with pytest.raises(LedgerSourceError, match="returns 3 columns"):
        read(
            SqliteLedger(source="sqlite", path=str(path), query="SELECT job_id, n, n FROM effects")
        )
    with pytest.raises(LedgerSourceError, match="OperationalError: no such table: nope"):
        read(SqliteLedger(source="sqlite", path=str(path), query="SELECT id FROM nope"))
    missing = tmp_path / "missing.db"
    with pytest.raises(LedgerSourceError, match="no such file"):
        read(SqliteLedger(source="sqlite", path=str(missing), query="SELECT 1"))
    assert not missing.exists()  # read-only: a wrong path does not create an empty database


def _postgres_bin(name: str) -> str:
    """Debian keeps PostgreSQL's server programs out of PATH, under its major version."""
    found = shutil.which(name) or next(
        iter(sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))), None
    )
    assert found, f"{name} not found: .ci/setup installs Debian's postgresql"
    return found


@pytest.fixture(scope="module")
def postgres() -> Iterator[str]:
    """A real PostgreSQL server on 127.0.0.1, its cluster in a folder of its own; its URL.

    PostgreSQL refuses to run as root, so as root it runs as Debian's ``postgres`` user.
    """
    as_user = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    folder = Path(tempfile.mkdtemp(prefix="harness-pg-"))
    if as_user:
        shutil.chown(folder, "postgres")
    data, port = folder / "data", PortAllocator().allocate()

    def run(*command: str) -> None:
        subprocess.run([*as_user, *command], check=True, capture_output=True)

    try:
        run(_postgres_bin("initdb"), "-D", str(data), "-U", "harness", "--auth=trust")
        run(
            _postgres_bin("pg_ctl"),
            "-D",
            str(data),
            "-l",
            str(folder / "log"),
            "-w",
            "-t",
            "60",
            "-o",
            f"-h 127.0.0.1 -p {port} -k {folder}",
            "start",
        )
        yield f"postgresql://harness@127.0.0.1:{port}/postgres"
    finally:
        if (data / "postmaster.pid").exists():
            run(_postgres_bin("pg_ctl"), "-D", str(data), "-m", "immediate", "stop")
        shutil.rmtree(folder, ignore_errors=True)


def test_postgres_rows_or_counts_read_only(postgres: str) -> None:
    with psycopg.connect(postgres, autocommit=True) as db:
        db.execute("CREATE TABLE effects (job_id TEXT, n INTEGER)")
        db.execute("INSERT INTO effects VALUES ('a', 1), ('b', 1), ('c', 1), ('b', 1)")
    rows = PostgresLedger(source="postgres", url=postgres, query="SELECT job_id FROM effects")
    assert read(rows) == TRUTH
    grouped = "SELECT job_id, SUM(n) FROM effects WHERE job_id LIKE '%' GROUP BY job_id"
    assert read(PostgresLedger(source="postgres", url=postgres, query=grouped)) == TRUTH
    with pytest.raises(LedgerSourceError, match="returns 3 columns"):
        read(
            PostgresLedger(
                source="postgres", url=postgres, query="SELECT job_id, n, n FROM effects"
            )
        )
    with pytest.raises(LedgerSourceError, match='UndefinedTable: relation "nope" does not exist'):
        read(PostgresLedger(source="postgres", url=postgres, query="SELECT id FROM nope"))
    # Read-only: a query that would change the system's data is refused, and changes nothing.
    delete = "DELETE FROM effects RETURNING job_id"
    with pytest.raises(LedgerSourceError, match="ReadOnlySqlTransaction"):
        read(PostgresLedger(source="postgres", url=postgres, query=delete))
    assert read(rows) == TRUTH
    # A password never reaches a message.
    gone = "postgresql://harness:s3cret@127.0.0.1:1/postgres"
    with pytest.raises(LedgerSourceError, match=r"postgres postgresql://harness:\*\*\*@127") as err:
        read(PostgresLedger(source="postgres", url=gone, query="SELECT 1"))
    assert "s3cret" not in str(err.value)


def test_files_one_per_replica(tmp_path: Path) -> None:
    for replica, text in (("worker-0", "a\nb\n"), ("worker-1", "c\n\nb\n")):
        (tmp_path / replica).mkdir()
        (tmp_path / replica / "done.txt").write_text(text)
    assert read(FileLedger(source="file", path=str(tmp_path / "worker-*" / "done.txt"))) == TRUTH
    assert read(FileLedger(source="file", path=str(tmp_path / "none-*.txt"))) == {}


@pytest.fixture
def endpoint() -> Iterator[tuple[str, dict[str, object]]]:
    """A real HTTP server answering GET with whatever the test put in ``answers[path]``."""
    answers: dict[str, object] = {}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path not in answers:
                self.send_error(404)
                return
            body = json.dumps(answers[self.path]).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", answers
    finally:
        server.shutdown()
        server.server_close()


def test_http_lists_ids_or_counts(endpoint: tuple[str, dict[str, object]]) -> None:
    base, answers = endpoint
    answers["/list"] = ["a", "b", "c", "b"]
    answers["/ids"] = {"ids": ["a", "b", "c", "b"]}
    answers["/counts"] = {"a": 1, "b": 2, "c": 1}
    answers["/odd"] = 7
    for path in ("/list", "/ids", "/counts"):
        assert read(HttpLedger(source="http", url=base + path)) == TRUTH, path
    with pytest.raises(LedgerSourceError, match="answered int; expected a list of ids"):
        read(HttpLedger(source="http", url=base + "/odd"))
    with pytest.raises(LedgerSourceError, match=f"GET {base}/gone: HTTPStatusError"):
        read(HttpLedger(source="http", url=base + "/gone"))
