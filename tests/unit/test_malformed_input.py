"""Hundreds of malformed experiment files: each gets a SpecError with a location, never a crash."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harness.errors import SpecError
from harness.loader import load_experiment
from tests.conftest import ROOT

SHIPPED = sorted((ROOT / "experiments").glob("*.yaml"))
TOPOLOGY = ROOT / "targets" / "redis-streams.yaml"

junk = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=12)
    | st.sampled_from(["30s", "-5s", "200/s", "< 50", "fault.end+5s", "worker->broker", "kill"]),
    lambda inner: st.lists(inner, max_size=3)
    | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=6,
)  # fmt: skip


def paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix]
    if isinstance(node, dict):
        for key, value in node.items():
            found += paths(value, (*prefix, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            found += paths(value, (*prefix, index))
    return found


@st.composite
def mutated(draw: st.DrawFn) -> dict[str, Any]:
    """A shipped experiment with a few of its values replaced, removed or added to."""
    data = yaml.safe_load(draw(st.sampled_from(SHIPPED)).read_text())
    data["target"] = str(TOPOLOGY)
    for _ in range(draw(st.integers(1, 3))):
        path = draw(st.sampled_from(paths(data)[1:]))
        parent = data
        for part in path[:-1]:
            parent = parent[part]
        action = draw(st.sampled_from(["replace", "remove", "add"]))
        if action == "replace":
            parent[path[-1]] = draw(junk)
        elif action == "remove":
            del parent[path[-1]]
        elif isinstance(parent, dict):
            parent[draw(st.text(min_size=1, max_size=8))] = draw(junk)
        else:
            parent.append(draw(junk))
    return data


def assert_located(path: Path, loads: Any) -> None:
    try:
        loads()
    except SpecError as error:
        assert error.file in (str(path), str(TOPOLOGY)), error
        assert error.line is not None and error.line >= 1, error
        assert error.message, error
    # Anything else escaping (a KeyError, a TypeError) fails the test with its traceback.


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=mutated())
def test_a_mutated_experiment_loads_or_names_where_it_is_wrong(
    tmp_path_factory: pytest.TempPathFactory, data: dict[str, Any]
) -> None:
    path = tmp_path_factory.mktemp("fuzz") / "exp.yaml"
    path.write_text(yaml.safe_dump(copy.deepcopy(data), sort_keys=False))
    assert_located(path, lambda: load_experiment(path, stand_in=True))


@settings(max_examples=200, deadline=None)
@given(
    source=st.sampled_from(SHIPPED),
    cut=st.integers(0, 4000),
    insert=st.sampled_from(["", ":", "- ", "{", "]", "\t", "'", "&a ", "*b", "\n  x", "%"]),
)
def test_damaged_yaml_text_is_located(
    tmp_path_factory: pytest.TempPathFactory, source: Path, cut: int, insert: str
) -> None:
    text = source.read_text().replace("target: redis-streams", f"target: {TOPOLOGY}")
    cut %= len(text)
    path = tmp_path_factory.mktemp("damaged") / "exp.yaml"
    path.write_text(text[:cut] + insert + text[cut + 1 :])
    assert_located(path, lambda: load_experiment(path, stand_in=True))
