"""`logs --raw -f` follows the raw log across size-cap rotations: every kept byte once, in order,
and a note for bytes the cap dropped before they could be read."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

from persistproc.client.follow import LogOptions
from persistproc.client.rawlogs import print_raw
from persistproc.rawlog import RawLog


class _Status:
    """Stands in for the server's status answers: running for `polls` polls, then exited."""

    def __init__(self, path: Path, polls: int) -> None:
        self.path, self.polls, self.calls = path, polls, 0

    def output(self, target: Any, lines: int) -> dict[str, Any]:
        self.calls += 1
        status = "running" if self.calls <= self.polls else "exited"
        return {"process": {"log_path": str(self.path), "status": status, "name": "x", "run": 1}}


def _follow(tmp_path: Path, burst: list[bytes]) -> tuple[bytes, bytes, list[str]]:
    raw = RawLog(tmp_path / "output.raw", max_bytes=64 * 1024)  # a new file every 32 KiB
    raw.append(b"A" * 1000)
    raw.flush()
    status = _Status(tmp_path / "output.raw", polls=1)
    written = [b"A" * 1000]

    def sleep(_: float) -> None:  # between two polls, a chatty process writes the burst
        for chunk in burst:
            raw.append(chunk)
            written.append(chunk)
        raw.flush()
        burst.clear()

    out, notes = io.BytesIO(), []
    print_raw(status, "x", LogOptions(lines=None, follow=True), out, notes.append, sleep)  # type: ignore[arg-type]
    raw.close()
    return out.getvalue(), b"".join(written), notes


def test_two_rotations_between_polls_lose_nothing(tmp_path: Path) -> None:
    printed, written, notes = _follow(tmp_path, [bytes([c]) * 10_000 for c in b"BCDEFGHIJK"])
    assert printed == written and notes == []


def test_bytes_dropped_before_they_were_read_are_noted(tmp_path: Path) -> None:
    burst = [bytes([c]) * 10_000 for c in b"BCDEFGHIJKLMNOPQ"]  # 5 rotations in one poll
    printed, written, notes = _follow(tmp_path, burst)
    dropped = len(written) - len(printed)
    assert dropped > 0
    assert notes == [f"{dropped} bytes were dropped by the log size cap while following"]
    # the file that was open is read to its end, then the gap, then every byte still kept
    head = next(i for i, (a, b) in enumerate(zip(printed, written, strict=False)) if a != b)
    assert printed == written[:head] + written[head + dropped :]
