"""The shop's worker, first version: take a job off the list, do it, record the effect."""

import os
import time

import redis

broker = redis.Redis.from_url(os.environ["BROKER_URL"])
effects = redis.Redis.from_url(os.environ["EFFECTS_URL"])

print("ready", flush=True)
while True:
    _, job = broker.brpop(["jobs"])
    time.sleep(0.02)  # the work
    effects.hincrby("effects", job, 1)
