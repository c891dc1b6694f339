"""Time spans joined where they touch: failed scrapes into gaps, busy samples into stretches."""

from __future__ import annotations

from collections.abc import Iterable


def merge(spans: Iterable[tuple[float, float]], within_s: float) -> list[tuple[float, float]]:
    """``spans`` sorted and joined wherever one starts at most ``within_s`` after another ends."""
    merged: list[tuple[float, float]] = []
    for start, end in sorted(spans):
        if merged and start - merged[-1][1] <= within_s:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged
