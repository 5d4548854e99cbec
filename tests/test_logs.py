"""LineStore and RawLog: numbering, the sparse index, copies, reopening, and the ring."""

from __future__ import annotations

import random
from pathlib import Path

from persistproc.logs import INDEX_STEP, LineStore
from persistproc.rawlog import RawLog


def _lines(count: int) -> list[str]:
    return [f"line {i} é" if i % 7 == 0 else f"line {i}" for i in range(1, count + 1)]


def test_lines_read_back_exactly_whatever_the_batches(tmp_path: Path) -> None:
    lines = _lines(3 * INDEX_STEP + 17)
    store = LineStore(tmp_path / "a.log")
    rng = random.Random(7)
    done = 0
    while done < len(lines):
        size = rng.randint(1, 2 * INDEX_STEP)
        store.append(lines[done : done + size])
        done += size
    assert store.count == len(lines)
    assert store.read(1, len(lines)) == lines
    for number in (1, INDEX_STEP - 1, INDEX_STEP, INDEX_STEP + 1, 2 * INDEX_STEP, len(lines)):
        assert store.read(number, number) == [lines[number - 1]]
    assert store.read(len(lines) + 1, len(lines) + 5) == []
    assert store.read(-3, 2) == lines[:2]
    store.close()


def test_reopened_store_counts_what_is_on_disk(tmp_path: Path) -> None:
    lines = _lines(600)
    store = LineStore(tmp_path / "a.log")
    store.append(lines)
    store.close()
    with open(tmp_path / "a.log", "ab") as handle:
        handle.write(b"torn last line without newline")
    again = LineStore(tmp_path / "a.log")
    assert again.count == 600
    assert again.read(299, 301) == lines[298:301]


def test_copy_continues_independently(tmp_path: Path) -> None:
    store = LineStore(tmp_path / "a.log")
    store.append(_lines(300))
    twin = store.copy_to(tmp_path / "b.log")
    twin.append(["only in the twin"])
    store.append(["only in the original"])
    assert twin.read(300, 301) == ["line 300", "only in the twin"]
    assert store.read(300, 301) == ["line 300", "only in the original"]
    store.close()
    twin.close()


def test_raw_log_is_byte_exact_and_ring_keeps_the_newest(tmp_path: Path) -> None:
    raw = RawLog(tmp_path / "out.raw", ring_bytes=1024)
    chunks = [bytes([i % 256]) * 100 for i in range(100)]
    for chunk in chunks:
        raw.append(chunk)
    raw.close()
    assert (tmp_path / "out.raw").read_bytes() == b"".join(chunks)
    assert raw.size == 10_000
    start, tail = raw.tail(500)
    assert tail == b"".join(chunks)[-500:] and start == 9_500
    assert raw.since(9_900) == b"".join(chunks)[-100:]
    assert raw.since(0) is None  # long gone from the ring
