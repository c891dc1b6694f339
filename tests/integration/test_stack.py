"""What a run stands on, with a real Prometheus and a real Toxiproxy but a NullDeployment in
place of the target: the order in which the stack stands up and is torn down, on success and
when the target fails to start. What a real deployer does is tested with each deployer."""

from __future__ import annotations

from contextlib import ExitStack
from pathlib import Path

import httpx
import pytest

from harness import stack
from harness.context import RunContext
from harness.deploy.base import Instance, NullDeployment
from harness.errors import ComponentFailed
from harness.loader import load_experiment

pytestmark = [pytest.mark.integration]

ROOT = Path(__file__).resolve().parents[2]


def _context(tmp_path: Path) -> RunContext:
    experiment = load_experiment(ROOT / "experiments" / "slow-consumer.yaml")
    return RunContext.open(experiment, tmp_path, 0, say=lambda _: None)


def _services_run(ctx: RunContext) -> list[bool]:
    return [p.running_pid() is not None for s in ctx.services for p in s.processes.values()]


def test_the_target_starts_last_and_stops_first(tmp_path: Path) -> None:
    ctx = _context(tmp_path)
    seen_at_down: list[bool] = []

    class Watched(NullDeployment):
        def remove(self, instance: Instance) -> None:
            seen_at_down.extend(_services_run(ctx))
            super().remove(instance)

    with ExitStack() as teardown:
        standing = stack.deploy(ctx, teardown, deployer=Watched)
        deployment = standing.deployment
        assert isinstance(deployment, Watched)
        names = [i.name for layer in deployment.layers for i in layer if not i.external]
        assert deployment.calls == [("up", name) for name in names]  # layer by layer
        assert _services_run(ctx) == [True, True]  # Prometheus and Toxiproxy
        proxies = httpx.get(f"http://127.0.0.1:{standing.network.api_port}/proxies").json()
        assert sorted(proxies) == sorted(standing.where.links)
        assert httpx.get(f"{standing.prometheus.url}/-/ready").status_code == 200
    downs = iter(name for call, name in deployment.calls if call == "down")
    for layer in reversed(deployment.layers):  # last first; one layer's replicas in any order
        assert {next(downs) for _ in layer} == {i.name for i in layer}
    assert seen_at_down and all(seen_at_down)  # its proxies and Prometheus still ran
    assert _services_run(ctx) == [False, False]
    assert ctx.cleanup_errors == []


def test_a_target_that_fails_to_start_leaves_nothing_running(tmp_path: Path) -> None:
    ctx = _context(tmp_path)

    class Failing(NullDeployment):
        def await_ready(self, instance: Instance) -> None:
            if instance.component == "api":
                raise ComponentFailed(instance.name, "did not answer")

    made: list[NullDeployment] = []

    def deployer(layers: list[list[Instance]]) -> NullDeployment:
        made.append(Failing(layers))
        return made[0]

    with pytest.raises(ComponentFailed), ExitStack() as teardown:
        stack.deploy(ctx, teardown, deployer=deployer)
    (deployment,) = made
    ups = [name for call, name in deployment.calls if call == "up"]
    downs = [name for call, name in deployment.calls if call == "down"]
    assert "api" in ups and sorted(downs) == sorted(ups)  # every launched replica stopped
    assert _services_run(ctx) == [False, False]
