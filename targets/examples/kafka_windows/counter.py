"""The stream processor: counts events per customer in 5 s tumbling windows. One member of the
consumer group ``windows`` on the topic ``events``; each batch's counts, and the ids it counted,
go to SQLite in one transaction, then the batch's offsets are committed. A member that dies
between the two has its batch read again by the member that takes its partitions: at least
once, so a window's count can exceed the truth, by exactly the events counted twice.
Env: KAFKA_ADDR, COUNTS_DB, PROCESS_MS (work per event), WORKER_NAME.
"""

import collections
import os
import signal
import sqlite3
import time

from confluent_kafka import Consumer

WINDOW_S = 5
stopping = False


def stop(*_: object) -> None:
    global stopping
    stopping = True


signal.signal(signal.SIGTERM, stop)
db = sqlite3.connect(os.environ["COUNTS_DB"], timeout=30, isolation_level=None)
db.execute("PRAGMA journal_mode=WAL")
db.execute("CREATE TABLE IF NOT EXISTS counts (window INTEGER, customer TEXT, n INTEGER, "
           "PRIMARY KEY (window, customer))")  # fmt: skip
db.execute("CREATE TABLE IF NOT EXISTS counted (id TEXT, customer TEXT, member TEXT)")
consumer = Consumer(
    {"bootstrap.servers": os.environ["KAFKA_ADDR"], "group.id": "windows",
     "enable.auto.commit": False, "auto.offset.reset": "earliest",
     "session.timeout.ms": 6000, "heartbeat.interval.ms": 1000}
)  # fmt: skip
consumer.subscribe(["events"], on_assign=lambda *_: print("assigned", flush=True))
work_s = int(os.environ.get("PROCESS_MS", "5")) / 1000
member = os.environ.get("WORKER_NAME", "counter")
while not stopping:
    first = consumer.poll(0.1)
    if first is None or first.error():
        continue
    batch = [first, *consumer.consume(49, 0)]
    windows: collections.Counter[tuple[int, str]] = collections.Counter()
    for record in batch:
        time.sleep(work_s)
        window = int(record.timestamp()[1] / 1000 // WINDOW_S * WINDOW_S)
        windows[(window, record.key().decode())] += 1
    db.execute("BEGIN IMMEDIATE")
    db.executemany(
        "INSERT INTO counts VALUES (?, ?, ?) ON CONFLICT DO UPDATE SET n = n + excluded.n",
        [(window, key, n) for (window, key), n in windows.items()],
    )
    db.executemany(
        "INSERT INTO counted VALUES (?, ?, ?)",
        [(r.value().decode(), r.key().decode(), member) for r in batch],
    )
    db.execute("COMMIT")
    consumer.commit(asynchronous=False)
consumer.close()
