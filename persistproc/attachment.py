"""Attached terminals: what each one is owed, held without ever slowing the process down.

The read path pushes every chunk to every attachment. An attachment that falls more than `limit`
bytes behind (a slow or stalled client) drops what it holds and is marked `behind`; its sender then
repaints it from the screen or the recent output instead of replaying what it missed.
"""

from __future__ import annotations

import asyncio
from collections import deque

ATTACH_BUFFER = 1024 * 1024


class Attachment:
    def __init__(self, read_only: bool, columns: int, rows: int, limit: int = ATTACH_BUFFER):
        self.read_only = read_only
        self.columns, self.rows = columns, rows
        self.limit = limit
        self.behind = False
        self.closed = False
        self._chunks: deque[bytes] = deque()
        self._size = 0
        self._ready = asyncio.Event()

    def push(self, data: bytes) -> None:
        """Called on the read path: never blocks, never grows past the limit."""
        if self.behind or self.closed:
            return
        if self._size + len(data) > self.limit:
            self._chunks.clear()
            self._size = 0
            self.behind = True
        else:
            self._chunks.append(data)
            self._size += len(data)
        self._ready.set()

    def close(self) -> None:
        self.closed = True
        self._ready.set()

    async def take(self) -> bytes | None:
        """Everything pending as one block; None once closed. Check `behind` after it returns."""
        while not self._chunks and not self.closed and not self.behind:
            self._ready.clear()
            await self._ready.wait()
        if self._chunks:
            data = b"".join(self._chunks)
            self._chunks.clear()
            self._size = 0
            return data
        return None if self.closed else b""


def line_start(data: bytes) -> bytes:
    """Replayed output starts at a line boundary, so the terminal does not show half a line."""
    cut = data.find(b"\n")
    return data[cut + 1 :] if 0 <= cut < len(data) - 1 else data
