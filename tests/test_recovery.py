"""Clean logs of a run cut short by a server crash are completed from its raw log; readers of a
capped log get an explicit gap."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from persistproc import output, recovery
from persistproc.cleantext import LineMachine
from persistproc.logs import LineStore
from persistproc.recording import Recording


def _output(count: int) -> bytes:
    """Colored lines with a progress bar redrawn in place every 50 lines."""
    parts = []
    for i in range(1, count + 1):
        parts.append(f"\x1b[32mline {i:06d}\x1b[0m ok\r\n".encode())
        if i % 50 == 0:
            parts.append(b"".join(f"\rprogress {p}%".encode() for p in range(0, 101, 20)) + b"\r\n")
    return b"".join(parts)


def _expected(data: bytes) -> list[str]:
    machine = LineMachine()
    return machine.feed(data) + machine.finish()


def _crash_while_recording(log_dir: Path, data: bytes, max_log_bytes: int = 2 * 1024**3) -> None:
    """Feed a live recording, flush as the server's timer does, then drop it without finishing:
    the clean log lacks the window's lines, as after a SIGKILL."""
    recording = Recording(log_dir, 80, 24, live=True, max_log_bytes=max_log_bytes)
    rng = random.Random(5)
    at = 0
    while at < len(data):
        size = rng.randint(1, 5000)
        recording.ingest("stdout", data[at : at + size])
        at += size
    assert recording.raw is not None
    recording.raw.close()  # what the flush tick had written; the line machines' windows are lost
    for view in recording.views.values():
        view.store.close()


def test_small_raw_log_rebuilds_the_missing_lines(tmp_path: Path) -> None:
    data = _output(3000) + b"Traceback (most recent call last):\r\nValueError: boom"
    _crash_while_recording(tmp_path, data)
    expected = _expected(data)
    before = LineStore(tmp_path / "combined.log").count
    assert before < len(expected)  # the crash lost the window
    added = recovery.recover(tmp_path, 2 * 1024**3)
    assert added == len(expected) - before
    assert LineStore(tmp_path / "combined.log").read(1, 10**6) == expected
    assert LineStore(tmp_path / "stdout.log").read(1, 10**6) == expected
    assert recovery.recover(tmp_path, 2 * 1024**3) == 0  # a second pass adds nothing


def test_large_raw_log_lines_up_its_tail(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(recovery, "FULL_REBUILD_BYTES", 10_000)
    monkeypatch.setattr(recovery, "TAIL_BYTES", 20_000)
    data = _output(3000)
    _crash_while_recording(tmp_path, data)
    assert recovery.recover(tmp_path, 2 * 1024**3) > 0
    assert LineStore(tmp_path / "combined.log").read(1, 10**6) == _expected(data)


def test_line_up_finds_the_latest_longest_match() -> None:
    assert recovery._line_up([], ["a"]) == 0
    assert recovery._line_up(["x", "y"], ["a", "x", "y", "b", "y", "c"]) == 3
    assert recovery._line_up(["tick", "tick"], ["tick", "tick", "tick", "end"]) == 3
    assert recovery._line_up(["gone"], ["a", "b"]) is None


def _snapshot(tmp_path: Path) -> output.Snapshot:
    store = LineStore(tmp_path / "c.log", max_bytes=64 * 1024)
    store.append([f"line {i:06d} " + "x" * 90 for i in range(1, 3001)])
    store.append([f"line {i:06d} " + "x" * 90 for i in range(3001, 4001)])
    store.close()
    return output.Snapshot(store, store.count, [], False, store.first)


def test_reading_dropped_lines_is_an_explicit_gap(tmp_path: Path) -> None:
    snapshot = _snapshot(tmp_path)
    first = snapshot.first
    assert first > 1
    page = output.read(snapshot, 10, since=5, pattern=None).to_dict()
    assert page["truncated"] is True and page["first_available_line"] == first
    assert page["first_line"] == first and page["text"].startswith(f"line {first:06d}")
    assert f"lines 6 to {first - 1} were dropped" in page["note"]
    tail = output.read(snapshot, 10, since=None, pattern=None).to_dict()
    assert tail["truncated"] is False and "note" not in tail and tail["last_line"] == 4000
    everything = output.read(snapshot, 10_000, since=None, pattern=None).to_dict()
    assert everything["truncated"] is True and everything["first_line"] == first
    grep = output.read(
        snapshot, 5, since=None, pattern=output.compile_pattern("line 0000")
    ).to_dict()
    assert grep["truncated"] is True and "dropped" in grep["note"]


def test_a_run_that_wrote_nothing_to_disk_gets_empty_logs(tmp_path: Path) -> None:
    _crash_while_recording(tmp_path, b"")
    assert recovery.recover(tmp_path, 2 * 1024**3) == 0
    assert (tmp_path / "combined.log").read_bytes() == b""
    assert (tmp_path / "stdout.log").read_bytes() == b""


def test_stdout_rebuilt_from_a_rotated_combined_log_keeps_its_numbering(tmp_path: Path) -> None:
    data = b"".join(b"line %d\r\n" % i for i in range(1, 5001))
    _crash_while_recording(tmp_path, data, max_log_bytes=64 * 1024)
    recovery.recover(tmp_path, 64 * 1024)
    combined = LineStore(tmp_path / "combined.log")
    stdout = LineStore(tmp_path / "stdout.log")
    assert (stdout.first, stdout.count) == (combined.first, combined.count) == (stdout.first, 5000)
    assert stdout.read(4990, 4990) == ["line 4990"] == combined.read(4990, 4990)
