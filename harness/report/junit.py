"""JUnit XML: one test case per check, so CI systems show checks beside their own tests.

One file holds one test suite per experiment run: a run's own ``junit.xml`` has one, and
``harness run FOLDER --junit PATH`` writes one file for the whole catalogue.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Suite:
    """One experiment run as JUnit sees it; ``error`` is why the run itself went wrong."""

    experiment: str
    checks: Sequence[Mapping[str, Any]]
    duration_s: float
    error: str | None = None

    @classmethod
    def of(cls, journal: Mapping[str, Any]) -> Suite:
        return cls(
            journal["experiment"], journal["checks"], journal["duration_s"], journal["reason"]
        )


def write(path: Path, suites: Sequence[Suite]) -> None:
    root = ET.Element("testsuites")
    root.extend(_suite(s) for s in suites)
    ET.indent(root)
    path.parent.mkdir(parents=True, exist_ok=True)
    ET.ElementTree(root).write(path, encoding="utf-8", xml_declaration=True)


def _suite(run: Suite) -> ET.Element:
    checks, name = run.checks, run.experiment
    failures = sum(1 for c in checks if c["verdict"] == "failed")
    errors = sum(1 for c in checks if c["verdict"] in ("inconclusive", "aborted")) + bool(run.error)
    suite = ET.Element(
        "testsuite",
        name=name,
        tests=str(len(checks) + bool(run.error)),
        failures=str(failures),
        errors=str(errors),
        skipped=str(sum(1 for c in checks if c["verdict"] == "not-applicable")),
        time=f"{run.duration_s:.3f}",
    )
    for check in checks:
        case = ET.SubElement(suite, "testcase", classname=name, name=check["name"])
        message = f"expected {check['expected']}; observed {check['observed']}"
        if check["verdict"] == "failed":
            ET.SubElement(case, "failure", message=message, type="failed").text = message
        elif check["verdict"] == "not-applicable":
            ET.SubElement(case, "skipped", message=check["observed"])
        elif check["verdict"] != "held":
            ET.SubElement(case, "error", message=message, type=check["verdict"]).text = message
        else:
            ET.SubElement(case, "system-out").text = message
    if run.error:
        case = ET.SubElement(suite, "testcase", classname=name, name="run")
        ET.SubElement(case, "error", message=run.error, type="run").text = run.error
    return suite
