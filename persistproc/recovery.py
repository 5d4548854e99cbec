"""Completing the clean log of a run whose server died (SIGKILL, power loss) while it ran.

A live run commits a line to its clean log only once the line leaves the line machine's window (the
last 64 lines, which a redraw may still change), so a server that dies loses those lines from the
clean log; the raw log has their bytes. At the next start they are rebuilt from the raw log: the
whole of it when it is small (the line machine gives the same lines however the bytes are chunked,
so the new lines are those past the stored count), else its tail, lined up with the last stored
lines (the latest place they appear: with repeated output, such as heartbeats, that may be a later
copy, and lines between are then not rebuilt).

Only the combined stream can be rebuilt (the raw log does not say which stream a byte came from),
and stdout with it when stderr never spoke: when it did, stdout.log and stderr.log keep what they
had committed.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path

from persistproc.cleantext import LineMachine
from persistproc.logs import LineStore
from persistproc.rawlog import RAW_LOG, raw_files, read_tail

FULL_REBUILD_BYTES = 64 * 1024 * 1024
TAIL_BYTES = 4 * 1024 * 1024
CHUNK = 256 * 1024


def recover(log_dir: Path, max_bytes: int) -> int:
    """Append to the run's combined clean log the lines the raw log has past it; returns how many
    (-1 when the tail could not be lined up with the stored lines: nothing is appended then)."""
    raw_path = log_dir / RAW_LOG
    files = raw_files(raw_path)
    store = LineStore(log_dir / "combined.log", max_bytes)
    try:
        size = sum(file.stat().st_size for file in files if file.exists())
        if len(files) == 1 and store.first == 1 and size <= FULL_REBUILD_BYTES:
            rebuilt = _lines_of(_chunks(raw_path))
            new = rebuilt[store.count :]
        else:
            data = read_tail(raw_path, TAIL_BYTES)
            rebuilt = _lines_of([data[data.find(b"\n") + 1 :]])
            stored = store.read(max(store.count - 63, store.first), store.count)
            start = _line_up(stored, rebuilt)
            if start is None:
                return -1
            new = rebuilt[start:]
        store.append(new)
    finally:
        store.close()
    if not (log_dir / "stderr.log").exists():
        # stderr never spoke, so stdout's lines are the combined ones (as a finished run leaves
        # it), rotated-out segment included
        (log_dir / "combined.log").touch()  # a run that printed nothing has empty logs
        LineStore(log_dir / "combined.log", max_bytes).copy_to(log_dir / "stdout.log")
    return len(new)


def _chunks(path: Path) -> Iterator[bytes]:
    with open(path, "rb") as handle:
        yield from iter(lambda: handle.read(CHUNK), b"")


def _lines_of(chunks: Iterable[bytes]) -> list[str]:
    machine = LineMachine()
    lines: list[str] = []
    for chunk in chunks:
        lines.extend(machine.feed(chunk))
    lines.extend(machine.finish())
    return lines


def _line_up(stored: list[str], rebuilt: list[str]) -> int | None:
    """Where the rebuilt lines go on past the stored ones: just after the latest place where the
    longest run of the newest stored lines appears; None when even the newest line is absent."""
    if not stored:
        return 0
    best_length, best_end = 0, None
    for end in range(len(rebuilt) - 1, -1, -1):
        length = 0
        while (
            length < len(stored)
            and end - length >= 0
            and rebuilt[end - length] == stored[-1 - length]
        ):
            length += 1
        if length > best_length:
            best_length, best_end = length, end
            if length == len(stored):
                break
    return None if best_end is None else best_end + 1
