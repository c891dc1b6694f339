"""The small value types an experiment is written in: durations, rates, expectations, moments.

Each parses from the short text a person writes in YAML (``30s``, ``200/s``, ``"< 50"``,
``fault.end+5s``) and is validated when the file loads, so a typo fails before anything starts.
"""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import BeforeValidator, PlainSerializer, WithJsonSchema

# Far past any real experiment, and short of what overflows or never ends: a week of any span,
# a million messages a second (one machine's Locust offers a few thousand).
MAX_DURATION_S = 7 * 24 * 3600.0
MAX_RATE = 1_000_000.0

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$")
_RATE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(?:/\s*(s|m))?\s*$")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}


def parse_duration(value: Any) -> float:
    """Seconds from ``500ms``, ``30s``, ``2m``, ``1h`` or a bare number of seconds."""
    if isinstance(value, bool):
        raise ValueError(f"expected a duration such as 30s, got {value!r}")
    if isinstance(value, int | float):
        seconds = float(value)
    else:
        match = _DURATION.match(str(value))
        if not match:
            raise ValueError(f"expected a duration such as 500ms, 30s or 2m, got {value!r}")
        seconds = float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
    if seconds < 0 or not math.isfinite(seconds):
        raise ValueError(f"a duration cannot be negative or infinite, got {value!r}")
    if seconds > MAX_DURATION_S:
        raise ValueError(f"a duration is at most a week (168h), got {value!r}")
    return seconds


def parse_rate(value: Any) -> float:
    """Messages per second from ``200/s``, ``600/m`` or a bare number."""
    if isinstance(value, bool):
        raise ValueError(f"expected a rate such as 200/s, got {value!r}")
    if isinstance(value, int | float):
        rate = float(value)
    else:
        match = _RATE.match(str(value))
        if not match:
            raise ValueError(f"expected a rate such as 200/s or 600/m, got {value!r}")
        rate = float(match.group(1)) / (60.0 if match.group(2) == "m" else 1.0)
    if rate <= 0 or not math.isfinite(rate):
        raise ValueError(f"a rate must be above zero and finite, got {value!r}")
    if rate > MAX_RATE:
        raise ValueError(f"a rate is at most {MAX_RATE:,.0f}/s, got {value!r}")
    return rate


def format_duration(seconds: float) -> str:
    if seconds >= 1 and float(seconds).is_integer():
        return f"{int(seconds)}s"
    return f"{seconds * 1000:g}ms" if seconds < 1 else f"{seconds:g}s"


def _written_as(description: str, *examples: Any, number: bool = False) -> WithJsonSchema:
    """The JSON Schema of what a user writes in the file, not of the parsed value."""
    text: dict[str, Any] = {"type": "string"}
    schema = {"anyOf": [text, {"type": "number"}]} if number else text
    return WithJsonSchema({**schema, "description": description, "examples": list(examples)})


Duration = Annotated[
    float,
    BeforeValidator(parse_duration),
    PlainSerializer(format_duration, return_type=str),
    _written_as("a duration: 500ms, 30s, 2m, 1h, or seconds", "30s", number=True),
]
Rate = Annotated[
    float,
    BeforeValidator(parse_rate),
    _written_as("messages per second (200/s) or per minute (600/m)", "200/s", number=True),
]


_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([KMG]i?B?|B)?\s*$", re.IGNORECASE)
_SIZE_SCALE = {"": 1, "b": 1, "k": 2**10, "m": 2**20, "g": 2**30}
# A memory limit below what any program starts in is a mistake; above a terabyte, a typo.
MIN_SIZE, MAX_SIZE = 4 * 2**20, 2**40


def parse_size(value: Any) -> int:
    """Bytes from ``256MiB``, ``256m``, ``1GiB``, ``1g`` or a bare number of bytes (powers of
    1024, as the engine's ``--memory`` counts them)."""
    if isinstance(value, bool):
        raise ValueError(f"expected a size such as 256MiB, got {value!r}")
    if isinstance(value, int | float):
        size = float(value)
    else:
        match = _SIZE.match(str(value))
        if not match:
            raise ValueError(f"expected a size such as 64MiB, 256m or 1GiB, got {value!r}")
        unit = (match.group(2) or "").lower()[:1]
        size = float(match.group(1)) * _SIZE_SCALE[unit]
    if not MIN_SIZE <= size <= MAX_SIZE:
        raise ValueError(f"a size is between 4MiB and 1TiB, got {value!r}")
    return int(size)


Size = Annotated[
    int,
    BeforeValidator(parse_size),
    _written_as("bytes, or with a unit: 64MiB, 256m, 1GiB", "256MiB", number=True),
]


def parse_load_rate(value: Any) -> float:
    """A load's rate, which may also be a share of capacity (the loader makes it a number)."""
    if isinstance(value, str) and not _RATE.match(value):
        raise ValueError(
            f"expected a rate such as 200/s or 600/m, or a share of capacity such as "
            f"40% capacity; got {value!r}"
        )
    return parse_rate(value)


LoadRate = Annotated[
    float,
    BeforeValidator(parse_load_rate),
    _written_as(
        "messages per second (200/s), per minute (600/m), or a share of the target's capacity "
        "measured on this machine (40% capacity: see `harness capacity`)",
        "200/s",
        "40% capacity",
        number=True,
    ),
]

_OPERATORS: dict[str, Callable[[float, float], bool]] = {
    "<=": operator.le,
    ">=": operator.ge,
    "==": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    ">": operator.gt,
}
_EXPECTATION = re.compile(r"^\s*(<=|>=|==|!=|<|>)\s*(-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?)\s*$")


@dataclass(frozen=True)
class Expectation:
    """A comparison every observed value must satisfy, such as ``< 50``."""

    op: str
    bound: float

    @classmethod
    def parse(cls, value: Any) -> Expectation:
        if isinstance(value, Expectation):
            return value
        match = _EXPECTATION.match(str(value))
        if not match:
            raise ValueError(
                f"expected a comparison such as '< 50' or '== 0' "
                f"(operators: {', '.join(_OPERATORS)}), got {value!r}"
            )
        bound = float(match.group(2))
        if not math.isfinite(bound):
            raise ValueError(f"the number to compare with must be finite, got {value!r}")
        return cls(match.group(1), bound)

    def holds(self, observed: float) -> bool:
        return _OPERATORS[self.op](observed, self.bound)

    def __str__(self) -> str:
        return f"{self.op} {self.bound:g}"


ExpectationField = Annotated[
    Expectation,
    BeforeValidator(Expectation.parse),
    PlainSerializer(str, return_type=str),
    _written_as("a comparison with a number: <, <=, >, >=, == or !=", "< 50"),
]

_CONDITION = re.compile(
    r"^(?P<expr>.+?)\s*(?P<op><=|>=|==|!=|<|>)\s*(?P<num>-?[\d.]+(?:[eE][-+]?\d+)?)\s*$"
)


@dataclass(frozen=True)
class Condition:
    """``<PromQL expression> <op> <number>``: the harness queries the left side and compares."""

    expr: str
    expectation: Expectation

    @classmethod
    def parse(cls, value: Any) -> Condition:
        if isinstance(value, Condition):
            return value
        match = _CONDITION.match(str(value).strip())
        if not match:
            raise ValueError(
                f"expected '<PromQL expression> <op> <number>', such as "
                f"'harness_queue_depth < 50', got {value!r}"
            )
        return cls(match["expr"].strip(), Expectation.parse(f"{match['op']} {match['num']}"))

    def __str__(self) -> str:
        return f"{self.expr} {self.expectation}"


ConditionField = Annotated[
    Condition,
    BeforeValidator(Condition.parse),
    PlainSerializer(str, return_type=str),
    _written_as("a PromQL expression, a comparison and a number", "sum(harness_queue_depth) < 50"),
]

_MOMENT = re.compile(
    r"^\s*(?:(?P<bare>start|end)|"
    # A phase of the load's shape is a span with a dot: load.peak.start.
    r"(?P<name>load\.(?!(?:start|end)\b)[A-Za-z_][\w-]*|[A-Za-z_][\w-]*)(?:\.(?P<edge>start|end))?)"
    r"\s*(?:(?P<sign>[+-])\s*(?P<offset>\d+(?:\.\d+)?\s*(?:ms|s|m|h)?))?\s*$"
)


@dataclass(frozen=True)
class Moment:
    """A point on the run's timeline: ``start``, ``end``, ``load.end``, ``fault.start+5s``.

    ``fault`` means the span from the first fault's start to the last fault's end; a fault
    with a ``name`` can be referred to by that name.
    """

    anchor: str
    offset_s: float = 0.0

    @classmethod
    def parse(cls, value: Any) -> Moment:
        if isinstance(value, Moment):
            return value
        match = _MOMENT.match(str(value))
        if not match:
            raise ValueError(
                f"expected a moment such as start, end, fault.start, fault.end+10s, got {value!r}"
            )
        name, edge = match["name"], match["edge"]
        if match["bare"]:
            anchor = match["bare"]
        elif name in ("start", "end") and edge is None:
            anchor = name
        elif edge is None:
            raise ValueError(f"{value!r}: say {name}.start or {name}.end")
        else:
            anchor = f"{name}.{edge}"
        offset = parse_duration(match["offset"]) if match["offset"] else 0.0
        return cls(anchor, -offset if match["sign"] == "-" else offset)

    @property
    def span(self) -> str | None:
        """The span this moment is an edge of (``fault`` for ``fault.end``), if any."""
        return self.anchor.rsplit(".", 1)[0] if "." in self.anchor else None

    def __str__(self) -> str:
        if not self.offset_s:
            return self.anchor
        sign = "+" if self.offset_s > 0 else "-"
        return f"{self.anchor}{sign}{format_duration(abs(self.offset_s))}"


MomentField = Annotated[
    Moment,
    BeforeValidator(Moment.parse),
    PlainSerializer(str, return_type=str),
    _written_as(
        "start, end, load.start, load.end, fault.start, fault.end or <fault name>.start/.end, "
        "with an optional offset",
        "fault.end+10s",
    ),
]
