"""The fault catalogue: every kind registers itself by name on import."""

from harness.faults import network
from harness.faults.base import FAULTS, Applied, Fault, FaultTools, Reach, Toxics

__all__ = ["FAULTS", "Applied", "Fault", "FaultTools", "Reach", "Toxics", "network"]
