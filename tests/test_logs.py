"""LineStore and RawLog: numbering, the sparse index, copies, reopening, and the ring."""

from __future__ import annotations

import random
from pathlib import Path

from persistproc.logs import INDEX_STEP, LineStore, text_blocks
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


# ----- the size cap ------------------------------------------------------------------------------
CAP = 64 * 1024


def _fill(store: LineStore, count: int, start: int = 1) -> list[str]:
    lines = [f"line {i:06d} " + "x" * 90 for i in range(start, start + count)]
    for at in range(0, count, 37):
        store.append(lines[at : at + 37])
    return lines


def test_store_over_its_cap_drops_the_oldest_half_and_keeps_the_numbering(tmp_path: Path) -> None:
    store = LineStore(tmp_path / "a.log", max_bytes=CAP)
    lines = _fill(store, 3000)  # ~300 KB: several rotations
    assert store.count == 3000
    assert 1 < store.first <= 3000
    kept = store.read(1, 3000)
    assert kept == lines[store.first - 1 :]  # exactly the newest lines, numbers intact
    assert store.read(store.first, store.first) == [lines[store.first - 1]]
    assert store.read(1, store.first - 1) == []  # dropped lines are never made up
    on_disk = sum(p.stat().st_size for p in tmp_path.iterdir())
    assert on_disk <= CAP + 200  # the cap (plus the batch that crossed it)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.log", f"a.log.{store.first}"]
    store.close()


def test_reopened_rotated_store_reads_the_same(tmp_path: Path) -> None:
    store = LineStore(tmp_path / "a.log", max_bytes=CAP)
    lines = _fill(store, 2000)
    first = store.first
    store.close()
    again = LineStore(tmp_path / "a.log", max_bytes=CAP)
    assert (again.first, again.count) == (first, 2000)
    assert again.read(1, 2000) == lines[first - 1 :]
    more = _fill(again, 500, start=2001)
    assert again.read(2001, 2500) == more
    again.close()


def test_crash_between_rename_and_delete_leaves_a_readable_store(tmp_path: Path) -> None:
    store = LineStore(tmp_path / "a.log", max_bytes=CAP)
    lines = _fill(store, 2000)
    store.close()
    # a segment older than the kept one: what a crash between a rotation's two steps leaves
    (tmp_path / "a.log.1").write_text("stale\n")
    again = LineStore(tmp_path / "a.log", max_bytes=CAP)
    assert again.read(1, 2000) == lines[again.first - 1 :]
    assert not (tmp_path / "a.log.1").exists()
    again.close()


def test_copy_of_a_rotated_store_has_its_segments(tmp_path: Path) -> None:
    store = LineStore(tmp_path / "a.log", max_bytes=CAP)
    lines = _fill(store, 1000)
    twin = store.copy_to(tmp_path / "b.log")
    assert (twin.first, twin.count) == (store.first, store.count)
    assert twin.read(1, 1000) == lines[store.first - 1 :]
    store.close()
    twin.close()
    assert LineStore(tmp_path / "b.log").read(1, 1000) == lines[store.first - 1 :]


def test_raw_log_over_its_cap_keeps_the_newest_bytes_exactly(tmp_path: Path) -> None:
    raw = RawLog(tmp_path / "out.raw", ring_bytes=1024, max_bytes=CAP)
    data = random.Random(3).randbytes(300_000)
    for at in range(0, len(data), 4096):
        raw.append(data[at : at + 4096])
    raw.close()
    assert raw.size == len(data) and raw.first > 0
    older = tmp_path / f"out.raw.{raw.first}"
    kept = older.read_bytes() + (tmp_path / "out.raw").read_bytes()
    assert kept == data[raw.first :]  # byte-exact from the first byte kept
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.raw", older.name]


def test_lines_that_cannot_be_saved_stay_readable_from_memory(tmp_path: Path) -> None:
    store = LineStore(tmp_path / "a.log")
    store.append(["saved 1", "saved 2"])
    store.flush()
    _fill_the_disk(store)
    store.append(["lost in the buffer"])
    store.flush()
    assert store.write_error and "not being saved" in store.write_error
    store.append([f"unsaved {i}" for i in range(12_000)])
    assert store.count == 3 + 12_000
    newest = store.read(store.count - 2, store.count)
    assert newest == ["unsaved 11997", "unsaved 11998", "unsaved 11999"]
    kept = store.read(1, store.count)
    assert kept[:2] == ["saved 1", "saved 2"]
    assert kept[2:] == [f"unsaved {i}" for i in range(2_000, 12_000)]  # the newest 10 000
    blocks = list(text_blocks(store, store.count - 1, store.count, backwards=True))
    assert blocks == [(store.count - 1, "unsaved 11998\nunsaved 11999")]


def test_lines_in_the_buffer_when_a_flush_fails_stay_readable(tmp_path: Path) -> None:
    store = LineStore(tmp_path / "a.log")
    store.append(["saved"])
    _fill_the_disk(store)
    store.append(["buffered 1", "buffered 2"])  # in the writer's buffer: not on disk yet
    store.flush()  # fails: the disk is full
    store.append(["after"])
    assert store.write_error
    assert store.read(1, 10) == ["saved", "buffered 1", "buffered 2", "after"]
    assert list(text_blocks(store, 1, 10, backwards=False)) == [
        (1, "saved"),
        (2, "buffered 1\nbuffered 2\nafter"),
    ]


def test_a_copy_of_a_store_that_cannot_write_keeps_its_lines_in_memory(tmp_path: Path) -> None:
    store = LineStore(tmp_path / "a.log")
    store.append(["l1", "l2"])
    _fill_the_disk(store)
    store.append(["l3", "l4"])
    store.flush()
    twin = store.copy_to(tmp_path / "b.log")
    twin.append(["l5", "l6"])
    assert twin.write_error and twin.read(1, 10) == ["l1", "l2", "l3", "l4", "l5", "l6"]
    assert store.read(1, 10) == ["l1", "l2", "l3", "l4"]


def test_a_torn_last_line_is_cut_before_appending(tmp_path: Path) -> None:
    (tmp_path / "a.log").write_bytes(b"a\nb\ntor")  # a crash in the middle of a line
    store = LineStore(tmp_path / "a.log")
    store.append(["c", "d"])
    store.close()
    assert LineStore(tmp_path / "a.log").read(1, 10) == ["a", "b", "c", "d"]


def _fill_the_disk(store: LineStore) -> None:
    """From here every write of the store fails, as on a full disk (/dev/full answers ENOSPC)."""
    store.close()
    store._writer = open("/dev/full", "ab", buffering=256 * 1024)  # noqa: SIM115
