"""The shop's worker, fixed: a job stays in this worker's own `processing:NAME` list until its
effect is recorded, and a worker that starts again puts back what it held when it died."""

import os
import time

import redis

broker = redis.Redis.from_url(os.environ["BROKER_URL"])
effects = redis.Redis.from_url(os.environ["EFFECTS_URL"])
processing = f"processing:{os.environ['WORKER_NAME']}"

while broker.lmove(processing, "jobs", "RIGHT", "RIGHT"):
    pass  # what this worker held when it died goes back to the queue
print("ready", flush=True)
while True:
    job = broker.blmove("jobs", processing, 0, "RIGHT", "LEFT")
    time.sleep(0.02)  # the work
    effects.hsetnx("effects", job, 1)  # done once, however often the job comes back
    broker.lrem(processing, 1, job)
