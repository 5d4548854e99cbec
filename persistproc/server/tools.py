"""MCP tools: each parses its arguments, makes one supervisor call, and returns its result.

Errors a client caused come back as tool errors with a message saying what was wrong; anything
unexpected is logged here and reported without its traceback.
"""

from __future__ import annotations

import asyncio
import logging
import os
import warnings
from collections.abc import Awaitable
from typing import Annotated, Any, Literal, TypeVar
from urllib.parse import unquote, urlparse

from fastmcp import Context, FastMCP
from fastmcp.exceptions import ToolError
from pydantic import Field

from persistproc import __version__
from persistproc.errors import PersistprocError
from persistproc.keys import KEY_NAMES
from persistproc.supervisor import Supervisor

log = logging.getLogger("persistproc")
T = TypeVar("T")

Pid = Annotated[
    int | None, Field(description="OS pid of the process's current run (or of an earlier run).")
]
Name = Annotated[str | None, Field(description="The process's name, as list_processes shows it.")]
Stream = Annotated[
    Literal["combined", "stdout", "stderr"],
    Field(
        description="Which output: 'combined' (both, as the terminal shows them), or one stream."
    ),
]
INSTRUCTIONS = """persistproc runs long-lived development processes (dev servers, bundlers, test
watchers) under real terminals and keeps their output. Prefer it over running such commands in your own
shell: they keep running between your turns, people can attach to the same process, and you can read
clean output (no escape codes, progress bars collapsed) at any time. Typical loop: start_process with
wait_for set to the line that means ready; get_process_output with since=<cursor> to read only what is
new; wait_for_output after making a change; restart_process when config changes."""


async def _call(operation: Awaitable[T]) -> T:
    try:
        return await operation
    except PersistprocError as error:
        # the caller's mistake, answered in the result: not worth a line in the server's log
        raise ToolError(str(error), log_level=logging.DEBUG) from None
    except (ToolError, asyncio.CancelledError):
        raise
    except Exception:
        log.exception("tool failed")
        raise ToolError(
            "internal error in persistproc; the server log has the details",
            log_level=logging.DEBUG,  # logged just above, with the details
        ) from None


async def _client_root(ctx: Context | None) -> str | None:
    """The client's first MCP root as a directory, when the client offers roots."""
    if ctx is None:
        return None
    try:
        session = ctx.session
        capabilities = session.client_capabilities
        if capabilities is None or capabilities.roots is None or not session.can_send_request:
            return None
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # roots are deprecated in the newest protocol only
            result = await asyncio.wait_for(session.list_roots(), timeout=2)
    except Exception:
        return None
    for root in result.roots:
        url = urlparse(str(root.uri))
        if url.scheme == "file" and os.path.isdir(unquote(url.path)):
            return unquote(url.path)
    return None


def build_mcp(supervisor: Supervisor) -> FastMCP:
    mcp = FastMCP(
        name="persistproc", instructions=INSTRUCTIONS, version=__version__, mask_error_details=True
    )

    @mcp.tool
    async def start_process(
        command: Annotated[
            str,
            Field(description="Shell command line, e.g. 'npm run dev' (pipes, &&, VAR=1 work)."),
        ],
        working_directory: Annotated[
            str | None,
            Field(
                description="Absolute directory to run in. Default: the client's first MCP root,"
                " else the server's directory (the result says which was used)."
            ),
        ] = None,
        environment: Annotated[
            dict[str, str] | None,
            Field(description="Environment variables layered over the server's."),
        ] = None,
        name: Annotated[
            str | None,
            Field(description="Stable name for the process (default: derived from the command)."),
        ] = None,
        wait_for: Annotated[
            str | None,
            Field(
                description="Regex: wait until a clean output line matches (e.g. 'ready|listening')."
            ),
        ] = None,
        wait_timeout: Annotated[
            float, Field(description="Seconds to wait for wait_for before giving up.")
        ] = 30,
        merge_stderr: Annotated[
            bool, Field(description="Put stderr on the same terminal as stdout (one stream).")
        ] = False,
        replace: Annotated[
            bool,
            Field(
                description="If the same command already runs here, restart it instead of reusing it."
            ),
        ] = False,
        ctx: Context | None = None,
    ) -> dict[str, Any]:
        """Start a long-running command under a terminal and keep its output. If the same command is
        already running in the same directory, returns it (already_running: true) instead of
        starting a duplicate that would fight for its port. With wait_for, returns once a matching
        line appears (ready: true), the process exits, or wait_timeout passes, with the last lines."""
        directory, note = working_directory, None
        if directory is None:
            directory = await _client_root(ctx)
            if directory is None:
                directory = supervisor.default_directory
                note = f"no working_directory given and no MCP root offered: used {directory}"
        result = await _call(
            supervisor.start_and_wait(
                wait_for,
                wait_timeout,
                command=command,
                working_directory=directory,
                environment=environment,
                name=name,
                merge_stderr=merge_stderr,
                replace=replace,
            )
        )
        return {**result, "note": note} if note else result

    @mcp.tool
    async def stop_process(
        pid: Pid = None,
        name: Name = None,
        force: Annotated[
            bool, Field(description="SIGKILL at once instead of SIGTERM first.")
        ] = False,
        timeout: Annotated[float, Field(description="Seconds between SIGTERM and SIGKILL.")] = 10,
    ) -> dict[str, Any]:
        """Stop a process and everything it started (SIGTERM to the whole tree, SIGKILL after
        timeout). Returns when all of it is gone, with the exit code or signal."""
        return await _call(supervisor.stop(pid, name, force, timeout))

    @mcp.tool
    async def restart_process(
        pid: Pid = None,
        name: Name = None,
        wait_for: Annotated[
            str | None, Field(description="Regex: wait until a clean output line matches.")
        ] = None,
        wait_timeout: Annotated[float, Field(description="Seconds to wait for wait_for.")] = 30,
    ) -> dict[str, Any]:
        """Stop the process (if running) and start it again with the same command, directory and
        environment. Keeps the name, gives a new pid; works on exited processes too."""
        return await _call(supervisor.restart_and_wait(pid, name, wait_for, wait_timeout))

    @mcp.tool
    async def list_processes(
        working_directory: Annotated[
            str | None, Field(description="Only processes running in this directory or below it.")
        ] = None,
    ) -> dict[str, Any]:
        """Every process the server knows: running ones and exited ones with their exit status.
        get_process_status adds log paths, listening ports, CPU and memory."""
        return {"processes": supervisor.list(working_directory)}

    @mcp.tool
    async def get_process_status(pid: Pid = None, name: Name = None) -> dict[str, Any]:
        """A process's info plus the TCP ports its tree listens on, its CPU and memory use."""
        return await _call(supervisor.status(pid, name))

    @mcp.tool
    async def get_process_output(
        pid: Pid = None,
        name: Name = None,
        stream: Stream = "combined",
        lines: Annotated[int, Field(description="How many lines at most (1 to 10000).")] = 100,
        since: Annotated[
            int | None,
            Field(
                description="Return the lines after this line number: pass the cursor of the"
                " previous call to read only what is new."
            ),
        ] = None,
        grep: Annotated[
            str | None,
            Field(description="Regex: only lines that match (the last `lines` of them)."),
        ] = None,
        run: Annotated[
            int | None, Field(description="Read an earlier run (1 = first); default the latest.")
        ] = None,
    ) -> dict[str, Any]:
        """Clean text output (no escape codes, progress bars collapsed): the last `lines` lines, or
        with since=<cursor> only the lines after it. The last line may be unfinished (a prompt).
        Returns text, cursor, first_line, truncated (lines were left out: past the size of one
        answer, or dropped by the log size cap, then first_available_line says where the log now
        begins), and the process status."""
        return await _call(supervisor.output(pid, name, stream, lines, since, grep, run))

    @mcp.tool
    async def get_process_screen(pid: Pid = None, name: Name = None) -> dict[str, Any]:
        """What the process's terminal shows now: rows of text, cursor, size, and whether a
        full-screen program (alternate screen) is active. Use it for TUIs and prompts."""
        return await _call(supervisor.screen(pid, name))

    @mcp.tool
    async def send_input(
        pid: Pid = None,
        name: Name = None,
        text: Annotated[str | None, Field(description="Text to type (sent as is).")] = None,
        keys: Annotated[
            list[str] | None,
            Field(
                description="Named keys sent after the text: "
                + ", ".join(KEY_NAMES)
                + ", any ctrl-<letter>, alt-<char>."
            ),
        ] = None,
    ) -> dict[str, Any]:
        """Type into the process's terminal. To answer a prompt: text='yes', keys=['enter'].
        keys=['ctrl-c'] interrupts it as Ctrl-C would."""
        return await _call(supervisor.send(pid, name, text, keys))

    @mcp.tool
    async def wait_for_output(
        pattern: Annotated[str, Field(description="Regex a clean output line must match.")],
        pid: Pid = None,
        name: Name = None,
        timeout: Annotated[float, Field(description="Seconds to wait at most.")] = 30,
        since: Annotated[
            int | None,
            Field(description="Look at lines after this line number (default: only new output)."),
        ] = None,
        stream: Stream = "combined",
    ) -> dict[str, Any]:
        """Block until a new output line matches the pattern, the process exits, or the timeout.
        Returns matched, the line, and a cursor for the next call."""
        return await _call(supervisor.wait(pid, name, pattern, timeout, since, stream))

    @mcp.tool
    async def remove_process(pid: Pid = None, name: Name = None) -> dict[str, Any]:
        """Stop the process if it runs, forget it, and delete its logs."""
        return await _call(supervisor.remove(pid, name))

    return mcp
