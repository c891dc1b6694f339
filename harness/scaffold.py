"""`harness init`: a commented starting target and experiment for a user's own system.

The files are the shortest path from an empty folder to a run: a target in the shape most
async systems have (an API, a broker, workers, where effects land), with every line a user must
change marked, and the catalogue's worker-crash experiment aimed at it. They load as written,
so `harness validate` passes before the first edit.
"""

from __future__ import annotations

import re
from pathlib import Path

from jinja2 import Environment, PackageLoader, StrictUndefined

from harness.errors import HarnessError
from harness.topology import NAME_PATTERN

_TEMPLATES = Environment(
    loader=PackageLoader("harness", "init_templates"),
    undefined=StrictUndefined,
    keep_trailing_newline=True,
    autoescape=False,
)


class ScaffoldRefused(HarnessError):
    """The name is not a valid target name, or a file would be overwritten."""

    exit_code = 3


def files_for(name: str, folder: Path) -> dict[Path, str]:
    """Each file ``init`` writes for ``name`` under ``folder``, with its text."""
    if not re.match(NAME_PATTERN, name):
        raise ScaffoldRefused(
            f"{name!r} is not a target name: a letter, then letters, digits, - or _"
        )
    return {
        folder / "targets" / f"{name}.yaml": _render("target.yaml.j2", name),
        folder / "experiments" / f"{name}-crashed-workers.yaml": _render(
            "experiment.yaml.j2", name
        ),
    }


def write(name: str, folder: Path, force: bool = False) -> list[Path]:
    """Write the files; none is written if one exists already, unless ``force``."""
    files = files_for(name, folder)
    existing = [str(path) for path in files if path.exists()]
    if existing and not force:
        raise ScaffoldRefused(f"already there: {', '.join(existing)}; --force overwrites")
    for path, text in files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return list(files)


def _render(template: str, name: str) -> str:
    return _TEMPLATES.get_template(template).render(name=name)
