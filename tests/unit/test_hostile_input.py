"""Generated hostile input, each case bounded in time and memory: YAML bombs and depth, markup
in every text the console shows, secrets in every form a URL or a --set takes, and names that
try to leave the run folder."""

from __future__ import annotations

import string
import tracemalloc
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from harness import secrets
from harness.errors import SpecError
from harness.journal import Journal
from harness.loader import load_experiment
from harness.report.console import summary_text
from tests.conftest import ROOT

TOPOLOGY = ROOT / "targets" / "redis-streams.yaml"
BOUND_BYTES = 200 * 1024 * 1024
# Time is a benchmark (bench/hostile_input.py), not an assertion: memory is bounded here.
CASE = settings(max_examples=25, deadline=None)


def bounded(load: Any) -> SpecError | None:
    """The SpecError ``load`` raises (or None), having used less than 200 MB on the way."""
    tracemalloc.start()
    try:
        load()
    except SpecError as error:
        return error
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        assert peak < BOUND_BYTES, peak
    return None


def bomb(width: int, depth: int) -> str:
    """``depth`` levels of aliases, each a list of ``width`` uses of the level below."""
    lines = ["l0: &l0 [" + ", ".join(["x"] * width) + "]"]
    for level in range(1, depth + 1):
        lines.append(f"l{level}: &l{level} [" + ", ".join([f"*l{level - 1}"] * width) + "]")
    return "\n".join(lines) + "\n"


@CASE
@given(width=st.integers(2, 40), depth=st.integers(1, 12))
def test_any_alias_bomb_is_refused_or_small(
    tmp_path_factory: pytest.TempPathFactory, width: int, depth: int
) -> None:
    path = tmp_path_factory.mktemp("bomb") / "exp.yaml"
    path.write_text(f"name: bomb\ntarget: {TOPOLOGY}\n" + bomb(width, depth))
    error = bounded(lambda: load_experiment(path))
    assert error is not None and error.file == str(path)  # too big, or unknown fields l0...
    if width ** (depth + 1) > 100_000:
        assert "more than 100000 values" in error.message


@CASE
@given(depth=st.integers(1, 800), opener=st.sampled_from(["[", "{a: "]))
def test_any_nesting_is_refused_or_loaded_never_a_crash(
    tmp_path_factory: pytest.TempPathFactory, depth: int, opener: str
) -> None:
    closer = "]" if opener == "[" else "}"
    path = tmp_path_factory.mktemp("deep") / "exp.yaml"
    path.write_text(f"name: deep\ntarget: {TOPOLOGY}\nload: {opener * depth}1{closer * depth}\n")
    error = bounded(lambda: load_experiment(path))
    assert error is not None and error.file == str(path)


brackets = st.text(alphabet=string.ascii_letters + "[]/=#@ ", min_size=1, max_size=30)


@CASE
@given(name=brackets, expected=brackets, observed=brackets, reason=brackets)
def test_any_text_is_shown_as_written(name: str, expected: str, observed: str, reason: str) -> None:
    check = {"name": name, "verdict": "failed", "expected": expected, "observed": observed}
    journal = {"checks": [check], "ledger": None, "verdict": "failed", "reason": reason,
               "run_dir": "/tmp/runs/x", "seed": 1}  # fmt: skip
    text = " ".join(summary_text(Journal.from_json(journal)).split())  # the table wraps cells
    for written in (name, expected, observed, reason):
        assert all(word in text for word in written.split()), written


secret = st.text(alphabet=string.ascii_letters + string.digits + "-_.~", min_size=8, max_size=24)


@CASE
@given(
    password=secret,
    scheme=st.sampled_from(["postgresql", "redis", "http", "https"]),
    name=st.sampled_from(["DB_PASSWORD", "API_TOKEN", "CLIENT_SECRET", "AWS_ACCESS_KEY", "PGPASS"]),
    parameter=st.sampled_from(["password", "token", "sslpassword", "api_key"]),
)
def test_no_form_of_a_secret_survives_redaction(
    password: str, scheme: str, name: str, parameter: str
) -> None:
    forms = [
        secrets.url(f"{scheme}://user:{password}@host:1/db"),
        secrets.url(f"{scheme}://host/db?x=1&{parameter}={password}"),
        secrets.text(f"failed: connection to {scheme}://u:{password}@h/db refused"),
        secrets.text(f"invalid dsn: host=h user=u {parameter}={password}"),
        secrets.assignment(f"api.env.{name}={password}"),
    ]
    for form in forms:
        assert password not in form, form


component = st.text(
    alphabet=string.ascii_letters + string.digits + "-_./ ", min_size=1, max_size=20
)


@CASE
@given(name=component)
def test_a_component_name_is_a_name_or_refused_with_its_line(
    tmp_path_factory: pytest.TempPathFactory, name: str
) -> None:
    folder = tmp_path_factory.mktemp("names")
    text = TOPOLOGY.read_text().replace("{dir}", str(ROOT / "targets"))
    target = folder / "t.yaml"
    target.write_text(text.replace("\n  probe:\n", f"\n  {name!r}:\n", 1))
    experiment = folder / "exp.yaml"
    experiment.write_text(
        f"name: names\ntarget: {target}\nload: {{rate: 1/s, duration: 1s}}\n"
        "checks:\n  - {name: nothing lost, ledger: lost, expect: '== 0'}\n"
    )
    error = bounded(lambda: load_experiment(experiment))
    if any(c in name for c in "./ ") or not name[0].isalpha():
        assert error is not None and error.line is not None, name
    if error is None:
        loaded = load_experiment(experiment)
        assert all(Path(n).name == n and ".." not in n for n in loaded.topology.components)
