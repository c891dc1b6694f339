"""The load step: Locust driving messages at the producer, with a ledger of every send."""

from harness.load.process import LoadPlan, LoadProcess, RemoteWorkers, worker_command

__all__ = ["LoadPlan", "LoadProcess", "RemoteWorkers", "worker_command"]
