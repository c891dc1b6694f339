"""A few numbers about the system under test, read once a second for the live console.

Read on a thread of their own: a slow Prometheus answer must never delay a fault.
"""

from __future__ import annotations

import contextlib
import threading

from harness.observe.promql import PromQL, PromQLError

INTERVAL_S = 1.0


def queries(queue: str) -> dict[str, str]:
    return {
        "sent/s": "sum(rate(harness_load_requests_total[5s]))",
        "depth": f'sum(harness_queue_depth{{queue="{queue}"}})',
        "lag": f'sum(harness_consumer_lag{{queue="{queue}"}})',
        "errors/s": 'sum(rate(harness_load_requests_total{outcome!="ok"}[5s])) or vector(0)',
    }


class LiveNumbers:
    """The latest value of each number; None until Prometheus has one."""

    def __init__(self, prometheus_url: str, queue: str) -> None:
        self._queries = queries(queue)
        # A client of its own, with a short timeout: the run's client stays on its thread.
        self._promql = PromQL(prometheus_url, timeout_s=INTERVAL_S)
        self.values: dict[str, float | None] = dict.fromkeys(self._queries)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._read, name="live-numbers", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(2 * INTERVAL_S)
        self._promql.close()

    def _read(self) -> None:
        while not self._stop.is_set():
            for name, expr in self._queries.items():
                with contextlib.suppress(PromQLError):
                    samples = self._promql.instant(expr)
                    self.values[name] = samples[0].value if samples else None
            self._stop.wait(INTERVAL_S)
