"""A matrix: one experiment over the product of targets and overrides.

An experiment's ``matrix:`` maps a ``--set`` path (or ``target``) to a list of values;
``--matrix KEY=V1,V2`` on the command line adds an axis or replaces the file's axis of that key,
and ``--target a,b`` is the axis ``target``. Each combination is one variant of the experiment:
the values as overrides after the ``--set``s, each run in its own folder. A value from the file
that the experiment refuses is blamed on its line of ``matrix:``.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.errors import SpecError
from harness.yamlsource import Override, Source, load, read_value

# Far above any useful matrix (each combination is a whole run), so a typo cannot queue days.
MAX_COMBINATIONS = 64


@dataclass(frozen=True)
class Axis:
    """One key and the values it takes, each as the override that sets it."""

    key: str
    values: tuple[Override, ...]


@dataclass(frozen=True)
class Combination:
    """One value of each axis; empty for an experiment without a matrix."""

    overrides: tuple[Override, ...] = ()

    @property
    def label(self) -> str:
        """``kafka`` for a matrix of targets alone, else ``worker.replicas=2, target=kafka``."""
        if self.by_target:
            return str(self.overrides[0].value)
        return ", ".join(o.text for o in self.overrides)

    @property
    def by_target(self) -> bool:
        """Whether it chooses the target alone (``--target a,b``)."""
        return [o.path for o in self.overrides] == [("target",)]

    def to_json(self) -> dict[str, Any]:
        return {".".join(o.path): o.value for o in self.overrides}


def file_axes(path: Path) -> list[Axis]:
    """The axes of an experiment file's ``matrix:``, each value blamed on its line."""
    source = load(path)
    matrix = source.data.get("matrix")
    if matrix is None:
        return []
    if not isinstance(matrix, dict):
        raise source.error(("matrix",), "expected a mapping of a path (or target) to its values")
    return [_file_axis(source, key, values) for key, values in matrix.items()]


def _file_axis(source: Source, key: Any, values: Any) -> Axis:
    loc = ("matrix", key)
    if not isinstance(key, str) or not all(key.split(".")):
        raise source.error(loc, "expected a path such as worker.replicas, or target")
    if not isinstance(values, list) or not values:
        raise source.error(loc, "expected a list of one or more values, such as [1, 2, 4]")
    overrides = []
    for i, value in enumerate(values):
        if isinstance(value, dict | list) or value is None:
            raise source.error((*loc, i), "expected a value such as 2, 50/s or kafka")
        blame = (source.path, source.line((*loc, i)), f"matrix.{key}[{i}]")
        overrides.append(Override(tuple(key.split(".")), value, f"{key}={value}", blame))
    return Axis(key, tuple(overrides))


def command_axes(given: Sequence[str], targets: Sequence[str]) -> list[Axis]:
    """The axes of ``--matrix KEY=V1,V2`` (repeatable) and of ``--target a,b``."""
    axes = [_command_axis(text) for text in given]
    if targets:
        axes.append(Axis("target", tuple(Override.parse(f"target={t}") for t in targets)))
    keys = [axis.key for axis in axes]
    if twice := next((key for key in keys if keys.count(key) > 1), None):
        where = "--target and --matrix target=" if twice == "target" else f"--matrix {twice}="
        raise SpecError("--matrix", None, twice, f"given twice ({where}): give its values once")
    return axes


def _command_axis(text: str) -> Axis:
    key, sep, raw = text.partition("=")
    key = key.strip()
    values = [v.strip() for v in raw.split(",")]
    if not sep or not key or not all(key.split(".")) or not all(values):
        raise SpecError(
            "--matrix", None, text, "expected KEY=V1,V2,..., such as worker.replicas=1,2,4"
        )
    blame = ("--matrix", None, text)
    return Axis(key, tuple(Override(tuple(key.split(".")), read_value(v), f"{key}={v}", blame)
                           for v in values))  # fmt: skip


def combine(in_file: Sequence[Axis], given: Sequence[Axis]) -> list[Axis]:
    """The file's axes, each replaced by the command line's of the same key, then the
    command line's new ones."""
    by_key = {axis.key: axis for axis in given}
    axes = [by_key.pop(axis.key, axis) for axis in in_file]
    return [*axes, *by_key.values()]


def combinations(axes: Sequence[Axis], where: str) -> list[Combination]:
    """Every combination of one value per axis, the first axis varying slowest."""
    total = 1
    for axis in axes:
        total *= len(axis.values)
    if total > MAX_COMBINATIONS:
        sizes = " x ".join(f"{len(a.values)} {a.key}" for a in axes)
        message = f"{total} combinations ({sizes}); at most {MAX_COMBINATIONS} run in one go"
        raise SpecError(where, None, "matrix", message)
    return [Combination(tuple(chosen)) for chosen in itertools.product(*(a.values for a in axes))]
