"""A dashboard's JSON checked against Grafana's schema, as grafana-foundation-sdk's models carry it.

Grafana itself accepts almost anything and drops what it does not know, so a misspelt field
(``"unti": "s"``) or a mistyped one (``"w": "12"``) imports silently and draws the wrong thing.
The SDK's models are generated from Grafana's schema, but their decoders ignore unknown keys
and never check types; so the JSON is walked here against the models' own type hints, with the
key of every field read from the model's own encoder. A panel's options, field config and
queries are checked against the models of its panel type and its data source's type. Beyond
the schema: every panel must name a data source, and every variable a query uses must be one
the dashboard defines.
"""

from __future__ import annotations

import enum
import re
import types
import typing
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from grafana_foundation_sdk.cog import plugins
from grafana_foundation_sdk.cog import runtime as cogruntime
from grafana_foundation_sdk.cog.variants import Dataquery
from grafana_foundation_sdk.models import dashboard as model

from harness.errors import SpecError
from harness.yamlsource import Loc, load

# Variables Grafana defines itself (``$__rate_interval``, ``$__all``, ``$__from``...).
_VARIABLE = re.compile(r"\$\{?(\w+)")


@dataclass(frozen=True)
class Problem:
    loc: Loc
    message: str


def check_file(path: Path) -> list[SpecError]:
    """Every problem of one dashboard file, each naming its line and field."""
    source = load(path)
    return [source.error(p.loc, p.message) for p in problems(source.data)]


def problems(document: dict[str, Any]) -> list[Problem]:
    """What is wrong with one dashboard: against the schema, then its data sources and variables."""
    plugins.register_default_plugins()
    found = list(_model(document, model.Dashboard, ()))
    if not found:
        found += _unknown_panel_types(document)
        found += _missing_datasources(document) + _undefined_variables(document)
    return found


@dataclass(frozen=True)
class _Field:
    attribute: str
    hint: Any
    required: bool


class _Marker:
    """Stands in for an attribute's value, to see under which key the encoder writes it."""


@cache
def _fields(cls: type) -> dict[str, _Field]:
    """JSON key → field of an SDK model: each attribute set to a marker, then encoded."""
    hints = typing.get_type_hints(cls)
    empty: Any = object.__new__(cls)
    for attribute in hints:
        setattr(empty, attribute, None)
    required = set(empty.to_json())
    marked: Any = object.__new__(cls)
    markers = {attribute: _Marker() for attribute in hints}
    for attribute, marker in markers.items():
        setattr(marked, attribute, marker)
    by_marker = {id(marker): attribute for attribute, marker in markers.items()}
    fields = {}
    for key, value in marked.to_json().items():
        attribute = by_marker[id(value)]
        fields[key] = _Field(attribute, hints[attribute], key in required)
    return fields


def _model(value: Any, cls: type, loc: Loc) -> Iterator[Problem]:
    if not isinstance(value, dict):
        yield Problem(loc, f"expected an object ({cls.__name__}), got {_kind(value)}")
        return
    fields = _fields(cls)
    for key, item in value.items():
        known = fields.get(key)
        if known is None:
            yield Problem((*loc, key), f"unknown field of {cls.__name__}")
        elif cls is model.Panel and key in ("options", "fieldConfig", "targets"):
            yield from _plugin_field(value, key, loc)
        else:
            yield from _value(item, known.hint, (*loc, key))
    for key, known in fields.items():
        if known.required and key not in value:
            yield Problem((*loc, key), f"missing: {cls.__name__} requires it")


def _plugin_field(panel: dict[str, Any], key: str, loc: Loc) -> Iterator[Problem]:
    """A panel's options and custom field config by its panel type's models, its queries by
    its data source's."""
    config = cogruntime.panelcfg_config(str(panel.get("type", "")))
    if key == "options":
        hook = config.options_from_json_hook if config else None
        if hook is not None:
            yield from _model(panel[key], _decoded_by(hook), (*loc, key))
        return
    if key == "fieldConfig":
        yield from _model(panel[key], model.FieldConfigSource, (*loc, key))
        custom = (
            panel[key].get("defaults", {}).get("custom") if isinstance(panel[key], dict) else None
        )
        hook = config.field_config_from_json_hook if config else None
        if custom is not None and hook is not None:
            yield from _model(custom, _decoded_by(hook), (*loc, key, "defaults", "custom"))
        return
    targets = panel["targets"]
    if not isinstance(targets, list):
        yield Problem((*loc, key), f"expected a list of queries, got {_kind(targets)}")
        return
    for index, target in enumerate(targets):
        cls = _query_model(panel, target)
        if cls is not None:
            yield from _model(target, cls, (*loc, key, index))


def _query_model(panel: dict[str, Any], target: Any) -> type | None:
    source = (target.get("datasource") if isinstance(target, dict) else None) or panel.get(
        "datasource"
    )
    kind = source.get("type", "") if isinstance(source, dict) else ""
    config = cogruntime.Runtime().dataquery_variants.get(kind)
    return _decoded_by(config.from_json_hook) if config else None


def _decoded_by(hook: Any) -> type:
    """The model whose ``from_json`` a plug-in registered (a bound classmethod)."""
    cls: type = hook.__self__
    return cls


def _value(value: Any, hint: Any, loc: Loc) -> Iterator[Problem]:
    origin = typing.get_origin(hint)
    if hint is Any or hint is object:
        return
    if origin in (typing.Union, types.UnionType):
        yield from _union(value, typing.get_args(hint), loc)
    elif origin is typing.Literal:
        if value not in typing.get_args(hint):
            yield Problem(loc, f"{value!r} is not one of {list(typing.get_args(hint))}")
    elif origin is list:
        if not isinstance(value, list):
            yield Problem(loc, f"expected a list, got {_kind(value)}")
            return
        for index, item in enumerate(value):
            yield from _value(item, typing.get_args(hint)[0], (*loc, index))
    elif origin is dict:
        if not isinstance(value, dict):
            yield Problem(loc, f"expected an object, got {_kind(value)}")
            return
        for key, item in value.items():
            yield from _value(item, typing.get_args(hint)[1], (*loc, key))
    elif isinstance(hint, type) and issubclass(hint, enum.Enum):
        if value not in {member.value for member in hint}:
            yield Problem(loc, f"{value!r} is not one of {[m.value for m in hint]}")
    elif hint is Dataquery:
        return  # a query outside a panel's targets: its data source's model is not known here
    elif isinstance(hint, type) and hasattr(hint, "to_json"):
        yield from _model(value, hint, loc)
    elif not _scalar(value, hint):
        yield Problem(loc, f"expected {_name(hint)}, got {_kind(value)}")


def _union(value: Any, options: tuple[Any, ...], loc: Loc) -> Iterator[Problem]:
    if value is None and type(None) in options:
        return
    choices = [option for option in options if option is not type(None)]
    tried = [list(_value(value, option, loc)) for option in choices]
    if any(not found for found in tried):
        return
    if len(choices) == 1 or isinstance(value, dict):
        # An object is blamed on the model it is nearest to (a panel with one misspelt field
        # is a Panel, not a RowPanel).
        yield from min(tried, key=len)
    else:
        yield Problem(loc, f"expected {' or '.join(_name(c) for c in choices)}, got {_kind(value)}")


def _scalar(value: Any, hint: Any) -> bool:
    if hint is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, hint) if isinstance(hint, type) else True


def _name(hint: Any) -> str:
    names = {str: "text", int: "an integer", float: "a number", bool: "true or false"}
    return names.get(hint, getattr(hint, "__name__", str(hint)))


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "true or false"
    kinds = {str: "text", int: "an integer", float: "a number", list: "a list", dict: "an object"}
    return kinds.get(type(value), "null" if value is None else type(value).__name__)


def _panels(document: dict[str, Any]) -> Iterator[tuple[Loc, dict[str, Any]]]:
    for index, panel in enumerate(document.get("panels") or []):
        yield ("panels", index), panel
        for inner, nested in enumerate(panel.get("panels") or []):  # a collapsed row's
            yield ("panels", index, "panels", inner), nested


def _unknown_panel_types(document: dict[str, Any]) -> list[Problem]:
    """A panel type Grafana does not ship draws "panel plugin not found" (a plug-in's own panel
    type is named here too: the check knows only Grafana's)."""
    known = {*cogruntime.Runtime().panelcfg_variants, "row"}
    return [
        Problem((*loc, "type"), f"{panel.get('type')!r} is not a panel type Grafana ships")
        for loc, panel in _panels(document)
        if panel.get("type") not in known
    ]


def _missing_datasources(document: dict[str, Any]) -> list[Problem]:
    """A panel with queries and no data source draws from Grafana's default, whatever that is."""
    return [
        Problem((*loc, "datasource"), "a panel with queries must name its data source")
        for loc, panel in _panels(document)
        if panel.get("targets")
        and not panel.get("datasource")
        and not all(isinstance(t, dict) and t.get("datasource") for t in panel["targets"])
    ]


def _undefined_variables(document: dict[str, Any]) -> list[Problem]:
    defined = {v.get("name") for v in document.get("templating", {}).get("list", [])}
    used: list[tuple[Loc, str]] = []
    for index, variable in enumerate(document.get("templating", {}).get("list", [])):
        used += _uses(variable.get("query"), ("templating", "list", index, "query"))
        used += _uses(variable.get("datasource"), ("templating", "list", index, "datasource"))
    for loc, panel in _panels(document):
        used += _uses(panel.get("datasource"), (*loc, "datasource"))
        used += _uses(panel.get("targets"), (*loc, "targets"))
    return [
        Problem(loc, f"uses ${name}, which the dashboard's templating does not define")
        for loc, name in used
        if not name.startswith("__") and name not in defined
    ]


def _uses(value: Any, loc: Loc) -> list[tuple[Loc, str]]:
    if isinstance(value, str):
        return [(loc, name) for name in _VARIABLE.findall(value)]
    if isinstance(value, dict):
        return [use for key, item in value.items() for use in _uses(item, (*loc, key))]
    if isinstance(value, list):
        return [use for index, item in enumerate(value) for use in _uses(item, (*loc, index))]
    return []
