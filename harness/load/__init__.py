"""The load step: Locust driving messages at the producer, or straight into the broker, with a
ledger of every send."""

from harness.load.process import (
    LoadPlan,
    LoadProcess,
    Publish,
    RemoteWorkers,
    load_address,
    worker_command,
)

__all__ = ["LoadPlan", "LoadProcess", "Publish", "RemoteWorkers", "load_address", "worker_command"]
