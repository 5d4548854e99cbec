"""A terminal attached to a process: the supervisor hands one to the attach adapter.

It owns the attach-time repaint, the stream of output (with repaints for a client that fell
behind), input, and the size rule: the most recently active interactive terminal sets the size;
read-only terminals never resize and never type.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from persistproc.attachment import Attachment
from persistproc.errors import PersistprocError
from persistproc.run import Run

CLEAR = b"\x1b[H\x1b[2J"
RESIZE_SETTLE_SECONDS = 0.1


class AttachedTerminal:
    def __init__(self, run: Run, read_only: bool, columns: int, rows: int) -> None:
        self.run = run
        self.read_only = read_only
        self.columns, self.rows = columns, rows
        self._attachment: Attachment | None = None
        self._resize_timer: asyncio.TimerHandle | None = None

    async def output(self) -> AsyncIterator[bytes]:
        """The repaint, then every chunk as it comes; ends when the run ends or on close()."""
        run = self.run
        if not self.read_only:
            self._take_size()
        if run.recording.alternate_screen:
            self._attachment = run.recording.attach(
                self.read_only, self.columns, self.rows, run.running
            )
            yield await run.recording.repaint()
            run.nudge()
        else:
            first = (
                await run.recording.repaint()
            )  # line mode: the ring's tail, read without awaiting
            self._attachment = run.recording.attach(
                self.read_only, self.columns, self.rows, run.running
            )
            yield first
        attachment = self._attachment
        while True:
            data = await attachment.take()
            if attachment.behind:
                attachment.behind = False
                yield CLEAR + await run.recording.repaint()
                continue
            if data is None:
                return
            if data:
                yield data

    def write(self, data: bytes) -> None:
        if self.read_only:
            raise PersistprocError("this terminal is attached read-only")
        self._take_size()
        self.run.write(data)

    def resize(self, columns: int, rows: int) -> None:
        if not (1 <= columns <= 1000 and 1 <= rows <= 1000):
            raise PersistprocError(f"invalid terminal size {columns}x{rows}")
        self.columns, self.rows = columns, rows
        if self.read_only:
            return
        # A window being dragged sends a burst of sizes: apply only the last, once it settles,
        # so the program redraws once instead of dozens of times.
        if self._resize_timer is not None:
            self._resize_timer.cancel()
        loop = asyncio.get_running_loop()
        self._resize_timer = loop.call_later(RESIZE_SETTLE_SECONDS, self._take_size)

    def _take_size(self) -> None:
        if (self.run.columns, self.run.rows) != (self.columns, self.rows) and self.run.running:
            self.run.resize(self.columns, self.rows)

    def close(self) -> None:
        if self._resize_timer is not None:
            self._resize_timer.cancel()
        if self._attachment is not None:
            self.run.recording.detach(self._attachment)
