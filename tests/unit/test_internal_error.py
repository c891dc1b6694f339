"""A bug of the harness's during a run becomes the reason of an inconclusive verdict, never a
traceback in place of the run's journal."""

from __future__ import annotations

from pathlib import Path

from harness.errors import HarnessError
from harness.runner import _internal_error as internal_error
from harness.verdict import Verdict


def test_an_unexpected_error_is_a_harness_error_with_its_traceback_kept(tmp_path: Path) -> None:
    try:
        {}["id"]
    except KeyError as exc:
        error = internal_error(tmp_path, exc)
    assert isinstance(error, HarnessError) and error.exit_code == Verdict.INCONCLUSIVE.exit_code
    assert "KeyError: 'id'" in str(error) and str(tmp_path / "harness-error.txt") in str(error)
    assert "in test_an_unexpected_error" in (tmp_path / "harness-error.txt").read_text()
