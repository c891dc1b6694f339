"""The experiment catalogue's pairs, as the README's table gives them: each experiment as shipped
(it must hold) and each weakened variant (it must fail on the check that names the weakness).

One list for the tests (test_catalogue.py, test_run.py) and the noise benchmark
(bench/noise.py). ``shorter`` holds the overrides the tests add to save time: a shorter run of
the same faults, where the weakness shows as surely.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Variant:
    experiment: str
    switch: str | None  # the --set that removes the protection; None: as shipped
    failing: str | None  # the check that must fail; None: every check must hold
    shorter: tuple[str, ...] = ()

    @property
    def expected(self) -> str:
        return "held" if self.switch is None else "failed"

    @property
    def label(self) -> str:
        return self.experiment if self.switch is None else f"{self.experiment}:{self.switch}"

    def sets(self, shorter: bool) -> list[str]:
        chosen = [*([self.switch] if self.switch else []), *(self.shorter if shorter else ())]
        return [arg for each in chosen for arg in ("--set", each)]


# The shipped slow-consumer, shortened to about 45 s: the same checks, a shorter timeline.
SHORT_SLOW_LINK = ("load.duration=40s", "timeline.0.at=6s", "timeline.0.for=10s")
# Two kills 6 s apart, the second while the survivors still work off the first one's backlog.
TWO_QUICK_KILLS = (
    "load.duration=20s",
    "timeline.0.at=4s",
    "timeline.0.for=4s",
    "timeline.0.every=6s",
)
# A shorter outage of the notifier. (One hang of the paused worker instead of two left the
# oldest message at 12.5 s against the 12 s bound: too thin, so paused-consumer is not shortened.)
SHORT_OUTAGE = ("load.duration=18s", "timeline.0.at=5s", "timeline.0.for=10s")

SHIPPED = [
    Variant("slow-consumer", None, None, SHORT_SLOW_LINK),
    *(
        Variant(name, None, None)
        for name in (
            "crashed-workers",
            "paused-consumer",
            "broker-partition",
            "broker-restart",
            "poison-messages",
            "backpressure",
            "failure-isolation",
        )
    ),
]

WEAKENED = [
    Variant("slow-consumer", "worker.env.PROCESS_MS=40", "backlog drains within 20 s of heal",
            (*SHORT_SLOW_LINK, "drain=8s")),
    Variant("crashed-workers", "worker.env.ACK_MODE=before", "nothing acknowledged is lost",
            TWO_QUICK_KILLS),
    Variant("crashed-workers", "sink.env.IDEMPOTENT=0", "no effect is applied twice",
            TWO_QUICK_KILLS),
    Variant("crashed-workers", "worker.env.CLAIM_IDLE_MS=0",
            "the dead workers' pending messages are claimed by the survivors", TWO_QUICK_KILLS),
    Variant("paused-consumer", "worker.env.CLAIM_IDLE_MS=0",
            "no message waits more than 12 s while the worker hangs"),
    Variant("broker-partition", "worker.env.ACK_MODE=before", "nothing acknowledged is lost"),
    Variant("broker-restart", "broker.vars.appendonly=no", "nothing acknowledged is lost"),
    Variant("poison-messages", "worker.env.DLQ=0",
            "every poison job ends in the dead-letter stream"),
    Variant("backpressure", "api.env.MAX_BACKLOG=0",
            "the backlog stays bounded (under 1500, its bound of 1000 and half again)"),
    Variant("failure-isolation", "api.env.NOTIFY_MODE=sync",
            "the API's error rate stays under 1 % while the notifier is down", SHORT_OUTAGE),
]  # fmt: skip

PAIRS = [*SHIPPED, *WEAKENED]
