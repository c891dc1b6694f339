"""The libraries a core install leaves out: the broker clients and database drivers that only
the reference targets, the broker probes, the loads that publish straight into a broker and
the ledger sources need. They come with the ``targets`` extra; this module names it when one
is missing, instead of a bare ModuleNotFoundError."""

from __future__ import annotations

import importlib
from types import ModuleType

from harness.errors import MissingComponent

DISTRIBUTION = "chaos-harness"
EXTRA = "targets"
INSTALL = f"pip install '{DISTRIBUTION}[{EXTRA}]'"


def require(module: str, purpose: str) -> ModuleType:
    """``module`` imported, or MissingComponent saying that ``purpose`` needs the extra."""
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as exc:
        raise missing(exc, purpose) from None


def missing(exc: ModuleNotFoundError, purpose: str) -> MissingComponent:
    """The error for ``purpose`` when ``exc`` says a library of the extra is not installed."""
    return MissingComponent(f"the Python package {exc.name} ({purpose})", INSTALL)
