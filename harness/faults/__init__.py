"""The fault catalogue: every kind registers itself by name on import."""

from harness.faults import network, process, resources
from harness.faults.base import (
    FAULTS,
    Applied,
    Fault,
    FaultTools,
    Network,
    Processes,
    Reach,
    Releasable,
    Target,
)

__all__ = [
    "FAULTS",
    "Applied",
    "Fault",
    "FaultTools",
    "Network",
    "Processes",
    "Reach",
    "Releasable",
    "Target",
    "network",
    "process",
    "resources",
]
