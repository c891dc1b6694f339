"""The experiment catalogue's pairs, as the README's table gives them: each experiment as shipped
(it must hold) and each weakened variant (it must fail on the check that names the weakness).

One list for the tests (test_catalogue.py, test_run.py) and the noise benchmark
(bench/noise.py). ``shorter`` holds the overrides the tests add to save time: a shorter run of
the same faults, where the weakness shows as surely.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace


@dataclass(frozen=True)
class Variant:
    experiment: str
    switch: str | None  # the --set that removes the protection; None: as shipped
    failing: str | None  # the check that must fail; None: every check must hold
    shorter: tuple[str, ...] = ()
    also: tuple[str, ...] = ()  # other checks the same weakness must fail

    @property
    def must_fail(self) -> tuple[str, ...]:
        return (*([self.failing] if self.failing else []), *self.also)

    @property
    def expected(self) -> str:
        return "held" if self.switch is None else "failed"

    @property
    def label(self) -> str:
        return self.experiment if self.switch is None else f"{self.experiment}:{self.switch}"

    def sets(self, shorter: bool) -> list[str]:
        return as_sets(
            [*([self.switch] if self.switch else []), *(self.shorter if shorter else ())]
        )


def as_sets(overrides: Iterable[str]) -> list[str]:
    """Overrides as the command line takes them: ``--set`` before each."""
    return [arg for each in overrides for arg in ("--set", each)]


# The shipped slow-consumer, shortened to about 45 s: the same checks, a shorter timeline. The
# link is slow for 12 s: with 10 s, RabbitMQ's backlog reached 653 to 669 against "> 500", at
# the edge of the margin aimed at (a share of 0.75); the latency check still gets 4 s of load.
SHORT_SLOW_LINK = ("load.duration=42s", "timeline.0.at=6s", "timeline.0.for=12s")
# Two kills 6 s apart, the second while the survivors still work off the first one's backlog.
TWO_QUICK_KILLS = (
    "load.duration=20s",
    "timeline.0.at=4s",
    "timeline.0.for=4s",
    "timeline.0.every=6s",
)
# Poison jobs take their 4 attempts (0.2 to 2 s of backoff) within seconds: 20 s of load give
# about 80 of them, and every check is a count or a share of those.
SHORT_POISON = ("load.duration=20s",)
# The restart's last check looks at crash.end+10s (27 s): the load need not run on to 45 s.
SHORT_RESTART = ("load.duration=32s",)
# A fixed rate, the one the shipped experiment comes to on a 2-core machine (70 % of 200/s):
# the shipped test measures its system's capacity first, and this variant, another system by
# one setting, would measure it again for two minutes to find the same.
STALLED_AT = ("load.rate=140/s",)
# A shorter outage of the notifier. (One hang of the paused worker instead of two left the
# oldest message at 12.5 s against the 12 s bound: too thin, so paused-consumer is not shortened.)
SHORT_OUTAGE = ("load.duration=18s", "timeline.0.at=5s", "timeline.0.for=10s")

# The broker's own faults are over at 18 s (write-pause) and 20 s (out-of-memory); what follows
# is the drain, not more load.
SHORT_WRITE_PAUSE = ("load.duration=22s",)
SHORT_NO_MEMORY = ("load.duration=24s",)
# squeezed-workers is not shortened: with 14 s of squeeze instead of 20 the backlog without
# back-pressure peaked at 2,089 and 2,094 against the bound of 1,500 (1.39 of it, the aim being
# at least 1.33), where the full 20 s give 2,839 to 2,912 (1.92).

SHIPPED = [
    Variant("slow-consumer", None, None, SHORT_SLOW_LINK),
    Variant("crashed-workers", None, None, TWO_QUICK_KILLS),
    *(
        Variant(name, None, None)
        for name in (
            "paused-consumer",
            "broker-partition",
            "backpressure",
            "ordered-keys",
            "stalled-worker",
        )
    ),
    Variant("broker-restart", None, None, SHORT_RESTART),
    Variant("poison-messages", None, None, SHORT_POISON),
    # The outbox is caught up about a second after the notifier's return: a shorter outage
    # proves the same.
    Variant("failure-isolation", None, None, SHORT_OUTAGE),
    Variant("broker-out-of-memory", None, None, SHORT_NO_MEMORY),
    Variant("broker-write-pause", None, None, SHORT_WRITE_PAUSE),
    Variant("containers/squeezed-workers", None, None),
    Variant("containers/lossy-network", None, None),
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
    Variant("broker-restart", "broker.vars.appendonly=no", "nothing acknowledged is lost",
            SHORT_RESTART),
    Variant("poison-messages", "worker.env.DLQ=0",
            "every poison job ends in the dead-letter stream", SHORT_POISON),
    # Retried forever (DLQ=0), the poison jobs never drain, so the ledger cannot count their
    # attempts; a budget of 8 ends within the drain, twice what the experiment promises.
    Variant("poison-messages", "worker.env.MAX_ATTEMPTS=8",
            "no job is delivered more than its 4 attempts", SHORT_POISON,
            also=("99 % of jobs take at most their 4 attempts",)),
    Variant("stalled-worker", "worker.env.CLAIM_IDLE_MS=1000",
            "no job is processed by two workers at once", STALLED_AT),
    Variant("ordered-keys", "api.env.KEYED=0", "every key's jobs are processed in send order"),
    Variant("backpressure", "api.env.MAX_BACKLOG=0",
            "the backlog stays bounded (under 1500, its bound of 1000 and half again)"),
    Variant("failure-isolation", "api.env.NOTIFY_MODE=sync",
            "the API's error rate stays under 1 % while the notifier is down", SHORT_OUTAGE),
    # Evicting to make room loses the jobs waiting for the hung workers, and accepts every
    # write, so the API never refuses one.
    Variant("broker-out-of-memory", "broker.vars.maxmemory_policy=allkeys-lru",
            "nothing acknowledged is lost", SHORT_NO_MEMORY,
            also=("the API refuses work while the broker has no memory",)),
    Variant("broker-write-pause", "sink.env.IDEMPOTENT=0", "no effect is applied twice",
            SHORT_WRITE_PAUSE),
    Variant("containers/squeezed-workers", "api.env.MAX_BACKLOG=0",
            "the backlog stays bounded (under 1500, its bound of 1000 and half again)"),
    Variant("containers/lossy-network", "worker.env.ACK_MODE=before",
            "nothing acknowledged is lost"),
]  # fmt: skip

PAIRS = [*SHIPPED, *WEAKENED]

# The README's switches are redis-streams'; the other targets switch some weaknesses off another
# way (the switches in their files), and lack two: a killed consumer's messages go back to the
# queue by the broker's own doing (nothing to claim), and their brokers persist whatever they
# acknowledge (no appendonly). On RabbitMQ a hung worker's wait cannot be observed (the broker
# cannot tell the age of its oldest message), so paused-consumer's weakness is not run there.
# Their workers keep a batch the sink refused and post it again, where a redis-streams worker
# leaves it pending to be claimed: acknowledging before processing loses messages there only
# when a worker dies (crashed-workers' pair), not in broker-partition, which kills none.
ELSEWHERE: dict[str, dict[str, str | None]] = {
    "worker.env.CLAIM_IDLE_MS=0 paused-consumer": {
        "rabbitmq": None,
        "nats": "worker.env.ACK_WAIT_MS=60000",
        "kafka": "worker.env.SESSION_TIMEOUT_MS=60000",
    },
    "worker.env.CLAIM_IDLE_MS=0 crashed-workers": {"rabbitmq": None, "nats": None, "kafka": None},
    "broker.vars.appendonly=no broker-restart": {"rabbitmq": None, "nats": None, "kafka": None},
    "worker.env.ACK_MODE=before broker-partition": {"rabbitmq": None, "nats": None, "kafka": None},
    "worker.env.CLAIM_IDLE_MS=1000 stalled-worker": {
        "rabbitmq": None,
        "nats": "worker.env.ACK_WAIT_MS=1000",
        "kafka": None,
    },
}


# What only one target promises: Kafka keeps a key's jobs in order; the other reference targets
# share one queue among their workers, and do not. The broker's own faults (write_pause,
# out_of_memory) are the Redis target's, and so is the worker's sink timeout that lossy-network
# shortens; squeezed-workers' back-pressure bound is the Redis API's.
ONLY_ON = {
    "ordered-keys": "kafka",
    "broker-out-of-memory": "redis-streams",
    "broker-write-pause": "redis-streams",
    "containers/squeezed-workers": "redis-streams",
    "containers/lossy-network": "redis-streams",
}


def pairs_on(target: str) -> list[Variant]:
    """The catalogue's pairs with ``target``'s own switches."""
    pairs = []
    for variant in PAIRS:
        if ONLY_ON.get(variant.experiment, target) != target:
            continue
        switches = ELSEWHERE.get(f"{variant.switch} {variant.experiment}", {})
        switch = switches.get(target, variant.switch)
        if switch is not None or variant.switch is None:
            pairs.append(replace(variant, switch=switch))
    return pairs
