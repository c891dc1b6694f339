"""Chaos experiments for asynchronous systems."""
