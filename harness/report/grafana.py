"""Grafana: the data source and dashboards pushed, and each run's faults and phases annotated.

Credentials come from the environment only (``GRAFANA_TOKEN``, or ``GRAFANA_USER`` and
``GRAFANA_PASSWORD``), never from a file, and are never printed. Annotating is best effort: a
Grafana that fails costs the run a warning, never a verdict, and never delays a fault.
"""

from __future__ import annotations

import os
import queue
import threading
from collections.abc import Callable, Mapping
from functools import partial
from typing import Any

from grafana_client.api import GrafanaApi
from grafana_client.client import GrafanaClientError

from harness.errors import EnvironmentProblem
from harness.journal import Event, Outcome
from harness.report.dashboards import ANNOTATION_TAG, DATASOURCE_UID, all_dashboards

TIMEOUT_S = 5.0
# What a run annotates: faults as they apply and heal, and the phases around them.
ANNOTATED = {"load.start", "load.end", "drain", "abort", "fault.apply", "fault.heal"}


def connect(url: str) -> GrafanaApi:
    token = os.environ.get("GRAFANA_TOKEN")
    user, password = os.environ.get("GRAFANA_USER"), os.environ.get("GRAFANA_PASSWORD")
    credential: str | tuple[str, str] | None = token or (
        (user, password) if user and password else None
    )
    if credential is None:
        raise EnvironmentProblem(
            "no Grafana credentials: set GRAFANA_TOKEN (a service account token), or "
            "GRAFANA_USER and GRAFANA_PASSWORD"
        )
    api: GrafanaApi = GrafanaApi.from_url(url, credential=credential, timeout=TIMEOUT_S)
    return api


def datasource(prometheus_url: str) -> dict[str, Any]:
    """The data source the dashboards read: Grafana's server reaches ``prometheus_url``."""
    return {
        "uid": DATASOURCE_UID,
        "name": "Harness Prometheus",
        "type": "prometheus",
        "access": "proxy",
        "url": prometheus_url,
        "jsonData": {"timeInterval": "1s"},  # the harness's Prometheus scrapes every second
    }


def push(api: GrafanaApi, prometheus_url: str) -> list[str]:
    """Create or update the Prometheus data source and every dashboard; their titles."""
    source = datasource(prometheus_url)
    if _datasource_exists(api):
        _call(lambda: api.datasource.update_datasource_by_uid(DATASOURCE_UID, source))
    else:
        _call(lambda: api.datasource.create_datasource(source))
    titles = []
    for dashboard in all_dashboards().values():
        _call(partial(api.dashboard.update_dashboard, {"dashboard": dashboard, "overwrite": True}))
        titles.append(str(dashboard["title"]))
    return titles


def annotation(event: Event, run_id: str, experiment: str, target: str) -> dict[str, Any] | None:
    """The annotation for one journal event, or None for events the dashboards do not draw."""
    if event.kind not in ANNOTATED:
        return None
    tags = [ANNOTATION_TAG, f"run:{run_id}", f"experiment:{experiment}", f"target:{target}"]
    text = f"{event.kind} {event.target}"
    if fault := event.value.get("fault"):
        tags.append(f"fault:{fault}")
        text = f"{event.kind} {fault} on {event.target} ({event.value.get('label')})"
    if event.outcome is Outcome.FAIL:
        text += ": failed"
    return {"time": int(event.t_complete * 1000), "tags": tags, "text": text}


class Annotator:
    """Posts a run's annotations from a thread of its own, so Grafana never holds up a fault."""

    def __init__(
        self,
        api: GrafanaApi,
        run: Mapping[str, str],
        warn: Callable[[str], None],
    ) -> None:
        self._api = api
        self._run = run
        self._warn = warn
        self._queue: queue.Queue[dict[str, Any] | None] = queue.Queue()
        self._failed = False
        self._thread = threading.Thread(target=self._post_all, name="grafana", daemon=True)
        self._thread.start()

    def __call__(self, event: Event) -> None:
        body = annotation(event, self._run["run_id"], self._run["experiment"], self._run["target"])
        if body is not None:
            self._queue.put(body)

    def close(self, timeout_s: float = TIMEOUT_S) -> None:
        """Post what is queued (for at most ``timeout_s``), then stop."""
        self._queue.put(None)
        self._thread.join(timeout_s)

    def _post_all(self) -> None:
        while (body := self._queue.get()) is not None:
            try:
                self._api.annotations.add_annotation(
                    time_from=body["time"], tags=body["tags"], text=body["text"]
                )
            except Exception as exc:  # any failure of Grafana's: warn once, keep the run going
                if not self._failed:
                    self._failed = True
                    self._warn(f"Grafana did not take an annotation ({exc}); the run goes on")


def _datasource_exists(api: GrafanaApi) -> bool:
    try:
        api.datasource.get_datasource_by_uid(DATASOURCE_UID)
    except GrafanaClientError as exc:
        if exc.status_code == 404:
            return False
        raise _problem(exc) from None
    except Exception as exc:
        raise _problem(exc) from None
    return True


def _call(request: Callable[[], Any]) -> Any:
    """One request; whatever goes wrong (refused, timed out, 401) becomes one clear error."""
    try:
        return request()
    except Exception as exc:
        raise _problem(exc) from None


def _problem(exc: Exception) -> EnvironmentProblem:
    return EnvironmentProblem(f"Grafana: {exc}")
