"""PromQL over Prometheus' HTTP API: instant and range queries at the run's recorded times.

The transport is injectable so response parsing is tested without a network; the tests that
claim to test Prometheus use the real one.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import httpx

from harness.errors import HarnessError


class PromQLError(HarnessError):
    """Prometheus refused the query or could not be reached."""


class BadQuery(PromQLError):
    """Prometheus cannot parse or execute the query: asking again will not help."""


@dataclass(frozen=True)
class Sample:
    labels: dict[str, str]
    value: float


@dataclass(frozen=True)
class Series:
    labels: dict[str, str]
    points: list[tuple[float, float]]


def describe(labels: dict[str, str]) -> str:
    """``{queue="jobs"}``, or nothing for an unlabelled result."""
    inner = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()) if k != "__name__")
    return "{" + inner + "}" if inner else ""


class PromQL:
    def __init__(
        self,
        base_url: str,
        transport: httpx.BaseTransport | None = None,
        timeout_s: float = 10.0,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._client = httpx.Client(base_url=self.base_url, transport=transport, timeout=timeout_s)

    def instant(self, query: str, at: float | None = None) -> list[Sample]:
        """The query's value at unix time ``at`` (now if None); NaN samples count as no data."""
        params: dict[str, Any] = {"query": query}
        if at is not None:
            params["time"] = f"{at:.3f}"
        data = self._get("/api/v1/query", params)
        kind, result = data["resultType"], data["result"]
        if kind == "scalar":
            samples = [Sample({}, float(result[1]))]
        elif kind == "vector":
            samples = [Sample(item["metric"], float(item["value"][1])) for item in result]
        else:
            raise PromQLError(f"query {query!r} returned a {kind}; expected a number or a vector")
        return [s for s in samples if not math.isnan(s.value)]

    def range(self, query: str, start: float, end: float, step_s: float = 1.0) -> list[Series]:
        """Every step's value between ``start`` and ``end``; NaN points are dropped."""
        params = {
            "query": query,
            "start": f"{start:.3f}",
            "end": f"{end:.3f}",
            "step": f"{step_s:g}s",
        }
        data = self._get("/api/v1/query_range", params)
        series = []
        for item in data["result"]:
            points = [(float(t), float(v)) for t, v in item["values"] if not math.isnan(float(v))]
            if points:
                series.append(Series(item["metric"], points))
        return series

    def parse(self, query: str) -> None:
        """Raise BadQuery, with Prometheus' own message, unless ``query`` is valid PromQL."""
        self._get("/api/v1/parse_query", {"query": query}, method="POST")

    def metric_names(self, selector: str, start: float, end: float) -> set[str]:
        """Names of the metrics with a series matching ``selector`` between the two times."""
        params = {"match[]": selector, "start": f"{start:.3f}", "end": f"{end:.3f}"}
        return {str(name) for name in self._get("/api/v1/label/__name__/values", params)}

    def _get(self, path: str, params: dict[str, Any], method: str = "GET") -> Any:
        """The answer's data; POST sends ``params`` as a form, for a query of any length."""
        try:
            if method == "POST":
                response = self._client.post(path, data=params)
            else:
                response = self._client.get(path, params=params)
        except httpx.HTTPError as exc:
            raise PromQLError(f"Prometheus at {self.base_url} did not answer: {exc}") from None
        try:
            body = response.json()
        except ValueError:
            raise PromQLError(f"Prometheus answered {response.status_code} without JSON") from None
        if body.get("status") != "success":
            error = BadQuery if body.get("errorType") == "bad_data" else PromQLError
            raise error(f"Prometheus: {body.get('errorType', '')}: {body.get('error', body)}")
        return body["data"]

    def close(self) -> None:
        self._client.close()
