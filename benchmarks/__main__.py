"""Run the benchmarks and print their tables; a full run also writes docs/performance.md."""

from __future__ import annotations

import argparse
import datetime
from pathlib import Path

from benchmarks import ingest, latency
from benchmarks.common import machine, server, table

DOC = Path(__file__).resolve().parent.parent / "docs" / "performance.md"


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="tiny sizes: checks that all run")
    args = parser.parse_args()
    sections = []
    with server() as running:
        sections.append(table("Ingestion (median of runs)", ingest.run(running, args.quick)))
        sections.append(table("Tool latency, median", latency.run(running, args.quick)))
    report = "\n".join(sections)
    print(report)
    if not args.quick:
        today = datetime.date.today().isoformat()
        DOC.write_text(
            f"# Performance\n\nMeasured {today} on {machine()} with `python -m benchmarks`.\n"
            "Each figure comes with a reference measured in the same run; machines are noisy,\n"
            "so ratios matter more than absolute numbers.\n\n" + report
        )
        print(f"written to {DOC}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
