"""Run the benchmarks and print their tables; a full run also writes docs/performance.md."""

from __future__ import annotations

import argparse
import datetime
import os
import shutil
import signal
import sys
import tempfile
import time
from pathlib import Path

from benchmarks import attach, grep, ingest, latency, memory, start
from benchmarks.common import Row, machine, server, table

DOC = Path(__file__).resolve().parent.parent / "docs" / "performance.md"
NOTES = Path(__file__).resolve().parent / "notes.md"


def _load() -> str:
    return " ".join(f"{figure:.1f}" for figure in os.getloadavg())


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="tiny sizes: checks that all run")
    args = parser.parse_args()
    # Stopped from outside: still stop the servers (and their processes) and delete the files.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    quick: bool = args.quick
    began = time.monotonic()
    load_before = _load()
    sections = []
    workdir = Path(tempfile.mkdtemp(prefix="persistproc-bench-files-"))

    def section(title: str, rows: list[Row]) -> None:
        sections.append(table(title, rows))
        print(sections[-1], flush=True)

    try:
        with server() as running:
            rows, logs = memory.run(running, quick, workdir)
            section("Server memory (RSS)", rows)
            section("Tool latency, median (min-max) of calls", latency.run(running, quick, logs))
            section("grep through get_process_output", grep.run(running, quick, logs))
        with server() as running:
            section("Ingestion, median (min-max) of runs", ingest.run(running, quick, workdir))
            section("Start latency, median (min-max) of starts", start.run(running, quick))
            section(
                "Attach keystroke echo in tmux, median (min-max) of keys",
                attach.run(running, quick),
            )
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    report = "\n".join(sections)
    print(f"all benchmarks took {time.monotonic() - began:.0f} s")
    if not quick:
        today = datetime.date.today().isoformat()
        notes = NOTES.read_text()
        DOC.write_text(
            f"# Performance\n\nMeasured {today} on {machine()} with `python -m benchmarks`"
            f" ({time.monotonic() - began:.0f} s; load average {load_before} before the run and"
            f" {_load()} at its end, its own processes included).\n"
            "Each figure comes with a reference measured in the same run; machines are noisy,\n"
            "so ratios matter more than absolute numbers. Figures are medians with the min-max\n"
            "spread over repeats in parentheses.\n\n" + report + "\n" + notes
        )
        print(f"written to {DOC}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
