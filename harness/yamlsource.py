"""Reading YAML so that every value remembers the line it came from, and ``--set`` overrides.

Errors must name file, line and field; PyYAML forgets lines once it builds Python objects, so
the node tree is walked once to record the line of every path.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from harness.errors import SpecError

Loc = tuple[str | int, ...]


@dataclass
class Source:
    """One YAML document and the line of every path in it."""

    path: str
    data: dict[str, Any]
    lines: dict[Loc, int] = field(default_factory=dict)
    overridden: dict[Loc, str] = field(default_factory=dict)
    # Paths whose value came from another file (an experiment's ``overrides:``), and where.
    borrowed: dict[Loc, tuple[Source, Loc]] = field(default_factory=dict)

    def line(self, loc: Loc) -> int | None:
        """The line of ``loc`` or of its nearest ancestor that appears in the file."""
        for end in range(len(loc), -1, -1):
            if loc[:end] in self.lines:
                return self.lines[loc[:end]]
        return None

    def error(self, loc: Loc, message: str) -> SpecError:
        """An error at ``loc``, blamed on the ``--set`` or the other file that wrote it."""
        for path, text in self.overridden.items():
            if loc[: len(path)] == path:
                return SpecError("--set", None, format_loc(loc), f"{message} (from --set {text})")
        for path, (other, other_loc) in self.borrowed.items():
            if loc[: len(path)] == path:
                return other.error(other_loc + loc[len(path) :], message)
        sets = [text for path, text in self.overridden.items() if path[: len(loc)] == loc]
        if sets:
            message += f" (with --set {', '.join(sets)})"
        return SpecError(self.path, self.line(loc), format_loc(loc), message)


def format_loc(loc: Loc) -> str:
    """``("timeline", 0, "link")`` → ``timeline[0].link``."""
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def load(path: Path, display: str | None = None) -> Source:
    name = display or str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SpecError(name, None, "", "no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SpecError(name, None, "", f"cannot read: {exc}") from None
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        problem = getattr(exc, "problem", None) or str(exc)
        raise SpecError(
            name, mark.line + 1 if mark else None, "", f"not valid YAML: {problem}"
        ) from None
    if not isinstance(data, dict):
        raise SpecError(name, 1, "", "expected a mapping of fields at the top of the file")
    lines: dict[Loc, int] = {}
    if node is not None:
        _record_lines(node, (), lines)
    return Source(name, data, lines)


def _record_lines(node: yaml.Node, loc: Loc, lines: dict[Loc, int]) -> None:
    lines[loc] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            child = (*loc, str(key.value))
            _record_lines(value, child, lines)
            lines[child] = key.start_mark.line + 1
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            _record_lines(item, (*loc, index), lines)


@dataclass(frozen=True)
class Override:
    """One ``--set path=value``, read as YAML (``1`` is a number) except that ``no`` stays text."""

    path: tuple[str, ...]
    value: Any
    text: str

    @classmethod
    def parse(cls, text: str) -> Override:
        key, sep, raw = text.partition("=")
        parts = tuple(p for p in key.strip().split("."))
        if not sep or not all(parts):
            raise SpecError("--set", None, text, "expected path=value, such as worker.replicas=1")
        try:
            value = yaml.safe_load(raw) if raw.strip() else ""
        except yaml.YAMLError:
            value = raw
        if isinstance(value, bool):
            # A shell user cannot easily quote for YAML; fields that want a boolean take the text.
            value = raw.strip()
        return cls(parts, value, text)


def apply_override(data: dict[str, Any], path: tuple[str, ...], value: Any, text: str) -> None:
    """Set ``path`` in nested mappings, creating mappings on the way; lists take indexes."""
    node: Any = data
    for depth, part in enumerate(path[:-1]):
        if isinstance(node, list):
            node = _list_item(node, part, text)
            continue
        if not isinstance(node, dict):
            where = ".".join(path[: depth + 1])
            raise SpecError("--set", None, text, f"{where} is not a mapping")
        node = node.setdefault(part, {})
    last = path[-1]
    if isinstance(node, list):
        node[_index(node, last, text)] = value
    elif isinstance(node, dict):
        node[last] = value
    else:
        raise SpecError("--set", None, text, f"{'.'.join(path[:-1])} is not a mapping")


def _index(items: list[Any], part: str, text: str) -> int:
    if not part.isdigit() or int(part) >= len(items):
        raise SpecError("--set", None, text, f"{part!r} is not an index of a list of {len(items)}")
    return int(part)


def _list_item(items: list[Any], part: str, text: str) -> Any:
    return items[_index(items, part, text)]


def leaves(data: Any, loc: Loc = ()) -> Iterator[Loc]:
    """The path of every value in nested mappings that is not itself a mapping."""
    if isinstance(data, dict) and data:
        for key, value in data.items():
            yield from leaves(value, (*loc, key))
    else:
        yield loc


def merged(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    """A deep merge: mappings merge key by key, anything else in ``extra`` replaces."""
    result = copy.deepcopy(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(result.get(key), dict):
            result[key] = merged(result[key], value)
        else:
            result[key] = copy.deepcopy(value)
    return result
