"""A Celery application as a team would write it: one task that does some work and records its
effect. Nothing in it knows about the harness; the harness reads the effects (the hash
``effects`` in EFFECTS_URL: job id → times applied) as its ledger.

Env: BROKER_URL (the Redis broker, through the harness's proxy), EFFECTS_URL (where effects
go), PROCESS_MS (work a task does), ACKS_LATE (0: Celery's default, a message is acknowledged
when its task starts; 1: when it ends), VISIBILITY_TIMEOUT_S (how long a message delivered and
not acknowledged waits before Redis hands it out again).
"""

from __future__ import annotations

import functools
import os
import time

import redis
from celery import Celery

ACKS_LATE = os.environ.get("ACKS_LATE", "0") == "1"

app = Celery("tasks", broker=os.environ.get("BROKER_URL", "redis://127.0.0.1:6379/0"))
app.conf.update(
    task_default_queue="jobs",
    task_acks_late=ACKS_LATE,
    task_reject_on_worker_lost=ACKS_LATE,
    worker_prefetch_multiplier=1,
    broker_transport_options={
        "visibility_timeout": float(os.environ.get("VISIBILITY_TIMEOUT_S", "5"))
    },
    broker_connection_retry_on_startup=True,
    worker_hijack_root_logger=False,
)


@functools.cache
def effects() -> redis.Redis:
    return redis.Redis.from_url(os.environ.get("EFFECTS_URL", "redis://127.0.0.1:6379/1"))


@app.task(name="apply")
def apply(job_id: str) -> None:
    time.sleep(int(os.environ.get("PROCESS_MS", "10")) / 1000)
    effects().hincrby("effects", job_id, 1)
