"""JUnit XML that CI systems read: one test case per check."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

from harness.journal import CheckResult, Journal
from harness.repeat import summarize
from harness.report import junit


def check(name: str, verdict: str, expected: str = "< 50", observed: str = "12") -> dict[str, str]:
    return {
        "name": name,
        "kind": "threshold",
        "verdict": verdict,
        "expected": expected,
        "observed": observed,
    }


def as_cases(checks: list[dict[str, str]]) -> list[junit.Case]:
    return [junit.Case.of(CheckResult.from_json(c)) for c in checks]


def journals(*runs: dict[str, object]) -> list[Journal]:
    return [Journal.from_json({"verdict": "held", **r}) for r in runs]


CHECKS = [
    check("backlog near empty", "held"),
    check("backlog builds", "failed", "> 500 at fault.end", "12"),
    check("drains", "inconclusive", "< 50", "no data at fault.end"),
    check("nothing lost", "aborted", "lost == 0", "run aborted"),
]


def suite_of(path: Path) -> ET.Element:
    root = ET.parse(path).getroot()
    assert root.tag == "testsuites"
    [suite] = list(root)
    return suite


def test_one_testcase_per_check_with_counts(tmp_path: Path) -> None:
    path = tmp_path / "junit.xml"
    junit.write(path, [junit.Suite("slow-consumer", as_cases(CHECKS), 95.5)])
    suite = suite_of(path)
    assert suite.tag == "testsuite"
    assert suite.attrib == {
        "name": "slow-consumer",
        "tests": "4",
        "failures": "1",
        "errors": "2",
        "skipped": "0",
        "time": "95.500",
    }
    cases = suite.findall("testcase")
    assert [(c.get("classname"), c.get("name")) for c in cases] == [
        ("slow-consumer", "backlog near empty"),
        ("slow-consumer", "backlog builds"),
        ("slow-consumer", "drains"),
        ("slow-consumer", "nothing lost"),
    ]


def test_a_held_check_has_no_failure_or_error(tmp_path: Path) -> None:
    junit.write(tmp_path / "j.xml", [junit.Suite("e", as_cases([check("ok", "held")]), 1)])
    [case] = suite_of(tmp_path / "j.xml").findall("testcase")
    assert case.find("failure") is None and case.find("error") is None
    assert case.findtext("system-out") == "expected < 50; observed 12"


def test_a_failed_check_is_a_failure(tmp_path: Path) -> None:
    junit.write(tmp_path / "j.xml", [junit.Suite("e", as_cases(CHECKS), 1)])
    case = suite_of(tmp_path / "j.xml").findall("testcase")[1]
    failure = case.find("failure")
    assert failure is not None
    message = "expected > 500 at fault.end; observed 12"
    assert (failure.get("type"), failure.get("message"), failure.text) == (
        "failed",
        message,
        message,
    )
    assert case.find("error") is None


def test_inconclusive_and_aborted_checks_are_errors(tmp_path: Path) -> None:
    junit.write(tmp_path / "j.xml", [junit.Suite("e", as_cases(CHECKS), 1)])
    cases = suite_of(tmp_path / "j.xml").findall("testcase")[2:]
    errors = [case.find("error") for case in cases]
    assert [(e.get("type"), e.get("message")) for e in errors if e is not None] == [
        ("inconclusive", "expected < 50; observed no data at fault.end"),
        ("aborted", "expected lost == 0; observed run aborted"),
    ]
    assert all(case.find("failure") is None for case in cases)


def test_a_run_error_is_one_more_errored_testcase(tmp_path: Path) -> None:
    path = tmp_path / "j.xml"
    junit.write(path, [junit.Suite("e", as_cases([check("ok", "held")]), 2, "redis-server exited")])
    suite = suite_of(path)
    assert (suite.get("tests"), suite.get("failures"), suite.get("errors")) == ("2", "0", "1")
    run = suite.findall("testcase")[-1]
    assert (run.get("classname"), run.get("name")) == ("e", "run")
    error = run.find("error")
    assert error is not None
    assert (error.get("type"), error.get("message"), error.text) == (
        "run",
        "redis-server exited",
        "redis-server exited",
    )


def test_no_checks_and_no_error_is_an_empty_suite(tmp_path: Path) -> None:
    junit.write(tmp_path / "j.xml", [junit.Suite("e", as_cases([]), 0)])
    suite = suite_of(tmp_path / "j.xml")
    assert (suite.get("tests"), suite.get("failures"), suite.get("errors")) == ("0", "0", "0")
    assert suite.findall("testcase") == []


def test_names_with_markup_characters_survive(tmp_path: Path) -> None:
    name = 'p95 < 30 s & "quoted"'
    junit.write(
        tmp_path / "j.xml", [junit.Suite("e", as_cases([check(name, "failed", "< 30", "<31>")]), 0)]
    )
    [case] = suite_of(tmp_path / "j.xml").findall("testcase")
    assert case.get("name") == name
    assert case.findtext("failure") == "expected < 30; observed <31>"


def test_the_file_declares_utf8(tmp_path: Path) -> None:
    junit.write(tmp_path / "j.xml", [junit.Suite("e", as_cases([check("ok", "held")]), 0)])
    assert (tmp_path / "j.xml").read_bytes().startswith(b"<?xml version='1.0' encoding='utf-8'?>")


def test_one_file_holds_a_suite_per_experiment(tmp_path: Path) -> None:
    path = tmp_path / "all" / "junit.xml"
    runs = [
        {"experiment": "a", "checks": [check("ok", "held")], "duration_s": 3, "reason": None},
        {"experiment": "b", "checks": CHECKS, "duration_s": 4, "reason": "drain limit passed"},
    ]
    junit.write(path, [junit.Suite.of(j) for j in journals(*runs)])
    suites = list(ET.parse(path).getroot())
    assert [(s.get("name"), s.get("tests"), s.get("errors")) for s in suites] == [
        ("a", "1", "0"),
        ("b", "5", "3"),
    ]


def test_a_check_not_applicable_is_skipped_with_its_reason(tmp_path: Path) -> None:
    why = "the target has no harness_oldest_message_age_seconds: RabbitMQ cannot tell"
    checks = [check("oldest", "not-applicable", observed=why), check("ok", "held")]
    junit.write(tmp_path / "j.xml", [junit.Suite("e", as_cases(checks), 1)])
    suite = suite_of(tmp_path / "j.xml")
    assert (suite.get("skipped"), suite.get("failures"), suite.get("errors")) == ("1", "0", "0")
    skipped = suite.findall("testcase")[0].find("skipped")
    assert skipped is not None and skipped.get("message") == why


def test_repeated_runs_are_named_by_their_place_in_the_repeat() -> None:
    assert junit.run_name("slow-consumer", 2, 3) == "slow-consumer (run 2 of 3)"
    assert junit.run_name("slow-consumer", 1, 1) == "slow-consumer"  # no --repeat: as before
    (journal,) = journals({"experiment": "e", "checks": [], "duration_s": 1, "reason": None})
    assert junit.Suite.of(journal, "e (run 1 of 2)").experiment == "e (run 1 of 2)"


def test_a_repeat_is_one_more_suite_with_each_checks_repeat_verdict(tmp_path: Path) -> None:
    def run(verdict: str, *checks: dict[str, str]) -> dict[str, object]:
        return {"experiment": "e", "target": "t", "verdict": verdict, "duration_s": 10.0,
                "checks": list(checks)}  # fmt: skip

    repeat = summarize(
        journals(
            run("held", check("up", "held", "== 1", "1"), check("lost", "held", "== 0", "0"),
                check("drains", "inconclusive", observed="no data")),
            run("failed", check("up", "failed", "== 1", "0"), check("lost", "held", "== 0", "0"),
                check("drains", "inconclusive", observed="no data")),
        )
    )  # fmt: skip
    junit.write(tmp_path / "j.xml", [junit.Suite.of_repeat(repeat)])
    suite = suite_of(tmp_path / "j.xml")
    assert suite.attrib == {
        "name": "e (2 runs)",
        "tests": "3",
        "failures": "1",
        "errors": "1",
        "skipped": "0",
        "time": "20.000",
    }
    up, lost, drains = suite.findall("testcase")
    assert (up.get("classname"), up.get("name")) == ("e (2 runs)", "up")
    flaky = up.find("failure")
    assert flaky is not None
    assert (flaky.get("type"), flaky.get("message"), flaky.text) == (
        "flaky",
        "held in 1 of 2 runs",
        "expected == 1; observed run 1: 1; run 2: 0",
    )
    assert lost.find("failure") is None and lost.find("error") is None
    assert lost.findtext("system-out") == "expected == 0; observed 0"  # the same in both runs
    error = drains.find("error")
    assert error is not None
    assert (error.get("type"), error.text) == ("inconclusive", "expected < 50; observed no data")


def test_a_check_that_failed_in_every_run_is_a_failure(tmp_path: Path) -> None:
    runs = [
        {"experiment": "e", "target": "t", "verdict": "failed", "duration_s": 1.0,
         "checks": [check("lost", "failed", "== 0", n)]}
        for n in ("3", "5")
    ]  # fmt: skip
    junit.write(tmp_path / "j.xml", [junit.Suite.of_repeat(summarize(journals(*runs)))])
    [case] = suite_of(tmp_path / "j.xml").findall("testcase")
    failure = case.find("failure")
    assert failure is not None
    assert (failure.get("type"), failure.get("message"), failure.text) == (
        "failed",
        "held in 0 of 2 runs",
        "expected == 0; observed run 1: 3; run 2: 5",
    )
