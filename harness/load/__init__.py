"""The load step: Locust driving messages at the producer, with a ledger of every send."""

from harness.load.process import LoadPlan, LoadProcess

__all__ = ["LoadPlan", "LoadProcess"]
