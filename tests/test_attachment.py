"""An attached terminal's outbox: bounded, never blocking the read path, repainted when behind."""

from __future__ import annotations

import asyncio

from persistproc.attachment import Attachment, line_start


async def test_chunks_arrive_in_order_as_one_block() -> None:
    attachment = Attachment(read_only=False, columns=80, rows=24, limit=1024)
    attachment.push(b"one ")
    attachment.push(b"two")
    assert await attachment.take() == b"one two"
    assert not attachment.behind


async def test_a_client_that_falls_behind_is_dropped_and_marked_for_a_repaint() -> None:
    attachment = Attachment(read_only=False, columns=80, rows=24, limit=1024)
    for _ in range(100):  # the process writes 100 KiB while this client reads nothing
        attachment.push(b"x" * 1024)
    assert attachment.behind
    assert await attachment.take() == b""  # nothing stale is replayed; the sender repaints
    attachment.behind = False
    attachment.push(b"fresh")
    assert await attachment.take() == b"fresh"


async def test_take_waits_for_data_and_ends_on_close() -> None:
    attachment = Attachment(read_only=True, columns=80, rows=24)
    waiting = asyncio.ensure_future(attachment.take())
    await asyncio.sleep(0)
    assert not waiting.done()
    attachment.push(b"late")
    assert await asyncio.wait_for(waiting, 5) == b"late"
    attachment.close()
    assert await asyncio.wait_for(attachment.take(), 5) is None


def test_replay_starts_at_a_line_boundary() -> None:
    assert line_start(b"half a line\r\nfull line\r\n") == b"full line\r\n"
    assert line_start(b"no newline at all") == b"no newline at all"
