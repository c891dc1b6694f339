"""The bytes through each link's proxy, sampled each second into the run folder: the evidence
that a fault on a link touched traffic.

Toxiproxy's own byte counters (``-proxy-metrics``) grow only when a connection closes, and the
links of an asynchronous system are long-lived connections (a consumer's to its broker): a
link busy for a whole run reads 0 until teardown. So a link's bytes at each moment are
Toxiproxy's count for its closed connections plus, for each connection still open, the bytes
the kernel has moved on the proxy's side of it (``ss -tin`` on the proxy's listening port):
each connection counted once, whether open or closed.
"""

from __future__ import annotations

import json
import re
import subprocess
import threading
import time
from collections.abc import Mapping
from pathlib import Path

import requests
from prometheus_client.parser import text_string_to_metric_families

INTERVAL_S = 1.0
TIMEOUT_S = 2.0
# On an open connection the proxy accepted: bytes from the client and bytes the client acked.
_MOVED = re.compile(r"\bbytes_(?:received|acked):(\d+)")


class LinkTraffic:
    """A thread that appends each link's bytes so far to ``path`` every second.

    ``netns`` runs ``ss`` in the network namespace of the process with that pid (Toxiproxy in
    a container; needs root and nsenter); ``open_unseen`` says why the open connections cannot
    be read at all (a Toxiproxy on another host), and then each sample records that instead.
    """

    def __init__(
        self,
        api_url: str,
        ports: Mapping[str, int],
        path: Path,
        prefix: str = "",
        netns: int | None = None,
        open_unseen: str | None = None,
    ) -> None:
        self.api_url, self.ports, self.path, self.prefix = api_url, dict(ports), path, prefix
        self.ss = (
            ["ss", "-tinH"] if netns is None else ["nsenter", "-t", str(netns), "-n", "ss", "-tinH"]
        )
        self.open_unseen = open_unseen
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="link-traffic", daemon=True)

    def start(self) -> None:
        if self.ports:
            self._thread.start()

    def stop(self) -> None:
        """Stop sampling, after one last sample."""
        if self._thread.is_alive():
            self._stop.set()
            self._thread.join(timeout=TIMEOUT_S * 3)

    def _run(self) -> None:
        with self.path.open("a", encoding="utf-8") as out:
            while True:
                out.write(json.dumps(self.sample()) + "\n")
                out.flush()
                if self._stop.wait(INTERVAL_S):
                    out.write(json.dumps(self.sample()) + "\n")
                    return

    def sample(self) -> dict[str, object]:
        """Each link's bytes now, or why they could not be read."""
        t = time.time()
        try:
            if self.open_unseen is not None:
                raise LookupError(self.open_unseen)
            closed, opened = self._closed(), self._open()
        except (LookupError, OSError, requests.RequestException, ValueError) as exc:
            return {"t": round(t, 3), "error": str(exc)}
        moved = {
            link: closed.get(self.prefix + link, 0.0) + opened.get(port, 0.0)
            for link, port in self.ports.items()
        }
        return {"t": round(t, 3), "bytes": moved}

    def _closed(self) -> dict[str, float]:
        """Toxiproxy's bytes received (both ways) per proxy, for its closed connections."""
        answer = requests.get(f"{self.api_url}/metrics", timeout=TIMEOUT_S)
        if answer.status_code == 404:
            raise LookupError("Toxiproxy serves no metrics (start it with -proxy-metrics)")
        answer.raise_for_status()
        received: dict[str, float] = {}
        for family in text_string_to_metric_families(answer.text):
            if family.name == "toxiproxy_proxy_received_bytes":
                for sample in family.samples:
                    proxy = sample.labels.get("proxy", "")
                    received[proxy] = received.get(proxy, 0.0) + sample.value
        return received

    def _open(self) -> dict[int, float]:
        """The bytes moved so far on each open connection, by the local port it was accepted on."""
        try:
            done = subprocess.run(
                self.ss, capture_output=True, text=True, timeout=TIMEOUT_S, check=False
            )
        except FileNotFoundError as exc:
            raise LookupError(
                f"{exc.filename} is not installed (Debian: iproute2, util-linux)"
            ) from None
        except subprocess.TimeoutExpired as exc:
            raise LookupError(f"{' '.join(self.ss)} did not answer within {TIMEOUT_S:g}s") from exc
        if done.returncode != 0:
            raise LookupError(f"{' '.join(self.ss)}: {done.stderr.strip() or done.returncode}")
        moved: dict[int, float] = {}
        port: int | None = None
        for line in done.stdout.splitlines():
            if not line[:1].isspace():  # a socket: state, queues, local and peer address
                fields = line.split()
                local = fields[3] if len(fields) >= 5 else ""
                port = int(local.rsplit(":", 1)[1]) if ":" in local else None
            elif port is not None:
                moved[port] = moved.get(port, 0.0) + sum(int(n) for n in _MOVED.findall(line))
        return moved


def moved(path: Path, link: str, start: float, end: float) -> float | None:
    """The bytes through ``link`` from the last sample at or before ``start`` to the first at or
    after ``end`` (so the span is covered, give or take a sample); None when the file does not
    tell: no such samples, or they recorded an error."""
    if not path.is_file():
        return None
    before: float | None = None
    with path.open(encoding="utf-8") as lines:
        for line in lines:
            try:
                sample = json.loads(line)
            except json.JSONDecodeError:
                continue  # torn by a killed harness: the samples around it still tell
            t, counts = float(sample.get("t", 0)), sample.get("bytes")
            if t <= start:
                before = None if counts is None else counts.get(link)
            elif t >= end:
                after = None if counts is None else counts.get(link)
                return None if before is None or after is None else max(0.0, after - before)
    return None
