"""JUnit XML: one test case per check, so CI systems show checks beside their own tests."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any


def write(
    path: Path,
    experiment: str,
    checks: Sequence[Mapping[str, Any]],
    duration_s: float,
    error: str | None = None,
) -> None:
    failures = sum(1 for c in checks if c["verdict"] == "failed")
    errors = sum(1 for c in checks if c["verdict"] in ("inconclusive", "aborted")) + bool(error)
    suite = ET.Element(
        "testsuite",
        name=experiment,
        tests=str(len(checks) + bool(error)),
        failures=str(failures),
        errors=str(errors),
        time=f"{duration_s:.3f}",
    )
    for check in checks:
        case = ET.SubElement(suite, "testcase", classname=experiment, name=check["name"])
        message = f"expected {check['expected']}; observed {check['observed']}"
        if check["verdict"] == "failed":
            ET.SubElement(case, "failure", message=message, type="failed").text = message
        elif check["verdict"] != "held":
            ET.SubElement(case, "error", message=message, type=check["verdict"]).text = message
        else:
            ET.SubElement(case, "system-out").text = message
    if error:
        case = ET.SubElement(suite, "testcase", classname=experiment, name="run")
        ET.SubElement(case, "error", message=error, type="run").text = error
    suites = ET.Element("testsuites")
    suites.append(suite)
    ET.indent(suites)
    ET.ElementTree(suites).write(path, encoding="utf-8", xml_declaration=True)
