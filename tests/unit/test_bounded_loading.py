"""Hostile files are refused in little memory, with file, line and field: bombs, depth, sizes,
special files and keys given twice."""

from __future__ import annotations

import os
import tracemalloc
from pathlib import Path

import pytest

from harness.errors import SpecError
from harness.loader import load_experiment

BOMB = "a: &a [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{chr(98 + i)}: &{chr(98 + i)} [*{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, "
    f"*{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, "
    f"*{chr(97 + i)}, *{chr(97 + i)}]\n"
    for i in range(9)
)  # 10 ** 10 values from under a kilobyte


def refused(path: Path) -> SpecError:
    """The error loading ``path`` gives, having used under 200 MB on the way (how fast it comes
    is a benchmark: bench/hostile_input.py)."""
    tracemalloc.start()
    try:
        with pytest.raises(SpecError) as raised:
            load_experiment(path)
        assert tracemalloc.get_traced_memory()[1] < 200 * 1024 * 1024
    finally:
        tracemalloc.stop()
    assert raised.value.exit_code == 3 and raised.value.file == str(path)
    return raised.value


def test_an_alias_bomb_is_refused_at_its_line(tmp_path: Path) -> None:
    path = tmp_path / "bomb.yaml"
    path.write_text("name: bomb\n" + BOMB)
    assert len(BOMB) < 1024
    error = refused(path)
    assert "more than 100000 values (aliases count each time they are used)" in error.message
    assert error.line is not None


def test_nesting_past_the_bound_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "deep.yaml"
    path.write_text("name: deep\nload: " + "[" * 500 + "]" * 500 + "\n")
    assert "nested deeper than 64" in refused(path).message


def test_a_file_past_the_size_bound_is_refused_before_it_is_read(tmp_path: Path) -> None:
    path = tmp_path / "big.yaml"
    path.write_text("name: big\n" + "".join(f"k{i}: {i}\n" for i in range(200_000)))
    assert "a file here is at most 1048576 bytes" in refused(path).message


@pytest.mark.parametrize("device", ["/dev/zero", "/dev/urandom"])
def test_a_device_is_not_a_file(device: str) -> None:
    assert refused(Path(device)).message == "cannot read: not a regular file"


def test_a_fifo_is_refused_without_waiting_for_a_writer(tmp_path: Path) -> None:
    fifo = tmp_path / "fifo.yaml"
    os.mkfifo(fifo)
    assert refused(fifo).message == "cannot read: not a regular file"


def test_a_folder_is_not_a_file(tmp_path: Path) -> None:
    folder = tmp_path / "folder.yaml"
    folder.mkdir()
    assert refused(folder).message == "cannot read: a folder"


def test_a_key_given_twice_names_both_lines(tmp_path: Path) -> None:
    path = tmp_path / "twice.yaml"
    path.write_text("name: twice\ntarget: redis-streams\nload: {rate: 1/s}\nname: again\n")
    error = refused(path)
    assert (error.line, error.field) == (4, "name")
    assert error.message == "given twice: also on line 1"


EXPERIMENT = (
    "name: x\ntarget: redis-streams\nload: {{rate: 10/s, duration: {duration}}}\n"
    "timeline:\n  - {{{fault}}}\n"
    "checks:\n  - {{name: nothing lost, ledger: lost, expect: '== 0'}}\n"
)


def experiment(tmp_path: Path, duration: str, fault: str) -> Path:
    path = tmp_path / "experiments" / "x.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(EXPERIMENT.format(duration=duration, fault=fault))
    return path


def test_a_fault_that_would_start_after_the_load_is_refused(tmp_path: Path) -> None:
    path = experiment(tmp_path, "20s", "at: 25s, for: 2s, fault: kill, component: worker")
    error = refused(path)
    assert (error.line, error.field) == (5, "timeline[0].at")
    assert "25s is not before the load's end (20s)" in error.message


def test_a_fault_repeated_past_the_bound_is_refused_quickly(tmp_path: Path) -> None:
    path = experiment(
        tmp_path, "24h", "at: 1s, for: 500ms, every: 1s, fault: pause, component: worker"
    )
    error = refused(path)
    assert error.field == "timeline[0].every"
    assert "is 86399 faults; at most 1000" in error.message


def test_two_checks_of_one_name_are_refused_naming_both(tmp_path: Path) -> None:
    path = tmp_path / "x.yaml"
    path.write_text(
        "name: x\ntarget: redis-streams\nload: {rate: 10/s, duration: 10s}\nchecks:\n"
        "  - {name: nothing lost, ledger: lost, expect: '== 0'}\n"
        "  - {name: nothing lost, ledger: duplicated, expect: '== 0'}\n"
    )
    error = refused(path)
    assert (error.line, error.field) == (6, "checks[1].name")
    assert error.message == "two checks are named 'nothing lost': also checks[0] on line 5"
