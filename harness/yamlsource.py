"""Reading YAML so that every value remembers the line it came from, and ``--set`` overrides.

Errors must name file, line and field; PyYAML forgets lines once it builds Python objects, so
the node tree is walked once to record the line of every path.
"""

from __future__ import annotations

import copy
import stat
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
    overridden: dict[Loc, Override] = field(default_factory=dict)
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
        for path, override in self.overridden.items():
            if loc[: len(path)] == path:
                return override.error(format_loc(loc), message)
        for path, (other, other_loc) in self.borrowed.items():
            if loc[: len(path)] == path:
                return other.error(other_loc + loc[len(path) :], message)
        sets = [o.text for path, o in self.overridden.items() if path[: len(loc)] == loc]
        if sets:
            message += f" (with --set {', '.join(sets)})"
        return SpecError(self.path, self.line(loc), format_loc(loc), message)


def format_loc(loc: Loc) -> str:
    """``("timeline", 0, "link")`` → ``timeline[0].link``."""
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


# Bounds on what a file may hold, far above any real experiment or target (the largest shipped
# is 8 KB and 600 nodes), so that a hostile one is refused in milliseconds and little memory: an
# alias bomb of a few hundred bytes expands to billions of nodes.
MAX_BYTES = 1 << 20
MAX_NODES = 100_000  # aliases counted as often as they are used
MAX_DEPTH = 64


class _Loader(yaml.SafeLoader):
    """PyYAML's safe loader, refusing to compose past MAX_DEPTH: its composer recurses once
    per level, and 500 nested brackets would reach Python's own limit."""

    depth = 0

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node | None:
        self.depth += 1
        try:
            if self.depth > MAX_DEPTH:
                mark = self.peek_event().start_mark  # type: ignore[no-untyped-call]
                raise _TooDeep(mark.line + 1)
            return super().compose_node(parent, index)
        finally:
            self.depth -= 1


class _TooDeep(Exception):
    def __init__(self, line: int) -> None:
        self.line = line


def load(path: Path, display: str | None = None) -> Source:
    name = display or str(path)
    text = _read(path, name)
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        lines: dict[Loc, int] = {}
        if node is not None:
            _Walk(name, lines).node(node, ())
        # Built from the node tree that was walked: an alias is one shared object, not a copy.
        data = loader.construct_document(node) if node is not None else None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        problem = getattr(exc, "problem", None) or str(exc)
        raise SpecError(
            name, mark.line + 1 if mark else None, "", f"not valid YAML: {problem}"
        ) from None
    except _TooDeep as exc:
        raise SpecError(name, exc.line, "", f"nested deeper than {MAX_DEPTH} levels") from None
    finally:
        loader.dispose()
    if not isinstance(data, dict):
        raise SpecError(name, 1, "", "expected a mapping of fields at the top of the file")
    return Source(name, data, lines)


def _read(path: Path, name: str) -> str:
    """The file's text: a regular file of at most MAX_BYTES (a FIFO would block, a device
    never end)."""
    try:
        info = path.stat()
    except FileNotFoundError:
        raise SpecError(name, None, "", "no such file") from None
    except OSError as exc:
        raise SpecError(name, None, "", f"cannot read: {exc.strerror or exc}") from None
    if not stat.S_ISREG(info.st_mode):
        what = "a folder" if stat.S_ISDIR(info.st_mode) else "not a regular file"
        raise SpecError(name, None, "", f"cannot read: {what}")
    if info.st_size > MAX_BYTES:
        raise SpecError(
            name, None, "", f"{info.st_size} bytes: a file here is at most {MAX_BYTES} bytes"
        )
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise SpecError(name, None, "", f"cannot read: {exc}") from None


@dataclass
class _Walk:
    """Records the line of every path, once over the node tree with aliases expanded, within
    MAX_NODES and MAX_DEPTH; a key given twice in one mapping is an error naming both lines."""

    name: str
    lines: dict[Loc, int]
    seen: int = 0

    def node(self, node: yaml.Node, loc: Loc) -> None:
        self.seen += 1
        line = node.start_mark.line + 1
        if self.seen > MAX_NODES:
            raise SpecError(
                self.name, line, format_loc(loc),
                f"more than {MAX_NODES} values (aliases count each time they are used)",
            )  # fmt: skip
        if len(loc) > MAX_DEPTH:
            raise SpecError(self.name, line, format_loc(loc), f"nested deeper than {MAX_DEPTH}")
        self.lines.setdefault(loc, line)
        if isinstance(node, yaml.MappingNode):
            first: dict[str, int] = {}
            for key, value in node.value:
                child = (*loc, str(key.value))
                key_line = key.start_mark.line + 1
                if str(key.value) in first and key.tag != "tag:yaml.org,2002:merge":
                    raise SpecError(
                        self.name, key_line, format_loc(child),
                        f"given twice: also on line {first[str(key.value)]}",
                    )  # fmt: skip
                first[str(key.value)] = key_line
                self.node(value, child)
                self.lines[child] = key_line
        elif isinstance(node, yaml.SequenceNode):
            for index, item in enumerate(node.value):
                self.node(item, (*loc, index))


@dataclass(frozen=True)
class Override:
    """One ``--set path=value``, read as YAML (``1`` is a number) except that ``no`` stays text.

    ``blame`` is where an override that the user did not type as ``--set`` came from (file,
    line, field: a value of an experiment's ``matrix``), so that its errors point there."""

    path: tuple[str, ...]
    value: Any
    text: str
    blame: tuple[str, int | None, str] | None = None

    @classmethod
    def parse(cls, text: str) -> Override:
        key, sep, raw = text.partition("=")
        parts = tuple(p for p in key.strip().split("."))
        if not sep or not all(parts):
            raise SpecError("--set", None, text, "expected path=value, such as worker.replicas=1")
        return cls(parts, read_value(raw), text)

    def refused(self, message: str) -> SpecError:
        """The override itself cannot be applied."""
        if self.blame is None:
            return SpecError("--set", None, self.text, message)
        return SpecError(*self.blame, message)

    def error(self, field: str, message: str) -> SpecError:
        """The value the override wrote at ``field`` is wrong."""
        if self.blame is None:
            return SpecError("--set", None, field, f"{message} (from --set {self.text})")
        return SpecError(*self.blame, f"{message} (it sets {field})")


def read_value(raw: str) -> Any:
    """A value typed on the command line, read as YAML, except that booleans stay text: a
    shell user cannot easily quote for YAML, and fields that want a boolean take the text."""
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError:
        return raw
    return raw.strip() if isinstance(value, bool) else value


def apply_override(data: dict[str, Any], override: Override) -> Loc:
    """Set the override's path in nested mappings, creating mappings on the way; lists take
    indexes. Returns where it wrote, list indexes as numbers (as errors name them)."""
    path = override.path
    node: Any = data
    loc: list[str | int] = []
    for depth, part in enumerate(path[:-1]):
        if isinstance(node, list):
            index = _index(node, part, override)
            node, loc = node[index], [*loc, index]
            continue
        if not isinstance(node, dict):
            raise override.refused(f"{'.'.join(path[: depth + 1])} is not a mapping")
        node, loc = node.setdefault(part, {}), [*loc, part]
    last = path[-1]
    if isinstance(node, list):
        index = _index(node, last, override)
        node[index] = override.value
        return (*loc, index)
    if isinstance(node, dict):
        node[last] = override.value
        return (*loc, last)
    raise override.refused(f"{'.'.join(path[:-1])} is not a mapping")


def _index(items: list[Any], part: str, override: Override) -> int:
    if not part.isdigit() or int(part) >= len(items):
        raise override.refused(f"{part!r} is not an index of a list of {len(items)}")
    return int(part)


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
