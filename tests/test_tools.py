"""The MCP tools, called in-process through fastmcp's in-memory client.

Each test gets its own Supervisor (data in tmp_path) and a connected client. Processes are the
fixture programs in fixtures/ or small shell command lines. Tests wait on conditions (wait_for,
wait_for_output, or polling with a deadline), never on fixed sleeps.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shlex
import sys
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import in_memory
import psutil
import pytest
from fastmcp import Client
from survivors import tagged

from persistproc import grep
from persistproc.config import RUN_MARKER_ENV
from persistproc.server.app import serve_input_schemas
from persistproc.server.tools import build_mcp
from persistproc.supervisor import Supervisor

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
# Set in the test process's environment, so every child of this test's supervisor carries it: the
# safety net kills leftovers of this test only, never processes of tests running beside it.
TOKEN_ENV = "PERSISTPROC_TEST_TOOLS_TOKEN"
DEADLINE = 15.0
MAX_RESPONSE = 300_000
NEVER = r"(?!)"  # a pattern that matches no line


def fixture(name: str, *args: str) -> str:
    """The shell command line that runs a fixture program with this interpreter."""
    words = [sys.executable, str(FIXTURES / f"{name}.py"), *args]
    return " ".join(shlex.quote(word) for word in words)


class Tools:
    """The connected client plus helpers that check the shape of results."""

    def __init__(
        self, client: Client[Any], supervisor: Supervisor, directory: Path, token: str
    ) -> None:
        self.client = client
        self.supervisor = supervisor
        self.directory = directory
        self.token = token  # the value of TOKEN_ENV in this test's children

    async def call(self, tool: str, **arguments: Any) -> Any:
        return await self.client.call_tool(tool, arguments, raise_on_error=False)

    async def ok(self, tool: str, **arguments: Any) -> dict[str, Any]:
        result = await self.call(tool, **arguments)
        assert not result.is_error, f"{tool}({arguments}) failed: {_text(result)}"
        data = result.structured_content
        assert isinstance(data, dict), f"{tool} returned no structured content: {result}"
        return data

    async def error(self, tool: str, **arguments: Any) -> str:
        """Call a tool that must fail; return its message, which must be clean and useful."""
        result = await self.call(tool, **arguments)
        message = _text(result)
        assert result.is_error, f"{tool}({arguments}) should have failed, got {message[:2000]}"
        assert "Traceback" not in message, message
        assert "internal error" not in message, message
        assert message.strip(), f"{tool}({arguments}) failed without a message"
        return message

    async def start(self, command: str, **arguments: Any) -> dict[str, Any]:
        arguments.setdefault("working_directory", str(self.directory))
        return await self.ok("start_process", command=command, **arguments)

    async def output(self, name: str, **arguments: Any) -> dict[str, Any]:
        return await self.ok("get_process_output", name=name, **arguments)

    async def status(self, name: str) -> dict[str, Any]:
        return await self.ok("get_process_status", name=name)

    async def until(
        self, name: str, predicate: Callable[[dict[str, Any]], bool], what: str
    ) -> dict[str, Any]:
        """Poll get_process_status until predicate holds, failing after DEADLINE seconds."""
        deadline = time.monotonic() + DEADLINE
        while True:
            status = await self.status(name)
            if predicate(status):
                return status
            assert time.monotonic() < deadline, f"{name}: {what} did not happen: {status}"
            await asyncio.sleep(0.02)

    async def ended(self, name: str) -> dict[str, Any]:
        return await self.until(name, lambda s: s["status"] != "running", "exit")

    async def names(self) -> list[str]:
        listing = await self.ok("list_processes")
        return [p["name"] for p in listing["processes"]]


def _text(result: Any) -> str:
    return "\n".join(getattr(block, "text", "") for block in result.content)


def _size(data: Any) -> int:
    return len(json.dumps(data))


@pytest.fixture
async def tools(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Tools]:
    work = tmp_path / "work"
    work.mkdir()
    async with in_memory.serve(tmp_path / "data", monkeypatch, TOKEN_ENV) as served:
        client, supervisor, token = served
        yield Tools(client, supervisor, work, token)


async def start_sentinel(tools: Tools) -> dict[str, Any]:
    started = await tools.start(fixture("echo"), name="sentinel", wait_for="^READY$")
    assert started["ready"] is True, started
    return started


async def check_sentinel(tools: Tools, started: dict[str, Any], word: str) -> None:
    """The sentinel still runs with its first pid, its output is intact and it still answers."""
    status = await tools.status("sentinel")
    assert status["status"] == "running", status
    assert status["pid"] == started["pid"]
    assert status["restarts"] == 0
    await tools.ok("send_input", name="sentinel", text=word, keys=["enter"])
    waited = await tools.ok(
        "wait_for_output", name="sentinel", pattern=f"^echo: {word}$", since=0, timeout=10
    )
    assert waited["matched"] is True, waited
    page = await tools.output("sentinel", since=0)
    lines = page["text"].split("\n")
    assert lines[0] == "READY"
    assert f"echo: {word}" in lines


# ----- happy paths ----------------------------------------------------------------------------


async def test_start_process_waits_for_ready_and_reuses_a_running_duplicate(tools: Tools) -> None:
    command = fixture("echo")
    started = await tools.start(command, name="echoer", wait_for="READY", wait_timeout=10)
    assert started["ready"] is True
    assert started["matched_line"] == "READY"
    assert started["wait_result"] == "matched"
    assert started["already_running"] is False
    assert started["status"] == "running"
    assert started["name"] == "echoer"
    assert started["command"] == command
    assert started["working_directory"] == str(tools.directory)
    assert isinstance(started["pid"], int) and psutil.pid_exists(started["pid"])
    assert started["run"] == 1 and started["restarts"] == 0
    assert "READY" in started["last_lines"]
    assert "note" not in started

    again = await tools.start(command)
    assert again["already_running"] is True
    assert again["pid"] == started["pid"]
    assert again["name"] == "echoer"
    assert await tools.names() == ["echoer"]


async def test_the_safety_net_sees_this_tests_children(tools: Tools) -> None:
    started = await tools.start(fixture("echo"), name="seen", wait_for="READY")
    assert started["pid"] in {process.pid for process in tagged(tools.token, TOKEN_ENV)}
    await tools.ok("stop_process", name="seen")
    assert tagged(tools.token, TOKEN_ENV) == []


async def test_start_without_working_directory_says_which_it_used(tools: Tools) -> None:
    # The in-memory transport has no back-channel for roots/list, so no root is ever offered.
    started = await tools.ok("start_process", command="echo no-directory", name="nodir")
    assert started["working_directory"] == tools.supervisor.default_directory
    assert "no working_directory given" in started["note"]
    assert tools.supervisor.default_directory in started["note"]


async def test_start_with_wait_for_reports_exit_and_timeout(tools: Tools) -> None:
    exited = await tools.start("echo only-this", name="short", wait_for="never-printed")
    assert exited["ready"] is False
    assert exited["wait_result"] == "exited"
    assert exited["matched_line"] is None
    assert exited["status"] == "exited" and exited["exit_code"] == 0
    assert exited["last_lines"] == ["only-this"]

    slow = await tools.start(fixture("echo"), name="slow", wait_for=NEVER, wait_timeout=0.2)
    assert slow["ready"] is False
    assert slow["wait_result"] == "timeout"
    assert slow["status"] == "running"


async def test_shell_syntax_works(tools: Tools) -> None:
    await tools.start("echo a | tr a b && echo c", name="pipeline")
    status = await tools.ended("pipeline")
    assert status["status"] == "exited" and status["exit_code"] == 0
    page = await tools.output("pipeline")
    assert page["text"] == "b\nc"


async def test_environment_is_layered_over_the_servers(tools: Tools) -> None:
    command = 'echo "FOO=$FOO" && echo "$FOO" | tr a-z A-Z && echo "TERM=$TERM" && echo "$PATH"'
    await tools.start(command, name="env", environment={"FOO": "from-client"})
    status = await tools.ended("env")
    assert status["exit_code"] == 0, await tools.output("env")
    lines = (await tools.output("env"))["text"].split("\n")
    assert lines[0] == "FOO=from-client"
    assert lines[1] == "FROM-CLIENT"  # tr was found on the inherited PATH
    assert lines[2] == "TERM=xterm-256color"
    assert lines[3] == os.environ["PATH"]

    # The variable belongs to that process only; the marker is in every child's environment.
    await tools.start(f'echo "FOO=[$FOO]" "marker=${RUN_MARKER_ENV}"', name="plain")
    await tools.ended("plain")
    text = (await tools.output("plain"))["text"]
    assert re.fullmatch(r"FOO=\[\] marker=[0-9a-f]{32}", text), text

    # Overriding PATH is the client's choice, and the missing program is named before starting.
    message = await tools.error(
        "start_process",
        command="ls",
        working_directory=str(tools.directory),
        environment={"PATH": str(tools.directory)},
    )
    assert "'ls'" in message and "PATH" in message


async def test_stop_process_and_stop_again(tools: Tools) -> None:
    started = await tools.start(fixture("sigtrap"), name="trap", wait_for="READY")
    stopped = await tools.ok("stop_process", pid=started["pid"], timeout=5)
    assert stopped["status"] == "stopped"
    assert stopped["exit_code"] == 143
    assert "note" not in stopped
    assert not psutil.pid_exists(started["pid"]) or (
        psutil.Process(started["pid"]).status() == psutil.STATUS_ZOMBIE
    )
    page = await tools.output("trap")
    assert "got SIGTERM" in page["text"].split("\n")

    again = await tools.ok("stop_process", name="trap")
    assert again["status"] == "stopped"
    assert again["note"] == "the process was not running"


async def test_stop_process_force_kills_a_process_that_ignores_sigterm(tools: Tools) -> None:
    await tools.start(fixture("sigtrap", "--ignore-term"), name="stubborn", wait_for="READY")
    began = time.monotonic()
    stopped = await tools.ok("stop_process", name="stubborn", force=True)
    assert time.monotonic() - began < 5
    assert stopped["status"] == "stopped"
    assert stopped["signal"] == "SIGKILL"


async def test_restart_running_process_keeps_name_and_earlier_runs(tools: Tools) -> None:
    first = await tools.start(fixture("echo"), name="svc", wait_for="READY")
    await tools.ok("send_input", name="svc", text="first run", keys=["enter"])
    assert (await tools.ok("wait_for_output", name="svc", pattern="echo: first run", since=0))[
        "matched"
    ]

    restarted = await tools.ok("restart_process", name="svc", wait_for="READY", wait_timeout=10)
    assert restarted["ready"] is True
    assert restarted["pid"] != first["pid"]
    assert restarted["name"] == "svc"
    assert restarted["run"] == 2 and restarted["restarts"] == 1
    assert restarted["status"] == "running"

    # The pid of the earlier run still finds the process.
    by_old_pid = await tools.ok("get_process_status", pid=first["pid"])
    assert by_old_pid["name"] == "svc" and by_old_pid["pid"] == restarted["pid"]

    latest = await tools.output("svc")
    assert latest["text"] == "READY"
    earlier = await tools.output("svc", run=1)
    assert earlier["text"].split("\n") == ["READY", "first run", "echo: first run"]
    message = await tools.error("get_process_output", name="svc", run=3)
    assert "no run 3" in message and "1, 2" in message


async def test_restart_an_exited_process(tools: Tools) -> None:
    first = await tools.start("echo once", name="once")
    await tools.ended("once")
    restarted = await tools.ok("restart_process", name="once", wait_for="^once$", wait_timeout=10)
    assert restarted["ready"] is True
    assert restarted["pid"] != first["pid"]
    assert restarted["run"] == 2 and restarted["restarts"] == 1
    status = await tools.ended("once")
    assert status["status"] == "exited" and status["exit_code"] == 0
    assert (await tools.output("once"))["text"] == "once"
    assert (await tools.output("once", run=1))["text"] == "once"


async def test_list_processes_filters_by_working_directory(tools: Tools) -> None:
    dirs = {key: tools.directory / key for key in ("a", "a/sub", "ab", "b")}
    for path in dirs.values():
        path.mkdir(parents=True, exist_ok=True)
    for key, path in dirs.items():
        await tools.start(fixture("echo"), name=key.replace("/", "-"), working_directory=str(path))

    async def listed(directory: str | None) -> set[str]:
        arguments = {} if directory is None else {"working_directory": directory}
        result = await tools.ok("list_processes", **arguments)
        return {p["name"] for p in result["processes"]}

    assert await listed(None) == {"a", "a-sub", "ab", "b"}
    assert await listed(str(dirs["a"])) == {"a", "a-sub"}
    assert await listed(str(dirs["a"]) + "/") == {"a", "a-sub"}
    assert await listed(str(dirs["a/sub"])) == {"a-sub"}
    assert await listed(str(tools.directory)) == {"a", "a-sub", "ab", "b"}
    assert await listed(str(tools.directory / "elsewhere")) == set()
    entry = (await tools.ok("list_processes", working_directory=str(dirs["b"])))["processes"][0]
    assert entry["working_directory"] == str(dirs["b"])
    assert entry["status"] == "running"


async def test_remove_process_forgets_it_and_deletes_its_logs(tools: Tools) -> None:
    started = await tools.start(fixture("echo"), name="doomed", wait_for="READY")
    run_dir = Path(started["log_path"]).parent
    assert run_dir.is_dir()
    removed = await tools.ok("remove_process", name="doomed")
    assert removed["removed"] is True
    assert removed["status"] == "stopped"
    assert not run_dir.exists()
    assert not run_dir.parent.exists()
    assert await tools.names() == []
    message = await tools.error("get_process_output", name="doomed")
    assert "'doomed'" in message
    # The name is free again.
    again = await tools.start("echo reborn", name="doomed")
    assert again["run"] == 1 and again["restarts"] == 0


async def test_output_streams_are_separate_by_default(tools: Tools) -> None:
    await tools.start(fixture("colors", "--stderr"), name="colors")
    await tools.ended("colors")
    combined = (await tools.output("colors"))["text"].split("\n")
    stdout = (await tools.output("colors", stream="stdout"))["text"].split("\n")
    stderr = await tools.output("colors", stream="stderr")
    errors = ["err line 1", "err line 2", "err line 3"]
    assert all(line in combined for line in errors)
    assert "red green blue" in combined and "READY" in combined
    assert not any(line.startswith("err line") for line in stdout)
    assert "red green blue" in stdout and stdout[-1] == "READY"
    assert stderr["text"].split("\n") == errors
    assert stderr["stream"] == "stderr"
    assert "isatty: stdout=True stderr=True stdin=True" in combined


async def test_stdout_stream_never_holds_stderr_lines(tools: Tools) -> None:
    """The stdout stream forks from the combined one when stderr first speaks: the stderr chunk
    that caused the fork must not land in stdout."""
    command = "echo out1; echo err1 >&2; sleep 0.2; echo err2 >&2; echo out2"
    await tools.start(command, name="split")
    status = await tools.ended("split")
    assert status["exit_code"] == 0
    combined = (await tools.output("split"))["text"].split("\n")
    assert sorted(combined) == ["err1", "err2", "out1", "out2"]
    assert (await tools.output("split", stream="stderr"))["text"] == "err1\nerr2"
    assert (await tools.output("split", stream="stdout"))["text"] == "out1\nout2"


async def test_merge_stderr_puts_stderr_on_stdout(tools: Tools) -> None:
    started = await tools.start(fixture("colors", "--stderr"), name="merged", merge_stderr=True)
    assert started["merge_stderr"] is True
    await tools.ended("merged")
    stdout = (await tools.output("merged", stream="stdout"))["text"].split("\n")
    assert [line for line in stdout if line.startswith("err line")] == [
        "err line 1",
        "err line 2",
        "err line 3",
    ]
    assert "READY" in stdout
    stderr = await tools.output("merged", stream="stderr")
    assert stderr["text"] == ""
    assert stderr["line_count"] == 0
    assert stderr["total_lines"] == 0


async def test_output_tail_since_and_grep(tools: Tools) -> None:
    await tools.start(fixture("flood", "300", "--stdout-only"), name="flood")
    status = await tools.ended("flood")
    assert status["status"] == "failed" and status["exit_code"] == 1

    tail = await tools.output("flood", lines=3)
    assert tail["text"].split("\n") == [
        '  File "/srv/app/server.py", line 17, in main',
        '    raise ValueError("boom")',
        "ValueError: boom",
    ]
    assert tail["line_count"] == 3
    total = tail["total_lines"]
    assert total == 1 + 300 + 6
    assert tail["cursor"] == total and tail["last_line"] == total
    assert tail["first_line"] == total - 2

    first = await tools.output("flood", since=0, lines=2)
    assert first["text"] == "READY\nline 000001 ok the quick brown fox jumps"
    assert first["cursor"] == 2 and first["truncated"] is True
    following = await tools.output("flood", since=first["cursor"], lines=1)
    assert following["text"] == "line 000002 ok the quick brown fox jumps"
    assert following["cursor"] == 3

    rest = await tools.output("flood", since=300, lines=10_000)
    assert rest["first_line"] == 301 and rest["last_line"] == total
    assert rest["truncated"] is False and rest["cursor"] == total

    past = await tools.output("flood", since=10**6, lines=1)
    assert "past the end" in past["note"]
    assert past["text"] == "READY"

    grep_tail = await tools.output("flood", grep=r"line 00010\d", lines=3)
    assert [line[:11] for line in grep_tail["text"].split("\n")] == [
        "line 000107",
        "line 000108",
        "line 000109",
    ]
    grep_since = await tools.output("flood", grep=r"line 00010\d", lines=3, since=0)
    assert [line[:11] for line in grep_since["text"].split("\n")] == [
        "line 000100",
        "line 000101",
        "line 000102",
    ]
    assert grep_since["truncated"] is True
    assert grep_since["cursor"] == 1 + 102
    none = await tools.output("flood", grep="no such text")
    assert none["text"] == "" and none["line_count"] == 0


async def test_prompt_line_is_shown_but_not_counted_by_the_cursor(tools: Tools) -> None:
    await tools.start(fixture("prompt"), name="prompt", wait_for=r"^name\?")
    page = await tools.output("prompt")
    assert page["text"] == "READY\nname?"
    assert page["total_lines"] == 2
    assert page["cursor"] == 1  # the unfinished prompt line is not counted

    again = await tools.output("prompt", since=page["cursor"])
    assert again["text"] == "name?"
    assert again["cursor"] == 1

    sent = await tools.ok("send_input", name="prompt", text="bob", keys=["enter"])
    assert sent["bytes_sent"] == 4
    waited = await tools.ok("wait_for_output", name="prompt", pattern="hello", since=1)
    assert waited["matched"] is True and waited["line"] == "hello, bob!"
    after = await tools.output("prompt", since=page["cursor"])
    assert after["text"] == "name? bob\nhello, bob!"
    assert after["first_line"] == 2 and after["cursor"] == 3
    status = await tools.ended("prompt")
    assert status["status"] == "exited" and status["exit_code"] == 0


async def test_wait_for_output_default_since_sees_only_new_lines(tools: Tools) -> None:
    await tools.start(fixture("prompt"), name="prompt", wait_for=r"^name\?")
    # READY is old: by default it is not looked at.
    old = await tools.ok("wait_for_output", name="prompt", pattern="^READY$", timeout=0.2)
    assert old["matched"] is False and old["reason"] == "timeout"
    assert old["cursor"] == 1
    # ... unless since says so.
    from_start = await tools.ok("wait_for_output", name="prompt", pattern="^READY$", since=0)
    assert from_start["matched"] is True and from_start["line_number"] == 1
    # The unfinished prompt line is not finished output yet, so it still counts as new.
    prompt = await tools.ok("wait_for_output", name="prompt", pattern=r"^name\?", timeout=5)
    assert prompt["matched"] is True
    assert prompt["line"] == "name?" and prompt["line_number"] == 2


async def test_wait_for_output_matches_lines_that_arrive_later(tools: Tools) -> None:
    await tools.start(
        "i=0; while true; do i=$((i+1)); echo tick $i; sleep 0.05; done", name="ticker"
    )
    await tools.ok("wait_for_output", name="ticker", pattern="^tick 2$", since=0, timeout=10)
    before = (await tools.output("ticker"))["cursor"]
    waited = await tools.ok("wait_for_output", name="ticker", pattern=r"^tick \d+$", timeout=10)
    assert waited["matched"] is True and waited["reason"] == "matched"
    assert waited["line_number"] > before
    assert waited["cursor"] == waited["line_number"]
    assert waited["process"]["name"] == "ticker"


async def test_wait_for_output_returns_on_exit_and_timeout_zero(tools: Tools) -> None:
    await tools.start("echo bye", name="bye")
    result = await tools.ok("wait_for_output", name="bye", pattern=NEVER, timeout=10)
    assert result["matched"] is False and result["reason"] == "exited"
    assert result["line"] is None
    await tools.start(fixture("echo"), name="echoer", wait_for="READY")
    began = time.monotonic()
    result = await tools.ok("wait_for_output", name="echoer", pattern=NEVER, timeout=0)
    assert result["reason"] == "timeout"
    assert time.monotonic() - began < 2


async def test_send_input_keys_and_exited_process(tools: Tools) -> None:
    await tools.start(fixture("echo"), name="echoer", wait_for="READY")
    sent = await tools.ok("send_input", name="echoer", text="hello")
    assert sent["bytes_sent"] == 5
    sent = await tools.ok("send_input", name="echoer", keys=["enter"])
    assert sent["bytes_sent"] == 1
    waited = await tools.ok("wait_for_output", name="echoer", pattern="^echo: hello$", since=0)
    assert waited["matched"] is True
    await tools.ok("send_input", name="echoer", keys=["ctrl-d"])  # end of input: echo.py exits
    status = await tools.ended("echoer")
    assert status["status"] == "exited" and status["exit_code"] == 0

    message = await tools.error("send_input", name="echoer", text="late", keys=["enter"])
    assert "not running" in message and "echoer" in message


async def test_get_process_status_reports_usage_and_listening_ports(tools: Tools) -> None:
    command = f"{shlex.quote(sys.executable)} -m http.server 0 --bind 127.0.0.1"
    started = await tools.start(command, name="http", wait_for=r"port \d+", wait_timeout=15)
    assert started["ready"] is True, started
    match = re.search(r"port (\d+)", started["matched_line"])
    assert match is not None
    port = int(match.group(1))
    status = await tools.status("http")
    assert status["status"] == "running"
    assert port in status["listening_ports"]
    assert isinstance(status["cpu_percent"], float) and status["cpu_percent"] >= 0
    assert isinstance(status["memory_bytes"], int) and status["memory_bytes"] > 1_000_000
    assert status["output_lines"] >= 1
    assert status["columns"] > 0 and status["rows"] > 0

    await tools.ok("stop_process", name="http")
    stopped = await tools.status("http")
    assert stopped["listening_ports"] == [] and stopped["memory_bytes"] == 0


async def test_get_process_screen_and_clean_output_of_progress(tools: Tools) -> None:
    await tools.start(fixture("progress"), name="progress")
    status = await tools.ended("progress")
    assert status["exit_code"] == 0
    screen = await tools.ok("get_process_screen", name="progress")
    assert screen["columns"] == status["columns"] and screen["rows"] == status["rows"]
    assert len(screen["lines"]) == screen["rows"]
    assert screen["alternate_screen"] is False
    rows = [line.rstrip() for line in screen["lines"]]
    assert rows[:6] == [
        "READY",
        "progress [##########] 100%",
        "build: step 3/3",
        "test: step 3/3",
        "lint: step 3/3",
        "done",
    ]
    assert "lint: step 3/3" in screen["text"]
    assert set(screen["cursor"]) == {"row", "column", "visible"}
    assert screen["process"]["name"] == "progress"

    page = await tools.output("progress")
    assert page["text"].split("\n") == rows[:6]


async def test_get_process_screen_of_a_running_drawing(tools: Tools) -> None:
    await tools.start(fixture("screen_draw"), name="draw", wait_for="READY")
    screen = await tools.ok("get_process_screen", name="draw")
    assert screen["lines"][0].startswith("TOP-LEFT")
    assert screen["lines"][3].strip() == "+------+"
    assert screen["lines"][7].startswith("READY")
    assert "CENTER" in screen["lines"][screen["rows"] // 2 - 1]


# ----- bad input ------------------------------------------------------------------------------

SENTINEL = "<sentinel>"  # replaced by the sentinel process's name
SENTINEL_PID = -424242  # replaced by the sentinel process's pid
NOT_A_DIR = "<file>"  # replaced by the path of a regular file
MISSING_DIR = "<missing>"  # replaced by a path that does not exist

BAD_CALLS = [
    # start_process
    pytest.param("start_process", {"command": ""}, ["command is empty"], id="start-empty"),
    pytest.param("start_process", {"command": "  \t "}, ["command is empty"], id="start-blank"),
    pytest.param(
        "start_process",
        {"command": "definitely-not-a-program-xyz --flag"},
        ["'definitely-not-a-program-xyz'", "not found"],
        id="start-missing-executable",
    ),
    pytest.param(
        "start_process",
        {"command": "A=1 definitely-not-a-program-xyz"},
        ["'definitely-not-a-program-xyz'", "not found"],
        id="start-missing-executable-after-assignment",
    ),
    pytest.param("start_process", {"command": "echo a\x00b"}, ["NUL"], id="start-nul-command"),
    pytest.param(
        "start_process",
        {"command": "echo hi", "working_directory": "relative/dir"},
        ["absolute", "'relative/dir'"],
        id="start-relative-directory",
    ),
    pytest.param(
        "start_process",
        {"command": "echo hi", "working_directory": MISSING_DIR},
        ["does not exist"],
        id="start-missing-directory",
    ),
    pytest.param(
        "start_process",
        {"command": "echo hi", "working_directory": NOT_A_DIR},
        ["is not a directory"],
        id="start-file-as-directory",
    ),
    pytest.param(
        "start_process",
        {"command": "echo hi", "working_directory": ""},
        ["absolute"],
        id="start-empty-directory",
    ),
    pytest.param(
        "start_process",
        {"command": "echo hi", "environment": {"PORT": 8080}},
        ["environment", "PORT", "string"],
        id="env-int",
    ),
    pytest.param(
        "start_process",
        {"command": "echo hi", "environment": {"DEBUG": True}},
        ["environment", "DEBUG", "string"],
        id="env-bool",
    ),
    pytest.param(
        "start_process",
        {"command": "echo hi", "environment": {"EMPTY": None}},
        ["environment", "EMPTY", "string"],
        id="env-null",
    ),
    pytest.param(
        "start_process",
        {"command": "echo hi", "environment": {"LIST": ["a", "b"]}},
        ["environment", "LIST", "string"],
        id="env-list",
    ),
    pytest.param(
        "start_process",
        {"command": "echo hi", "environment": ["FOO=bar"]},
        ["environment"],
        id="env-not-an-object",
    ),
    pytest.param(
        "start_process",
        {"command": "echo hi", "environment": {"A=B": "x"}},
        ["environment variable name", "'A=B'"],
        id="env-name-with-equals",
    ),
    pytest.param(
        "start_process",
        {"command": "echo hi", "environment": {"": "x"}},
        ["environment variable name"],
        id="env-empty-name",
    ),
    pytest.param(
        "start_process",
        {"command": "echo hi", "environment": {"NUL": "a\x00b"}},
        ["'NUL'", "NUL character"],
        id="env-nul-value",
    ),
    pytest.param(
        "start_process", {"command": "echo hi", "name": "a b"}, ["invalid name"], id="name-space"
    ),
    pytest.param(
        "start_process", {"command": "echo hi", "name": "a/b"}, ["invalid name"], id="name-slash"
    ),
    pytest.param(
        "start_process", {"command": "echo hi", "name": ".."}, ["invalid name"], id="name-dotdot"
    ),
    pytest.param(
        "start_process", {"command": "echo hi", "name": ""}, ["invalid name"], id="name-empty"
    ),
    pytest.param(
        "start_process",
        {"command": "echo hi", "name": "x" * 65},
        ["invalid name", "64"],
        id="name-too-long",
    ),
    pytest.param(
        "start_process",
        {"command": "echo hi", "name": "12345"},
        ["invalid name", "digits"],
        id="name-all-digits",
    ),
    pytest.param(
        "start_process",
        {"command": "echo hi", "name": "naïve"},
        ["invalid name"],
        id="name-non-ascii",
    ),
    pytest.param(
        "start_process",
        {"command": "echo other", "name": SENTINEL},
        ["'sentinel'", "running process pid", "replace=true"],
        id="name-conflict",
    ),
    pytest.param(
        "start_process",
        {"command": "echo hi", "wait_for": "(unclosed"},
        ["invalid wait_for", "(unclosed"],
        id="start-invalid-wait_for",
    ),
    pytest.param(
        "start_process",
        {"command": "echo hi", "wait_for": "x", "wait_timeout": -1},
        ["wait_timeout"],
        id="start-negative-wait_timeout",
    ),
    pytest.param(
        "start_process",
        {"command": "echo hi", "wait_for": "x", "wait_timeout": 10**9},
        ["wait_timeout"],
        id="start-huge-wait_timeout",
    ),
    # lookups
    pytest.param("get_process_status", {}, ["pid or name"], id="status-neither"),
    pytest.param(
        "get_process_status",
        {"name": "ghost"},
        ["'ghost'", "known: sentinel (pid"],
        id="status-unknown-name",
    ),
    pytest.param(
        "get_process_status",
        {"pid": 999_999_999},
        ["999999999", "known: sentinel (pid"],
        id="status-unknown-pid",
    ),
    pytest.param(
        "get_process_status",
        {"pid": 999_999_999, "name": SENTINEL},
        ["999999999", "'sentinel'"],
        id="status-pid-and-name-disagree",
    ),
    pytest.param(
        "stop_process", {"name": "ghost"}, ["'ghost'", "known: sentinel"], id="stop-unknown"
    ),
    pytest.param(
        "stop_process",
        {"name": SENTINEL, "timeout": -5},
        ["timeout"],
        id="stop-negative-timeout",
    ),
    pytest.param(
        "restart_process", {"name": "ghost"}, ["'ghost'", "known: sentinel"], id="restart-unknown"
    ),
    pytest.param(
        "restart_process",
        {"name": SENTINEL, "wait_for": "[unclosed"},
        ["invalid wait_for"],
        id="restart-invalid-wait_for",
    ),
    pytest.param(
        "get_process_screen", {"name": "ghost"}, ["'ghost'", "known: sentinel"], id="screen-unknown"
    ),
    pytest.param(
        "remove_process",
        {"pid": 999_999_999},
        ["999999999", "known: sentinel"],
        id="remove-unknown-pid",
    ),
    pytest.param(
        "remove_process",
        {"pid": SENTINEL_PID, "name": "ghost"},
        ["'ghost'", "known: sentinel"],
        id="remove-pid-and-unknown-name",
    ),
    # get_process_output
    pytest.param(
        "get_process_output", {"name": "ghost"}, ["'ghost'", "known: sentinel"], id="out-unknown"
    ),
    pytest.param(
        "get_process_output", {"name": SENTINEL, "lines": 0}, ["lines", "1 to"], id="lines-0"
    ),
    pytest.param(
        "get_process_output", {"name": SENTINEL, "lines": -1}, ["lines", "1 to"], id="lines-neg"
    ),
    pytest.param(
        "get_process_output",
        {"name": SENTINEL, "lines": 10**9},
        ["lines", "10000"],
        id="lines-huge",
    ),
    pytest.param(
        "get_process_output", {"name": SENTINEL, "since": -1}, ["since"], id="since-negative"
    ),
    pytest.param(
        "get_process_output",
        {"name": SENTINEL, "stream": "both"},
        ["stream", "combined"],
        id="stream-invalid",
    ),
    pytest.param(
        "get_process_output",
        {"name": SENTINEL, "grep": "(a"},
        ["invalid grep", "(a"],
        id="grep-invalid",
    ),
    pytest.param("get_process_output", {"name": SENTINEL, "grep": ""}, ["grep"], id="grep-empty"),
    pytest.param(
        "get_process_output",
        {"name": SENTINEL, "grep": "x" * 2001},
        ["grep", "too long"],
        id="grep-too-long",
    ),
    pytest.param(
        "get_process_output", {"name": SENTINEL, "run": 7}, ["no run 7", "runs: 1"], id="run-7"
    ),
    # wait_for_output
    pytest.param(
        "wait_for_output",
        {"name": SENTINEL, "pattern": "[z-a]"},
        ["invalid pattern", "[z-a]"],
        id="wait-invalid-pattern",
    ),
    pytest.param(
        "wait_for_output", {"name": SENTINEL, "pattern": ""}, ["pattern"], id="wait-empty-pattern"
    ),
    pytest.param(
        "wait_for_output",
        {"name": SENTINEL, "pattern": "x", "timeout": -1},
        ["timeout"],
        id="wait-negative-timeout",
    ),
    pytest.param(
        "wait_for_output",
        {"name": SENTINEL, "pattern": "x", "since": -3},
        ["since"],
        id="wait-negative-since",
    ),
    pytest.param(
        "wait_for_output",
        {"name": SENTINEL, "pattern": "x", "stream": "STDOUT"},
        ["stream"],
        id="wait-invalid-stream",
    ),
    pytest.param(
        "wait_for_output",
        {"name": "ghost", "pattern": "x"},
        ["'ghost'", "known: sentinel"],
        id="wait-unknown",
    ),
    # send_input
    pytest.param("send_input", {"name": SENTINEL}, ["text, keys"], id="send-nothing"),
    pytest.param(
        "send_input", {"name": SENTINEL, "text": "", "keys": []}, ["text, keys"], id="send-empty"
    ),
    pytest.param(
        "send_input",
        {"name": SENTINEL, "keys": ["enterr"]},
        ["enterr", "enter"],
        id="send-unknown-key",
    ),
    pytest.param(
        "send_input", {"name": SENTINEL, "keys": "enter"}, ["keys"], id="send-keys-as-string"
    ),
    pytest.param(
        "send_input",
        {"name": "ghost", "text": "x"},
        ["'ghost'", "known: sentinel"],
        id="send-unknown",
    ),
]


def _resolve(arguments: dict[str, Any], sentinel: dict[str, Any], tmp: Path) -> dict[str, Any]:
    replacements: dict[Any, Any] = {
        SENTINEL: sentinel["name"],
        NOT_A_DIR: str(tmp / "plain-file.txt"),
        MISSING_DIR: str(tmp / "no" / "such" / "dir"),
    }
    (tmp / "plain-file.txt").write_text("not a directory\n")
    resolved = {}
    for key, value in arguments.items():
        if key == "pid" and value == SENTINEL_PID:
            value = sentinel["pid"]
        elif isinstance(value, str) and value in replacements:
            value = replacements[value]
        resolved[key] = value
    if resolved.get("command") is not None:
        resolved.setdefault("working_directory", sentinel["working_directory"])
    return resolved


async def _check_bad_call(
    tools: Tools,
    sentinel: dict[str, Any],
    tool: str,
    arguments: dict[str, Any],
    expected: list[str],
) -> None:
    resolved = _resolve(arguments, sentinel, tools.directory.parent)
    message = await tools.error(tool, **resolved)
    for fragment in expected:
        assert fragment in message, f"{tool}({resolved}): {fragment!r} not in {message!r}"
    assert len(message) < 4000, message


@pytest.mark.parametrize(("tool", "arguments", "expected"), BAD_CALLS)
async def test_bad_input_is_a_clear_tool_error(
    tools: Tools, tool: str, arguments: dict[str, Any], expected: list[str]
) -> None:
    sentinel = await start_sentinel(tools)
    await _check_bad_call(tools, sentinel, tool, arguments, expected)
    assert await tools.names() == ["sentinel"]  # a refused start registers nothing


async def test_all_bad_calls_leave_a_running_process_intact(tools: Tools) -> None:
    sentinel = await start_sentinel(tools)
    await check_sentinel(tools, sentinel, "before")
    failures = []
    for case in BAD_CALLS:
        tool, arguments, expected = case.values
        try:
            await _check_bad_call(tools, sentinel, tool, arguments, expected)
        except AssertionError as error:
            failures.append(f"{case.id}: {error}")
    assert not failures, "\n".join(failures)
    await check_sentinel(tools, sentinel, "after")
    assert await tools.names() == ["sentinel"]
    page = await tools.output("sentinel", since=0)
    assert page["text"] == "READY\nbefore\necho: before\nafter\necho: after"


async def test_unknown_process_when_none_is_known(tools: Tools) -> None:
    message = await tools.error("get_process_output", name="ghost")
    assert "'ghost'" in message and "none" in message and "start_process" in message
    message = await tools.error("stop_process", pid=123456789)
    assert "123456789" in message


async def test_pid_and_name_that_agree_are_accepted(tools: Tools) -> None:
    sentinel = await start_sentinel(tools)
    status = await tools.ok("get_process_status", pid=sentinel["pid"], name="sentinel")
    assert status["name"] == "sentinel"
    other = await tools.start("echo other", name="other")
    message = await tools.error("get_process_status", pid=other["pid"], name="sentinel")
    assert str(other["pid"]) in message and "'sentinel'" in message


async def test_relative_path_command_that_is_missing_fails_in_the_shell(tools: Tools) -> None:
    # A path is left to the shell (it depends on the directory): the run fails and says why.
    started = await tools.start("./no-such-script.sh --serve", name="missing-script")
    assert started["status"] in {"running", "failed"}
    status = await tools.ended("missing-script")
    assert status["status"] == "failed" and status["exit_code"] == 127
    text = (await tools.output("missing-script"))["text"]
    assert "no-such-script.sh" in text and "No such file or directory" in text


async def test_name_conflict_can_be_replaced_and_an_exited_name_reused(tools: Tools) -> None:
    first = await tools.start(fixture("echo"), name="web", wait_for="READY")
    message = await tools.error(
        "start_process",
        command="echo second",
        name="web",
        working_directory=str(tools.directory),
    )
    assert "'web'" in message and str(first["pid"]) in message
    replaced = await tools.start("echo second", name="web", replace=True)
    assert replaced["command"] == "echo second"
    assert replaced["pid"] != first["pid"]
    assert replaced["run"] == 2
    await tools.ended("web")
    assert (await tools.output("web"))["text"] == "second"
    # Once it has exited, its name may be taken by another command without replace.
    third = await tools.start("echo third", name="web")
    assert third["command"] == "echo third" and third["already_running"] is False
    await tools.ended("web")
    assert (await tools.output("web"))["text"] == "third"
    assert await tools.names() == ["web"]


# ----- hostile output -------------------------------------------------------------------------


async def test_binary_and_invalid_utf8_output_is_readable(tools: Tools) -> None:
    await tools.start(fixture("binary"), name="binary")
    status = await tools.ended("binary")
    assert status["status"] == "exited" and status["exit_code"] == 0
    for stream in ("combined", "stdout"):
        page = await tools.output("binary", stream=stream, lines=10_000)
        lines = page["text"].split("\n")
        assert lines[0] == "READY"
        assert lines[-1] == "END"
        assert "\ufffd\ufffd bad start bytes" in lines
        assert "\ufffd( bad continuation" in lines
        assert page["text"].encode("utf-8")  # no lone surrogates reached the client
    grep = await tools.output("binary", grep="^END$")
    assert grep["text"] == "END"
    screen = await tools.ok("get_process_screen", name="binary")
    assert any(line.startswith("END") for line in screen["lines"])
    waited = await tools.ok("wait_for_output", name="binary", pattern="^END$", since=0)
    assert waited["matched"] is True
    # The server is still fine afterwards.
    assert (await tools.status("binary"))["name"] == "binary"


def _long_line_content(length: int) -> str:
    pattern = b"0123456789abcdefghijklmnopqrstuvwxyz" * 2000
    chunks, remaining = [], length
    while remaining > 0:
        chunk = pattern[: min(remaining, 65536)]
        chunks.append(chunk)
        remaining -= len(chunk)
    return b"".join(chunks).decode()


async def test_a_long_single_line_is_split_and_responses_stay_bounded(tools: Tools) -> None:
    length = 5_000_000
    await tools.start(fixture("binary", "--long-line", str(length)), name="long")
    status = await tools.ended("long")
    assert status["exit_code"] == 0

    tail_result = await tools.call("get_process_output", name="long")
    tail = tail_result.structured_content
    assert tail["text"].split("\n")[-1] == "END"
    assert tail["truncated"] is True
    assert _size(tail) < MAX_RESPONSE
    assert len(_text(tail_result)) < MAX_RESPONSE

    # Page through everything with since=cursor: nothing lost, no line over the limit.
    lines: list[str] = []
    cursor, pages = 0, 0
    while True:
        page = await tools.output("long", since=cursor, lines=10_000)
        pages += 1
        assert _size(page) < MAX_RESPONSE
        assert page["first_line"] == cursor + 1
        lines.extend(page["text"].split("\n"))
        cursor = page["cursor"]
        if not page["truncated"]:
            break
        assert pages < 200
    assert cursor == page["total_lines"] == len(lines)
    assert lines[0] == "READY" and lines[-1] == "END"
    body = lines[1:-1]
    assert max(len(line) for line in body) <= 65536
    assert all(len(line) == 65536 for line in body[:-1])
    assert "".join(body) == _long_line_content(length)

    grep = await tools.output("long", grep="^END$")
    assert grep["text"] == "END"
    grep_all = await tools.output("long", grep="a", lines=10_000)
    assert grep_all["truncated"] is True and _size(grep_all) < MAX_RESPONSE
    waited = await tools.ok("wait_for_output", name="long", pattern="^END$", since=0)
    assert waited["matched"] is True and waited["line"] == "END"
    screen = await tools.ok("get_process_screen", name="long")
    assert _size(screen) < MAX_RESPONSE


async def test_start_process_with_wait_for_stays_bounded_on_long_lines(tools: Tools) -> None:
    """start_process's last_lines (and restart_process's) stay small after a 5 MB line."""
    command = fixture("binary", "--long-line", "5000000")
    started = await tools.start(command, name="long", wait_for="^END$", wait_timeout=15)
    assert started["ready"] is True
    assert "END" in started["last_lines"]
    assert _size(started) < MAX_RESPONSE, (
        f"start_process answered {_size(started)} bytes of JSON: last_lines holds "
        f"{len(started['last_lines'])} lines of up to "
        f"{max(len(line) for line in started['last_lines'])} characters"
    )


@pytest.mark.parametrize("pattern", ["(a+)+$", "(a|aa)+$"])
async def test_catastrophic_regex_answers_quickly(tools: Tools, pattern: str) -> None:
    line = "a" * 30 + "b"
    await tools.start(f"echo {line}; echo done", name="regex")
    await tools.ended("regex")
    began = time.monotonic()
    grep = await tools.output("regex", grep=pattern)
    assert grep["line_count"] == 0
    grep_since = await tools.output("regex", grep=pattern, since=0)
    assert grep_since["line_count"] == 0
    waited = await tools.ok("wait_for_output", name="regex", pattern=pattern, since=0, timeout=1)
    assert waited["matched"] is False and waited["reason"] == "exited"
    started = await tools.start(f"echo {line}", name="regex-wait", wait_for=pattern, wait_timeout=1)
    assert started["ready"] is False
    assert time.monotonic() - began < 5
    assert (await tools.output("regex"))["text"] == f"{line}\ndone"


async def test_wait_for_output_timeout_bounds_a_slow_pattern(tools: Tools) -> None:
    """Each line may take REGEX_LINE_TIMEOUT, so the wait's own timeout must bound the scan."""
    count = 60  # 60 lines x 0.05 s per line = 3 s of matching
    await tools.start(f"for i in $(seq {count}); do echo {'a' * 30}b; done", name="many")
    await tools.ended("many")
    began = time.monotonic()
    waited = await tools.ok(
        "wait_for_output", name="many", pattern="(a|aa)+$", since=0, timeout=0.5
    )
    elapsed = time.monotonic() - began
    assert waited["matched"] is False
    assert elapsed < 2.0, f"wait_for_output(timeout=0.5) took {elapsed:.1f} s"


async def test_grep_budget_bounds_a_slow_pattern(
    tools: Tools, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The time budget stops a grep whose pattern is slow on every line, however few lines."""
    monkeypatch.setattr(grep, "GREP_BUDGET", 0.5)
    count = 60  # 60 lines x 0.05 s per line = 3 s of matching
    await tools.start(f"for i in $(seq {count}); do echo {'a' * 30}b; done", name="many")
    await tools.ended("many")
    began = time.monotonic()
    result = await tools.call("get_process_output", name="many", grep="(a|aa)+$")
    elapsed = time.monotonic() - began
    assert "Traceback" not in _text(result)
    assert elapsed < 0.5 + 1.5, f"grep with a 0.5 s budget took {elapsed:.1f} s"


async def test_the_transport_gets_each_tools_input_schema_up_front(tmp_path: Path) -> None:
    """The HTTP transport checks tools/call arguments against the tool's schema; handed the
    schemas, it no longer lists every tool through the server on each call."""
    mcp = build_mcp(Supervisor(tmp_path / "data"))
    await serve_input_schemas(mcp)
    lookup = mcp._mcp_server.get_tool_input_schema
    assert lookup is not None
    async with Client(mcp) as client:
        listed = await client.list_tools()
    assert listed and all(lookup(tool.name) == tool.input_schema for tool in listed)
    assert lookup("no_such_tool") is None
