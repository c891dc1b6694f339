"""The command line: parse arguments, call the library, map the result to an exit code.

Exit codes: 0 held, 1 a check failed, 2 inconclusive or the environment is not ready (also an
aborted run), 3 bad input, 4 flaky (with --repeat, the runs disagreed), 128+N interrupted by
signal N. No command prints a traceback. ``parser`` declares every command and flag, ``run``
is ``harness run``, ``commands`` the others.
"""

from __future__ import annotations

import signal
from collections.abc import Sequence

from rich.console import Console

from harness.cli.parser import parser
from harness.cli.run import tell_error, variants
from harness.errors import HarnessError, Interrupted

__all__ = ["main", "parser", "variants"]


def _terminated(signum: int, frame: object) -> None:
    raise Interrupted(signum)


def main(argv: Sequence[str] | None = None) -> int:
    # SIGTERM outside a run (loading, between experiments) ends as cleanly as Ctrl-C does.
    signal.signal(signal.SIGTERM, _terminated)
    args = parser().parse_args(argv)
    out = Console(highlight=False)
    err = Console(stderr=True, highlight=False)
    try:
        code: int = args.command(args, out)
    except HarnessError as exc:
        tell_error(err, "error", exc)
        return exc.exit_code
    except KeyboardInterrupt:
        return 130
    return code
