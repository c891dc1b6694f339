"""The stream processor: counts events per customer in 5 s tumbling windows. One member of the
consumer group ``windows`` on the topic ``events``; each event's count, its id and its
partition go to SQLite in one transaction as it is processed, and a batch's offsets are
committed to Kafka once all of it is counted.

OFFSETS=db (the default): exactly once. The transaction also stores the partition's next
offset, a member given a partition starts from the offset stored there, and an event at an
offset already stored is not counted again; the commit to Kafka only shows the group's lag.
OFFSETS=kafka (the weakness): the offsets committed to Kafka are the position. A member that
dies mid-batch has the batch read again by the member that takes its partitions: at least once,
so a window's count can exceed the truth, by exactly the events counted twice.
Env: KAFKA_ADDR, COUNTS_DB, PROCESS_MS (work per event), WORKER_NAME, OFFSETS (db | kafka).
"""

import os
import signal
import sqlite3
import time

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

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
db.execute("CREATE TABLE IF NOT EXISTS counted (id TEXT, customer TEXT, member TEXT, "
           "partition INTEGER)")  # fmt: skip
db.execute("CREATE TABLE IF NOT EXISTS offsets (partition INTEGER PRIMARY KEY, next INTEGER)")
in_db = os.environ.get("OFFSETS", "db") == "db"
consumer = Consumer(
    {"bootstrap.servers": os.environ["KAFKA_ADDR"], "group.id": "windows",
     "enable.auto.commit": False, "auto.offset.reset": "earliest",
     "session.timeout.ms": 6000, "heartbeat.interval.ms": 1000}
)  # fmt: skip
admin = AdminClient({"bootstrap.servers": os.environ["KAFKA_ADDR"]})
for future in admin.create_topics([NewTopic("events", 4, 1)]).values():
    try:
        future.result(30)
    except KafkaException as exc:
        if exc.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
            raise


def assigned(consumer: Consumer, partitions: list[TopicPartition]) -> None:
    """With OFFSETS=db, start each partition from the offset stored with its counts."""
    if in_db:
        stored = dict(db.execute("SELECT partition, next FROM offsets").fetchall())
        for tp in partitions:
            if tp.partition in stored:
                tp.offset = stored[tp.partition]
        consumer.assign(partitions)
    print("assigned", flush=True)


def counted_before(record: Message) -> bool:
    """Whether the record's offset is below its partition's stored next one (OFFSETS=db)."""
    row = db.execute("SELECT next FROM offsets WHERE partition = ?", (record.partition(),))
    stored = row.fetchone()
    return stored is not None and record.offset() < stored[0]


consumer.subscribe(["events"], on_assign=assigned)
work_s = int(os.environ.get("PROCESS_MS", "5")) / 1000
member = os.environ.get("WORKER_NAME", "counter")
while not stopping:
    first = consumer.poll(0.1)
    if first is None:
        continue
    if first.error():
        print(f"consume: {first.error()}", flush=True)
        continue
    batch = [first, *consumer.consume(49, 0)]
    for record in batch:
        time.sleep(work_s)
        window = int(record.timestamp()[1] / 1000 // WINDOW_S * WINDOW_S)
        customer = record.key().decode()
        with db:  # the count, the id it counted (and the next offset), in one transaction
            db.execute("BEGIN IMMEDIATE")
            if in_db and counted_before(record):
                continue
            db.execute(
                "INSERT INTO counts VALUES (?, ?, 1) ON CONFLICT DO UPDATE SET n = n + 1",
                (window, customer),
            )
            db.execute(
                "INSERT INTO counted VALUES (?, ?, ?, ?)",
                (record.value().decode(), customer, member, record.partition()),
            )
            if in_db:
                db.execute(
                    "INSERT OR REPLACE INTO offsets VALUES (?, ?)",
                    (record.partition(), record.offset() + 1),
                )
    consumer.commit(asynchronous=False)
consumer.close()
