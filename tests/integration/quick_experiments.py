"""Two short experiments on the reference target: one that holds and one that cannot."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import ROOT

QUICK = (
    "target: {target}\nload: {{rate: 50/s, duration: 6s}}\ndrain: 10s\n"
    "checks:\n  - {{name: nothing lost, ledger: lost, expect: '== 0'}}\n"
).format(target=ROOT / "targets" / "redis-streams.yaml")
IMPOSSIBLE = (
    "  - {name: a million waiting, query: 'sum(harness_queue_depth)', at: end, "
    "expect: '> 1000000'}\n"
)


def reference_target(folder: Path, extra: str) -> Path:
    """The reference target with more top-level fields (``extra``), written into ``folder``."""
    text = (ROOT / "targets" / "redis-streams.yaml").read_text()
    path = folder / "reference.yaml"
    path.write_text(text.replace("{dir}", str(ROOT / "targets")) + extra)
    return path


def write_sound_and_weak(folder: Path) -> None:
    """``a-sound.yaml`` (experiment ``sound``, holds) and ``b-weak.yaml`` (``weak``, fails)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "a-sound.yaml").write_text("name: sound\n" + QUICK)
    (folder / "b-weak.yaml").write_text("name: weak\n" + QUICK + IMPOSSIBLE)
