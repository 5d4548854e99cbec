"""What a run records and shows: the raw log with its ring, the clean-line views per stream, the
attached terminals, and the pyte screen.

`ingest` is on the read path and never awaits: raw log, ring, attachments, line machines. The pyte
screen is not fed there; it catches up from the ring when somebody asks for it.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
from pathlib import Path

from persistproc.attachment import Attachment, line_start
from persistproc.cleantext import LineMachine
from persistproc.logs import DEFAULT_MAX_BYTES, LineStore, older_segments
from persistproc.model import STREAMS
from persistproc.output import Snapshot, StreamView
from persistproc.rawlog import RAW_LOG, RawLog, read_tail
from persistproc.screen import ScreenSnapshot, TerminalScreen

SCREEN_REBUILD_BYTES = 64 * 1024
REPLAY_BYTES = 64 * 1024


class Recording:
    def __init__(
        self,
        log_dir: Path,
        columns: int,
        rows: int,
        live: bool,
        max_log_bytes: int = DEFAULT_MAX_BYTES,
    ) -> None:
        """live: a new run's recording; otherwise an earlier run's, read from its files.
        max_log_bytes: the cap of each log file (raw, and each stream's clean lines)."""
        self.log_dir = log_dir
        self.max_log_bytes = max_log_bytes
        self.columns, self.rows = columns, rows
        self.raw: RawLog | None = None
        self.attachments: list[Attachment] = []
        self._screen: TerminalScreen | None = None
        self._screen_offset = 0
        self._shot: ScreenSnapshot | None = None  # the last snapshot, while the screen is unchanged
        self._screen_lock = asyncio.Lock()
        self._raw_first_on_disk: int | None = None
        if live:
            self.raw = RawLog(log_dir / RAW_LOG, max_bytes=max_log_bytes)
            combined = StreamView(self._store("combined"), LineMachine())
            stderr = StreamView(self._store("stderr"), LineMachine())
            # Until stderr says something, stdout's lines are exactly the combined ones, so
            # stdout shares the combined view (half the line-machine work); see _split_stdout.
            self.views = {"combined": combined, "stdout": combined, "stderr": stderr}
        else:
            self.views = {s: StreamView(self._store(s), None) for s in STREAMS}

    def _store(self, stream: str) -> LineStore:
        return LineStore(self.log_dir / f"{stream}.log", self.max_log_bytes)

    # ----- the read path ----------------------------------------------------------------------
    def ingest(self, stream: str, data: bytes) -> None:
        assert self.raw is not None
        self.raw.append(data)
        if stream == "stderr" and self.views["stdout"] is self.views["combined"]:
            self._split_stdout()  # before the combined view sees stderr's bytes
        for attachment in self.attachments:
            attachment.push(data)
        self.views["combined"].feed(data)
        if stream == "stderr":
            self.views["stderr"].feed(data)
        elif self.views["stdout"] is not self.views["combined"]:
            self.views["stdout"].feed(data)

    def _split_stdout(self) -> None:
        combined = self.views["combined"]
        assert combined.machine is not None
        try:
            store = combined.store.copy_to(self.log_dir / "stdout.log")
        except OSError as error:
            # stdout's own file cannot be made: its lines go on from here, and status says so
            store = self._store("stdout")
            store.write_error = f"stdout log not being saved: {error.strerror or error}"
        self.views["stdout"] = StreamView(store, copy.deepcopy(combined.machine))

    def flush(self) -> None:
        """Keep the files on disk current for readers outside the server (`tail -f`, `--raw`)."""
        if self.raw is not None:
            self.raw.flush()
        for view in {id(v): v for v in self.views.values()}.values():
            view.store.flush()

    def finish(self) -> None:
        """End of output: commit every pending line, close the files and the attachments."""
        if self.views["stdout"] is self.views["combined"]:
            # stdout equalled combined to the end: give it its own file for later readers
            self.views["combined"].finish()
            self.views["stderr"].finish()
            # the combined log holds the same lines; its write_error already says why it failed
            with contextlib.suppress(OSError):
                self.views["combined"].store.copy_to(self.log_dir / "stdout.log")
        else:
            for view in self.views.values():
                view.finish()
        if self.raw is not None:
            self.raw.close()
        for attachment in self.attachments:
            attachment.close()

    # ----- readers ----------------------------------------------------------------------------
    @property
    def write_error(self) -> str | None:
        errors = [v.store.write_error for v in self.views.values()]
        errors.append(self.raw.write_error if self.raw else None)
        return next((e for e in errors if e), None)

    def dropped(self) -> dict[str, int] | None:
        """What the log size cap dropped from this run, if anything."""
        if self.raw is not None:
            raw_first = self.raw.first
        else:
            if self._raw_first_on_disk is None:  # an earlier run's files do not change: look once
                older = older_segments(self.log_dir / RAW_LOG)
                self._raw_first_on_disk = older[-1][0] if older else 0
            raw_first = self._raw_first_on_disk
        first_line = self.views["combined"].store.first
        if raw_first == 0 and first_line == 1:
            return None
        return {"raw_bytes": raw_first, "lines": first_line - 1}

    def snapshot(self, stream: str) -> Snapshot:
        return self.views[stream].snapshot()

    @property
    def alternate_screen(self) -> bool:
        machine = self.views["combined"].machine
        return machine is not None and machine.alternate_screen

    async def screen(self) -> ScreenSnapshot:
        async with self._screen_lock:
            screen = await self._caught_up_screen()
            if self._shot is None:  # the screen changed since the last one was taken
                self._shot = screen.snapshot()
            return self._shot

    async def _caught_up_screen(self) -> TerminalScreen:
        """The pyte screen fed up to the newest output; rebuilt from the tail when far behind."""
        if self.raw is None:
            if self._screen is not None:  # an earlier server's run: its log does not change
                return self._screen
            data = read_tail(self.log_dir / RAW_LOG, SCREEN_REBUILD_BYTES)
            fresh, offset = True, 0
        else:
            offset = self.raw.size
            pending = self.raw.since(self._screen_offset) if self._screen else None
            fresh = pending is None or len(pending) > 4 * SCREEN_REBUILD_BYTES
            data = self.raw.tail(SCREEN_REBUILD_BYTES)[1] if fresh else pending or b""
        alternate = self.alternate_screen
        if fresh:
            self._screen = TerminalScreen(self.columns, self.rows)
        screen = self._screen
        assert screen is not None
        prefix = b"\x1b[?1049h" if fresh and alternate else b""
        self._screen_offset = offset
        if fresh or data:
            self._shot = None
            # pyte is slow (about 1 MB/s): feed it off the loop.
            await asyncio.to_thread(screen.feed, prefix + data)
        return screen

    def resize(self, columns: int, rows: int) -> None:
        self.columns, self.rows = columns, rows
        if self._screen is not None:
            self._screen.resize(columns, rows)
            self._shot = None

    # ----- attached terminals -----------------------------------------------------------------
    def attach(self, read_only: bool, columns: int, rows: int, running: bool) -> Attachment:
        attachment = Attachment(read_only, columns, rows)
        if running:
            self.attachments.append(attachment)
        else:
            attachment.close()
        return attachment

    def detach(self, attachment: Attachment) -> None:
        attachment.close()
        if attachment in self.attachments:
            self.attachments.remove(attachment)

    async def repaint(self) -> bytes:
        """What a terminal that attaches (or fell behind) needs to show the process as it is now:
        a full-screen program's screen with its modes, or the recent output of a line-mode one
        (replayed so the terminal's own scrollback works)."""
        if self.alternate_screen:
            async with self._screen_lock:
                screen = await self._caught_up_screen()
                return await asyncio.to_thread(screen.render_ansi)
        if self.raw is None:
            return line_start(read_tail(self.log_dir / RAW_LOG, REPLAY_BYTES))
        return line_start(self.raw.tail(REPLAY_BYTES)[1])
