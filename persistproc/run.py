"""One run of one process: its PTYs, its exit, its input and size, and stopping it.

Everything here runs on the event loop thread. The read callbacks are synchronous and never await:
each chunk goes to the run's Recording, then waiters are told.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import threading
import uuid
from collections.abc import Callable
from pathlib import Path

import psutil

from persistproc import spawn, tree
from persistproc.config import RUN_MARKER_ENV
from persistproc.errors import PersistprocError
from persistproc.interleave import Interleaving
from persistproc.logs import DEFAULT_MAX_BYTES
from persistproc.model import RunRecord, Status, describe_wait_status, now_iso
from persistproc.recording import Recording

READS_PER_WAKEUP = 16  # bounded, so one chatty child cannot starve the loop
DRAIN_GRACE = 2.0  # after exit, how long to wait for descendants to let go of the terminal
FLUSH_SECONDS = 0.05  # how long output may wait in buffers before it is written to its files
HOLD_SECONDS = 0.05  # how long one stream's output may wait behind the other's burst
MAX_PENDING_INPUT = 1024 * 1024


class Run:
    def __init__(self, record: RunRecord, recording: Recording, columns: int, rows: int) -> None:
        self.record = record
        self.recording = recording
        self.columns, self.rows = columns, rows
        self.marker = record.marker or uuid.uuid4().hex
        record.marker = self.marker
        self.stop_requested = False
        self.ended = asyncio.Event()
        self.generation = 0  # counts output chunks: waiters compare it to what they have seen
        self._waiter: asyncio.Future[None] | None = None
        self._child: spawn.Child | None = None
        self._open_fds: dict[int, str] = {}
        self._exited = False
        self._pidfd: int | None = None
        self._input = bytearray()
        self._usage_cache: dict[int, psutil.Process] = {}
        self._on_end: Callable[[Run], None] | None = None
        self._drain_timer: asyncio.TimerHandle | None = None
        self._flush_timer: asyncio.TimerHandle | None = None
        self._hold_timer: asyncio.TimerHandle | None = None
        self._order = Interleaving(recording.ingest)

    # ----- starting -------------------------------------------------------------------------
    @classmethod
    def start(
        cls,
        record: RunRecord,
        command: str,
        cwd: str,
        env: dict[str, str],
        merge_stderr: bool,
        columns: int,
        rows: int,
        on_end: Callable[[Run], None],
        max_log_bytes: int = DEFAULT_MAX_BYTES,
    ) -> Run:
        log_dir = Path(record.log_dir)
        log_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        # the files first, then the child: nothing is started that could not be recorded
        recording = Recording(log_dir, columns, rows, live=True, max_log_bytes=max_log_bytes)
        run = cls(record, recording, columns, rows)
        run._on_end = on_end
        child_env = {**env, RUN_MARKER_ENV: run.marker}
        try:
            run._child = spawn.spawn(command, cwd, child_env, columns, rows, merge_stderr)
        except BaseException:
            run.recording.finish()  # close the log files it opened
            raise
        record.pid = run._child.pid
        loop = asyncio.get_running_loop()
        run._open_fds = {run._child.terminal_fd: "stdout"}
        if run._child.stderr_fd is not None:
            run._open_fds[run._child.stderr_fd] = "stderr"
        for fd, stream in run._open_fds.items():
            loop.add_reader(fd, run._on_readable, fd, stream)
        run._watch_exit(loop)
        return run

    def _flush_soon(self) -> None:
        """Output waits in buffers at most FLUSH_SECONDS before it reaches the log files, for
        readers outside the server (`tail -f`, `--raw`) and so that a server killed a moment
        after a line loses nothing; a quiet run costs no timer."""
        if self._flush_timer is None:
            self._flush_timer = asyncio.get_running_loop().call_later(FLUSH_SECONDS, self._flush)

    def _flush(self) -> None:
        self._flush_timer = None
        if not self.ended.is_set():
            self.recording.flush()

    @classmethod
    def from_disk(cls, record: RunRecord, columns: int, rows: int) -> Run:
        """A run of an earlier server: its logs are readable, nothing is running."""
        run = cls(record, Recording(Path(record.log_dir), columns, rows, live=False), columns, rows)
        run._exited = True
        run.ended.set()
        return run

    def _watch_exit(self, loop: asyncio.AbstractEventLoop) -> None:
        assert self._child is not None
        try:
            self._pidfd = os.pidfd_open(self._child.pid)
        except (AttributeError, OSError):
            # No pidfd (macOS, old kernels): one thread blocks in wait() for this child.
            popen = self._child.popen
            threading.Thread(
                target=lambda: (popen.wait(), loop.call_soon_threadsafe(self._on_exit)),
                name=f"wait-{popen.pid}",
                daemon=True,
            ).start()
            return
        loop.add_reader(self._pidfd, self._on_exit)

    # ----- the hot path ---------------------------------------------------------------------
    def _on_readable(self, fd: int, stream: str) -> None:
        read = last = 0
        held = self._order.holding
        try:
            for _ in range(READS_PER_WAKEUP):
                try:
                    data = os.read(fd, 65536)
                except BlockingIOError:
                    break
                except OSError:
                    data = b""  # EIO: every slave end is closed and the buffer is drained
                if not data:
                    self._order.read_dry(stream, 0)
                    self._close_fd(fd)
                    return
                self._order.add(stream, data)
                read, last = read + 1, len(data)
            self._order.read_dry(stream, last)
        finally:
            if read or (held and not self._order.holding):
                # waiters wake once per wakeup, not once per 4 KiB read
                self._notify()
                self._flush_soon()
            self._time_hold()

    def _time_hold(self) -> None:
        """Held output waits at most HOLD_SECONDS from when holding began."""
        if self._order.holding:
            if self._hold_timer is None:
                loop = asyncio.get_running_loop()
                self._hold_timer = loop.call_later(HOLD_SECONDS, self._release_held)
        elif self._hold_timer is not None:
            self._hold_timer.cancel()
            self._hold_timer = None

    def _release_held(self) -> None:
        self._hold_timer = None
        if self._order.holding:
            self._order.expire()
            self._notify()
            self._flush_soon()

    def _close_fd(self, fd: int) -> None:
        if self._open_fds.pop(fd, None) is None:
            return
        asyncio.get_running_loop().remove_reader(fd)
        os.close(fd)
        self._maybe_finish()

    def _on_exit(self) -> None:
        assert self._child is not None
        if self._child.popen.poll() is None:
            return
        loop = asyncio.get_running_loop()
        if self._pidfd is not None:
            loop.remove_reader(self._pidfd)
            os.close(self._pidfd)
            self._pidfd = None
        self._exited = True
        if self._open_fds:
            self._drain_timer = loop.call_later(DRAIN_GRACE, self._hang_up)
        self._maybe_finish()

    def _hang_up(self) -> None:
        """Descendants still hold the terminal: take what is buffered, then close it (SIGHUP)."""
        for fd, stream in list(self._open_fds.items()):
            self._on_readable(fd, stream)
            self._close_fd(fd)

    def _maybe_finish(self) -> None:
        if not self._exited or self._open_fds or self.ended.is_set():
            return
        if self._drain_timer is not None:
            self._drain_timer.cancel()
        self._order.release()
        self._time_hold()
        assert self._child is not None
        # a log that cannot be finished must not keep the run "running" forever
        with contextlib.suppress(OSError):
            self.recording.finish()
        returncode = self._child.popen.returncode
        exit_code, signal_name = describe_wait_status(returncode)
        self.record.exit_code, self.record.signal = exit_code, signal_name
        self.record.ended_at = now_iso()
        if self.stop_requested:
            self.record.status = Status.STOPPED
        else:
            self.record.status = Status.EXITED if returncode == 0 else Status.FAILED
        self.ended.set()
        self._notify()
        if self._on_end is not None:
            self._on_end(self)

    # ----- readers --------------------------------------------------------------------------
    @property
    def running(self) -> bool:
        return not self.ended.is_set()

    def _notify(self) -> None:
        self.generation += 1
        if self._waiter is not None:
            if not self._waiter.done():
                self._waiter.set_result(None)
            self._waiter = None

    async def wait_changed(self, seen_generation: int, timeout: float) -> None:
        """Return once output newer than `seen_generation` exists or the run ends, or at timeout.

        A generation count, not a cleared event: output that arrived while the caller was busy
        reading is never missed."""
        if self.generation != seen_generation or self.ended.is_set():
            return
        if self._waiter is None:
            self._waiter = asyncio.get_running_loop().create_future()
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(asyncio.shield(self._waiter), timeout)

    def nudge(self) -> None:
        """Ask the foreground program to repaint (full-screen programs redraw on SIGWINCH)."""
        if self._child is None or self._child.terminal_fd not in self._open_fds:
            return
        with contextlib.suppress(OSError):
            os.killpg(os.tcgetpgrp(self._child.terminal_fd), signal.SIGWINCH)

    def usage(self) -> tuple[float, int, list[int]]:
        if not self.running or self._child is None:
            return 0.0, 0, []
        processes = []
        for process in tree.find_tree(self._child.pid, self.marker):
            processes.append(self._usage_cache.setdefault(process.pid, process))
        return tree.usage(processes)

    # ----- input and size -------------------------------------------------------------------
    def write(self, data: bytes) -> None:
        if not self.running or self._child is None or self._child.terminal_fd not in self._open_fds:
            raise PersistprocError("the process is not running: input cannot be delivered")
        if len(self._input) + len(data) > MAX_PENDING_INPUT:
            raise PersistprocError("the process is not reading its input: 1 MiB already waits")
        self._input += data
        self._flush_input()

    def _flush_input(self) -> None:
        assert self._child is not None
        fd = self._child.terminal_fd
        loop = asyncio.get_running_loop()
        try:
            written = os.write(fd, self._input) if self._input else 0
        except BlockingIOError:
            written = 0
        except OSError:
            self._input.clear()
            written = 0
        del self._input[:written]
        loop.remove_writer(fd)
        if self._input and fd in self._open_fds:
            loop.add_writer(fd, self._flush_input)

    def resize(self, columns: int, rows: int) -> None:
        self.columns, self.rows = columns, rows
        if self._child is not None and self.running:
            # stderr's terminal first, so a SIGWINCH handler that reads either sees the new size
            for fd in reversed(self._child.fds):
                if fd in self._open_fds:
                    spawn.set_window_size(fd, columns, rows)
        self.recording.resize(columns, rows)

    # ----- stopping -------------------------------------------------------------------------
    async def sweep(self) -> None:
        """Kill what is left of an ended run: descendants that ignored the terminal's hangup or
        left its session. Found by the run marker only: the root's pid may belong to another
        process by now."""
        # as stop does: return once they are gone, so a restart never overlaps them
        await asyncio.to_thread(lambda: tree.kill_and_wait(tree.find_tree(None, self.marker)))

    async def stop(self, force: bool, timeout: float) -> None:
        """Signal the whole tree; SIGKILL after timeout; return when all of it is gone."""
        if self._child is None or not self.running:
            return
        self.stop_requested = True
        await tree.stop_tree(self._child.pid, self.marker, lambda: self._exited, force, timeout)
        if self._open_fds:
            self._hang_up()
        await self.ended.wait()
