"""Links: one Toxiproxy proxy per link, named ``worker->broker``; the toxiproxy client lives here.

toxiproxy-python keeps the server's address in class attributes and calls ``requests`` with no
timeout; a toxic's DELETE can hang under load (Toxiproxy issues 412 and 558). So every call here
goes through one server address and a timeout, and teardown ends with ``POST /reset``.
"""

from __future__ import annotations

import contextlib
import functools
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import requests
import toxiproxy.api
from toxiproxy import Toxiproxy
from toxiproxy.exceptions import NotFound
from toxiproxy.proxy import Proxy

from harness.deploy import netfilter, owner
from harness.deploy.process import ManagedProcess, Readiness
from harness.errors import EnvironmentProblem

API_TIMEOUT_S = 5.0

# The library imports ``requests`` at module level; hand it one whose calls cannot hang.
toxiproxy.api.requests = SimpleNamespace(
    get=functools.partial(requests.get, timeout=API_TIMEOUT_S),
    post=functools.partial(requests.post, timeout=API_TIMEOUT_S),
    delete=functools.partial(requests.delete, timeout=API_TIMEOUT_S),
)


@dataclass(frozen=True)
class LinkAddress:
    """Where a link's proxy listens and where it forwards to."""

    name: str
    listen_port: int
    upstream_port: int
    upstream_host: str = "127.0.0.1"
    listen_host: str = "127.0.0.1"

    @property
    def listen(self) -> str:
        return f"{self.listen_host}:{self.listen_port}"


class ToxiproxyServer:
    """The run's own Toxiproxy server process."""

    def __init__(self, binary: Path, port: int, log_path: Path) -> None:
        self.port = port
        self.process = ManagedProcess(
            "toxiproxy",
            [str(binary), "-host", "127.0.0.1", "-port", str(port), "-proxy-metrics"],
            log_path,
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def processes(self) -> dict[str, ManagedProcess]:
        return {self.process.name: self.process}

    def start(self) -> None:
        self.process.start()

    def wait_ready(self, timeout_s: float = 10.0) -> None:
        self.process.wait_ready(timeout_s, Readiness(self.port, "/version"))

    def stop(self) -> None:
        self.process.stop()

    def record(self) -> dict[str, dict[str, Any]]:
        return {}  # the run records its process with the others


class LinkNetwork:
    """The proxies of every link, and the toxics on them (the network seam of faults).

    On a server the run does not own, each proxy's name starts with ``prefix`` (the run's id),
    so that it neither collides with nor touches anyone else's.
    """

    def __init__(
        self,
        api_port: int,
        api_host: str = "127.0.0.1",
        prefix: str = "",
        namespace: int | None = None,
    ) -> None:
        """``namespace``: the pid of a Toxiproxy in a container, whose network namespace
        ``lose`` drops packets in."""
        toxiproxy.api.APIConsumer.host = api_host
        toxiproxy.api.APIConsumer.port = api_port
        self.api_port = api_port
        self.api_host = api_host
        self.prefix = prefix
        self.server = Toxiproxy()
        self.proxies: dict[str, Proxy] = {}
        self.namespace = namespace
        self.losses: dict[str, float] = {}  # link → the share of its packets dropped

    @property
    def url(self) -> str:
        return f"http://{self.api_host}:{self.api_port}"

    def create(self, link: LinkAddress) -> None:
        if self.prefix:  # not the run's own server: a killed harness leaves the proxy there
            owner.record_proxy(f"{self.url}/proxies/{self.prefix}{link.name}")
        try:
            self.proxies[link.name] = self.server.create(
                upstream=f"{link.upstream_host}:{link.upstream_port}",
                name=self.prefix + link.name,
                listen=link.listen,
            )
        except (requests.RequestException, toxiproxy.exceptions.ProxyExists) as exc:
            raise EnvironmentProblem(
                f"toxiproxy: cannot create the proxy {link.name}: {exc}"
            ) from None

    def add_toxic(
        self,
        link: str,
        name: str,
        kind: str,
        stream: str,
        toxicity: float,
        attributes: dict[str, Any],
    ) -> None:
        self.proxies[link].add_toxic(
            name=name, type=kind, stream=stream, toxicity=toxicity, attributes=attributes
        )

    def remove_toxic(self, link: str, name: str) -> None:
        with contextlib.suppress(NotFound):  # already gone: healing twice is allowed
            self.proxies[link].destroy_toxic(name)

    def set_enabled(self, link: str, enabled: bool) -> None:
        proxy = self.proxies[link]
        if enabled:
            proxy.enable()
        else:
            proxy.disable()

    def lose(self, link: str, share: float) -> None:
        """Drop this share of the packets between the link's callers and its proxy, both
        ways, in the Toxiproxy container's network namespace: the link's connections alone."""
        if self.namespace is None:
            raise EnvironmentProblem(
                "packets are dropped in Toxiproxy's container: run with --deployer docker"
            )
        self.losses[link] = share
        netfilter.apply_rules(self.namespace, "-I", self._lossy(link, share), f"lose {link}")

    def restore(self, link: str) -> None:
        """Undo ``lose``; a link that loses nothing is left as it is."""
        if self.namespace is not None and (share := self.losses.pop(link, None)) is not None:
            netfilter.apply_rules(self.namespace, "-D", self._lossy(link, share), link)

    def _lossy(self, link: str, share: float) -> list[netfilter.Rule]:
        port = self.proxies[link].listen.rpartition(":")[2]
        chance = netfilter.chance(share)
        return [
            ["INPUT", "-p", "tcp", "--dport", port, *chance, "-j", "DROP"],
            ["OUTPUT", "-p", "tcp", "--sport", port, *chance, "-j", "DROP"],
        ]

    def toxics(self, link: str) -> list[str]:
        return list(self.proxies[link].toxics())

    def reset(self) -> None:
        """Every proxy enabled, every toxic gone: the last step of teardown."""
        self.server.reset()

    def remove(self) -> None:
        """The run's proxies gone, with their toxics; the server's others untouched: the last
        step of teardown on a server the run does not own."""
        for proxy in self.proxies.values():
            with contextlib.suppress(NotFound):
                proxy.destroy()
