"""Every command line the README shows stays true: the CLI takes it, and the experiment files
it names load with its overrides, as `harness validate` loads them. A command that would run
something is validated, never run; one shown without its arguments answers `--help`."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from harness import cli
from harness.loader import load_experiment
from tests.conftest import ROOT

README = ROOT / "README.md"
SHOWN = re.compile(r"^\s{4}(?:\S+=\S+ )*(?:.*&& )?(?:\.venv/bin/)?harness (?P<args>[^#]*)")
INLINE = re.compile(r"`harness (?P<args>[^`]+)`")


def readme_commands() -> list[list[str]]:
    text = README.read_text(encoding="utf-8")
    shown = [m["args"] for line in text.splitlines() if (m := SHOWN.match(line))]
    inline = [m["args"] for m in INLINE.finditer(text)]
    return [shlex.split(args) for args in dict.fromkeys([*shown, *inline])]


COMMANDS = readme_commands()


def test_the_readme_shows_the_commands_of_a_first_hour() -> None:
    assert {argv[0] for argv in COMMANDS} >= {"run", "validate", "init", "doctor", "report"}
    assert len(README.read_text(encoding="utf-8").splitlines()) <= 250


@pytest.mark.parametrize("argv", COMMANDS, ids=" ".join)
def test_each_readme_command_is_true(
    argv: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    if len(argv) == 1:  # a bare command (or --version): it answers, and does nothing
        with pytest.raises(SystemExit) as exited:
            cli.parser().parse_args(argv if argv[0].startswith("-") else [*argv, "--help"])
        assert exited.value.code == 0, capsys.readouterr()
        return
    args = cli.parser().parse_args(argv)  # exits 3 (fails the test) on what it does not take
    if argv[0] == "init":
        assert cli.main([*argv, "--dir", str(tmp_path)]) == 0
    if argv[0] in ("run", "validate"):
        args.files = [_where(f, tmp_path) for f in args.files]
        variants = cli.variants(args)
        assert variants
        for variant in variants:
            load_experiment(variant.path, variant.sets, stand_in=True)


def _where(name: str, tmp_path: Path) -> str:
    """A file of the checkout, or one an earlier README command (``harness init``) wrote."""
    if (ROOT / name).exists():
        return str(ROOT / name)
    cli.main(["init", "shop", "--dir", str(tmp_path), "--force"])
    assert (tmp_path / name).exists(), name
    return str(tmp_path / name)
