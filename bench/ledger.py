"""Benchmark: how long, and in how much memory, the ledger of N messages takes to judge.

Synthetic ledgers in the shape a keyed load and the reference sink write them (an invoke line
with one of a thousand keys and a completion line per send: 98 % acknowledged, 1 % refused, 1 %
without an answer; one processed line per message, 0.1 % of them twice, 0.05 % of the
acknowledged never, and a torn line after each 100,000) are judged K times each, as a new
process (Python's start-up included), as `harness run` judges a run's folder. The table gives
the median wall time with its range and the largest resident memory. The aim: 10^7 messages
in under 60 s and 2 GB, the cost growing linearly.

    .venv/bin/python bench/ledger.py --sizes 100000 1000000 10000000 --runs 3

The files of 10^7 messages take 2 GB in the temporary folder while they are judged.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
JUDGE = (
    "import sys; from pathlib import Path; from harness.ledger import summary; "
    "s = summary.read(Path(sys.argv[1]), Path(sys.argv[2])); "
    "print(s.acknowledged, s.lost, s.duplicated, s.unexpected, s.recovered, s.reordered, "
    "s.skipped)"
)


def write(folder: Path, messages: int) -> tuple[Path, Path]:
    """The two files of ``messages`` sends, decided by each id's number (no randomness)."""
    sent, processed = folder / "sent.jsonl", folder / "processed.jsonl"
    with sent.open("w") as sends, processed.open("w") as processings:
        for i in range(messages):
            t = 1_800_000_000 + i / 5000
            key = i % 1000  # a thousand keys, one per load user, as a keyed load writes them
            sends.write(f'{{"id": "run-{i}", "type": "invoke", "t": {t:.4f}, "key": "{key}"}}\n')
            kind = i % 100
            if kind < 98:
                sends.write(
                    f'{{"id": "run-{i}", "type": "ok", "t": {t + 0.002:.4f}, "status": 202, '
                    '"error": null}\n'
                )
            elif kind == 98:
                sends.write(
                    f'{{"id": "run-{i}", "type": "fail", "t": {t + 0.002:.4f}, "status": 503, '
                    '"error": "HTTP 503"}\n'
                )
            if i % 2000 == 7:
                continue  # acknowledged, never processed: lost
            line = f'{{"id": "run-{i}", "t": {t + 0.01:.4f}, "consumer": "worker-{i % 4}"}}\n'
            processings.write(line * (2 if i % 1000 == 3 else 1))
            if i % 100_000 == 99_999:
                processings.write('{"id": "torn-by-a-kill", "t": 1.')  # glued to the next
    return sent, processed


def judge(sent: Path, processed: Path) -> tuple[float, int, str]:
    """Wall seconds, the largest resident memory (KiB), and the counts of one judging."""
    read, write_end = os.pipe()
    started = time.monotonic()
    pid = os.fork()
    if pid == 0:
        os.dup2(write_end, 1)
        os.execv(sys.executable, [sys.executable, "-c", JUDGE, str(sent), str(processed)])
    os.close(write_end)
    with os.fdopen(read) as out:
        counts = out.read().strip()
    _, status, usage = os.wait4(pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"judging failed: {counts}")
    return time.monotonic() - started, usage.ru_maxrss, counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000, 10_000_000])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    os.chdir(ROOT)
    print(
        "| messages | lines | median time | range | per million | largest memory | "
        "acknowledged, lost, duplicated, unexpected, recovered, reordered, skipped |\n"
        "| --- | --- | --- | --- | --- | --- | --- |"
    )
    for size in args.sizes:
        with tempfile.TemporaryDirectory(prefix="harness-ledger-bench-") as tmp:
            sent, processed = write(Path(tmp), size)
            lines = sum(1 for path in (sent, processed) for _ in path.open("rb"))
            results = [judge(sent, processed) for _ in range(args.runs)]
        times = [seconds for seconds, _, _ in results]
        memory = max(kib for _, kib, _ in results) / 1024
        median = statistics.median(times)
        print(
            f"| {size:,} | {lines:,} | {median:.2f} s | {min(times):.2f} to {max(times):.2f} s "
            f"| {median / size * 1e6:.2f} s | {memory:.0f} MB | {results[0][2]} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
