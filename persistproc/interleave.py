"""The order of output read from two terminals, stdout's and stderr's.

A program that writes a burst to stdout and then a traceback to stderr means the traceback to come
last, and a reader of the combined log expects it there. The kernel does not keep that order across
two terminals: a terminal's read buffer holds about 4 KiB, and the rest of a burst waits in the
kernel until the reader makes room, while the other terminal's traceback is already readable.

So when a stream's last read of a wakeup was large, its writer is likely ahead of the reader, and
chunks of the other streams are held back until that stream has been read dry (a short read), it
ends, or the caller's deadline passes. Sans-IO: the caller reads, keeps the time and ingests.
"""

from __future__ import annotations

from collections.abc import Callable

# A read this large means the terminal's buffer was (nearly) full: Linux gives at most 4095 bytes a
# read, other systems less. A smaller burst that also crosses it only delays the other stream.
BACKLOG_BYTES = 1024


class Interleaving:
    def __init__(self, ingest: Callable[[str, bytes], None]) -> None:
        self._ingest = ingest
        self._backlogged: set[str] = set()  # streams whose last read filled the buffer
        self._held: list[tuple[str, bytes]] = []
        self._held_streams: set[str] = set()

    @property
    def holding(self) -> bool:
        return bool(self._held)

    def add(self, stream: str, data: bytes) -> None:
        """A chunk just read from `stream`: ingested now, or held behind a backlogged stream."""
        if stream in self._held_streams or (self._backlogged and stream not in self._backlogged):
            # a held stream stays held, so its own chunks keep their order
            self._held.append((stream, data))
            self._held_streams.add(stream)
        else:
            self._ingest(stream, data)

    def read_dry(self, stream: str, last_read: int) -> None:
        """The reads of `stream` stopped for this wakeup; the last one returned `last_read` bytes
        (0 when the stream ended). Releases what no longer has a reason to wait."""
        if last_read >= BACKLOG_BYTES:
            self._backlogged.add(stream)
        else:
            self._backlogged.discard(stream)
        # Held streams wait for backlogged streams that are not held themselves; if there are
        # none, nothing is ahead of the held chunks any more.
        if self._held and self._backlogged <= self._held_streams:
            self.release()

    def expire(self) -> None:
        """The caller's deadline passed: a backlogged stream had nothing more after all (its
        burst just ended on a large read), so it stops holding the others, now and later."""
        self._backlogged.clear()
        self.release()

    def release(self) -> None:
        """Ingest everything held, in the order it was read."""
        held, self._held = self._held, []
        self._held_streams.clear()
        for stream, data in held:
            self._ingest(stream, data)
