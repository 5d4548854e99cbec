"""End to end: a real `persistproc --serve` subprocess, driven over streamable HTTP by the MCP SDK."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx2 as httpx
import psutil
import pytest
from conftest import Server, fixture_cmd
from mcp import Client

TOOLS = {
    "start_process",
    "stop_process",
    "restart_process",
    "list_processes",
    "get_process_status",
    "get_process_output",
    "get_process_screen",
    "send_input",
    "wait_for_output",
    "remove_process",
}
NEVER = r"(?!)"  # a pattern no line matches: wait_for_output then returns when the process ends
INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {
        "protocolVersion": "2025-06-18",
        "capabilities": {},
        "clientInfo": {"name": "test", "version": "0"},
    },
}
WAIT = 10.0  # seconds any wait in these tests may take at most (the fixtures need milliseconds)


class Session:
    """An MCP client bound to one server and one working directory, with the calls tests repeat."""

    def __init__(self, client: Client, cwd: Path) -> None:
        self.client = client
        self.cwd = cwd
        self.started: list[str] = []  # names this test started; stopped when the session ends

    async def call(self, tool: str, **arguments: Any) -> dict[str, Any]:
        result = await self.client.call_tool(tool, arguments)
        assert not result.is_error, f"{tool}({arguments}) failed: {result.content[0].text}"
        assert result.structured_content is not None
        return result.structured_content

    async def error(self, tool: str, **arguments: Any) -> str:
        """Call a tool that must fail; return its message."""
        result = await self.client.call_tool(tool, arguments)
        text = result.content[0].text if result.content else ""
        assert result.is_error, f"{tool}({arguments}) should have failed, got {text}"
        return text

    async def start(self, command: str, **arguments: Any) -> dict[str, Any]:
        arguments.setdefault("working_directory", str(self.cwd))
        arguments.setdefault("wait_timeout", WAIT)
        info = await self.call("start_process", command=command, **arguments)
        self.started.append(info["name"])
        return info

    async def output(self, name: str, **arguments: Any) -> dict[str, Any]:
        return await self.call("get_process_output", name=name, **arguments)

    async def lines(self, name: str, **arguments: Any) -> list[str]:
        text = (await self.output(name, **arguments))["text"]
        return text.split("\n") if text else []

    async def wait_output(self, name: str, pattern: str, since: int) -> dict[str, Any]:
        found = await self.call(
            "wait_for_output", name=name, pattern=pattern, since=since, timeout=WAIT
        )
        assert found["matched"], f"{pattern!r} never appeared: {found}"
        return found

    async def wait_exit(self, name: str) -> dict[str, Any]:
        """Wait until the process has ended; return its info."""
        found = await self.call("wait_for_output", name=name, pattern=NEVER, timeout=WAIT)
        assert found["reason"] == "exited", found
        return found["process"]

    async def send(self, name: str, text: str | None = None, *keys: str) -> None:
        await self.call("send_input", name=name, text=text, keys=list(keys) or None)

    async def stop_started(self) -> None:
        for name in dict.fromkeys(self.started):
            await self.client.call_tool("stop_process", {"name": name, "force": True})


@asynccontextmanager
async def connect(server: Server, cwd: Path) -> AsyncIterator[Session]:
    async with Client(server.url) as client:
        session = Session(client, cwd)
        try:
            yield session
        finally:
            await session.stop_started()


async def poll(
    read: Callable[[], Awaitable[dict[str, Any]]], done: Callable[[dict[str, Any]], bool]
) -> dict[str, Any]:
    """Read until done(value) holds; fail after WAIT seconds."""
    deadline = time.monotonic() + WAIT
    while not done(value := await read()):
        assert time.monotonic() < deadline, f"condition not reached in {WAIT:g} s: {value}"
        await asyncio.sleep(0.05)  # poll interval
    return value


def gone(pid: int) -> bool:
    """The process no longer runs (it has exited, possibly still waiting to be reaped)."""
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


async def start_tree(mcp: Session, *args: str) -> tuple[dict[str, Any], list[int]]:
    """Start tree.py; return its info and the pids of it and its three grandchildren."""
    info = await mcp.start(fixture_cmd("tree", *args), wait_for="^READY$")
    assert info["ready"], info
    [pids_line] = await mcp.lines(info["name"], grep=r"^PIDS ")
    pids = [info["pid"], *map(int, pids_line.split()[1:])]
    assert len(pids) == 4 and not any(map(gone, pids)), pids_line
    return info, pids


async def post_initialize(server: Server, path: str, **headers: str) -> httpx.Response:
    async with httpx.AsyncClient(base_url=server.base, follow_redirects=False) as http:
        return await http.post(
            path,
            json=INITIALIZE,
            headers={"Accept": "application/json, text/event-stream", **headers},
            timeout=WAIT,
        )


# ----- the tool list -------------------------------------------------------------------------


async def test_list_tools_describes_every_tool_and_parameter(
    server: Server, tmp_path: Path
) -> None:
    async with connect(server, tmp_path) as mcp:
        tools = (await mcp.client.list_tools()).tools
    assert {tool.name for tool in tools} == TOOLS
    for tool in tools:
        assert tool.description and tool.description.strip(), tool.name
        for parameter, schema in tool.input_schema["properties"].items():
            assert schema.get("description", "").strip(), f"{tool.name}.{parameter}"


# ----- output --------------------------------------------------------------------------------


async def test_colored_output_comes_back_clean_from_a_real_terminal(
    server: Server, tmp_path: Path
) -> None:
    async with connect(server, tmp_path) as mcp:
        info = await mcp.start(fixture_cmd("colors"), wait_for="^READY$")
        assert info["ready"] and info["matched_line"] == "READY", info
        await mcp.wait_exit(info["name"])
        text = (await mcp.output(info["name"]))["text"]
    assert "\x1b" not in text
    for words in (
        "red green blue",
        "bold underline reverse",
        "orange-256 bg-256",
        "pink-truecolor navy-bg",
        "isatty: stdout=True stderr=True stdin=True",
        "size=200x50",
    ):
        assert words in text.split("\n"), words
    assert re.search(r"^TERM=\S+$", text, re.MULTILINE), text


async def test_stderr_is_read_apart_from_stdout(server: Server, tmp_path: Path) -> None:
    async with connect(server, tmp_path) as mcp:
        info = await mcp.start(fixture_cmd("colors", "--stderr"))
        await mcp.wait_exit(info["name"])
        stderr = await mcp.lines(info["name"], stream="stderr")
        stdout = await mcp.lines(info["name"], stream="stdout")
        combined = await mcp.lines(info["name"], stream="combined")
    errors = ["err line 1", "err line 2", "err line 3"]
    assert stderr == errors
    assert "READY" in stdout and not any("err line" in line for line in stdout), stdout
    assert set(errors) <= set(combined) and "READY" in combined, combined


async def test_flood_then_traceback_is_kept_whole(server: Server, tmp_path: Path) -> None:
    async with connect(server, tmp_path) as mcp:
        info = await mcp.start(fixture_cmd("flood", "50000"))
        await mcp.wait_exit(info["name"])
        page = await mcp.output(info["name"])
    assert page["text"].split("\n")[-1] == "ValueError: boom", page["text"][-500:]
    assert page["process"]["status"] == "failed" and page["process"]["exit_code"] == 1
    clean_log = Path(page["process"]["clean_log_path"]).read_text(encoding="utf-8")
    assert "\x1b" not in clean_log
    flooded = re.findall(r"^line \d{6} ok the quick brown fox jumps$", clean_log, re.MULTILINE)
    assert len(flooded) == 50000


async def test_since_cursor_returns_only_new_lines(server: Server, tmp_path: Path) -> None:
    async with connect(server, tmp_path) as mcp:
        name = (await mcp.start(fixture_cmd("echo"), wait_for="^READY$"))["name"]
        await mcp.send(name, "first", "enter")
        await mcp.wait_output(name, "^echo: first$", since=0)
        cursor = (await mcp.output(name))["cursor"]
        await mcp.send(name, "second", "enter")
        await mcp.wait_output(name, "^echo: second$", since=cursor)
        page = await mcp.output(name, since=cursor)
        after = await mcp.output(name, since=page["cursor"])
    new = page["text"].split("\n")
    assert "echo: second" in new and not any("first" in line for line in new), new
    assert page["first_line"] == cursor + 1 and page["cursor"] > cursor, page
    assert after["text"] == "" and after["line_count"] == 0 and after["cursor"] == page["cursor"]


async def test_grep_keeps_the_last_matching_lines(server: Server, tmp_path: Path) -> None:
    async with connect(server, tmp_path) as mcp:
        name = (await mcp.start(fixture_cmd("flood", "200", "--stdout-only")))["name"]
        await mcp.wait_exit(name)
        matches = await mcp.lines(name, grep=r"^line 00012\d ")
        last = await mcp.lines(name, grep=r"^line 00012\d ", lines=3)
    assert [line.split()[1] for line in matches] == [f"{n:06d}" for n in range(120, 130)]
    assert last == matches[-3:]


# ----- input, screen, signals ----------------------------------------------------------------


async def test_prompt_is_answered_with_send_input(server: Server, tmp_path: Path) -> None:
    async with connect(server, tmp_path) as mcp:
        info = await mcp.start(fixture_cmd("prompt"), wait_for=r"name\?")
        assert info["ready"] and "name?" in info["matched_line"], info
        page = await mcp.output(info["name"])
        assert page["text"].split("\n")[-1].rstrip() == "name?", page["text"]
        await mcp.send(info["name"], "bob", "enter")
        found = await mcp.wait_output(info["name"], "^hello, bob!$", since=page["cursor"])
        ended = await mcp.wait_exit(info["name"])
    assert found["line"] == "hello, bob!"
    assert ended["status"] == "exited" and ended["exit_code"] == 0, ended


@pytest.mark.parametrize("alternate", [False, True], ids=["main-screen", "alternate-screen"])
async def test_screen_drawn_with_cursor_moves(
    server: Server, tmp_path: Path, alternate: bool
) -> None:
    command = fixture_cmd("screen_draw", *(["--alt"] if alternate else []))
    async with connect(server, tmp_path) as mcp:
        name = (await mcp.start(command))["name"]
        screen = await poll(
            lambda: mcp.call("get_process_screen", name=name),
            lambda shot: shot["lines"][7].startswith("READY"),
        )
        await mcp.send(name, "quit", "enter")
        await mcp.wait_exit(name)
        after = await mcp.call("get_process_screen", name=name)
    rows, columns, lines = screen["rows"], screen["columns"], screen["lines"]
    assert (columns, rows) == (200, 50) and len(lines) == rows
    assert lines[0].startswith("TOP-LEFT")
    middle = lines[rows // 2 - 1]
    assert middle.index("CENTER") == (columns - 6) // 2, middle
    assert lines[3][4:12] == "+------+"
    assert screen["alternate_screen"] is alternate
    assert after["alternate_screen"] is False


async def test_ctrl_c_reaches_the_program(server: Server, tmp_path: Path) -> None:
    async with connect(server, tmp_path) as mcp:
        info = await mcp.start(fixture_cmd("sigtrap"), wait_for="^READY$")
        assert info["ready"], info
        cursor = (await mcp.output(info["name"]))["cursor"]
        await mcp.send(info["name"], None, "ctrl-c")
        found = await mcp.wait_output(info["name"], "got SIGINT$", since=cursor)
        ended = await mcp.wait_exit(info["name"])
    assert found["line"] in ("got SIGINT", "^Cgot SIGINT"), found  # the terminal echoes ^C
    assert ended["exit_code"] == 130 and ended["status"] == "failed", ended


# ----- waiting for readiness -----------------------------------------------------------------


async def test_wait_for_ready_timeout_and_exit(server: Server, tmp_path: Path) -> None:
    async with connect(server, tmp_path) as mcp:
        ready = await mcp.start(fixture_cmd("echo"), wait_for="^READY$")
        late = await mcp.start(fixture_cmd("sigtrap"), wait_for="^never$", wait_timeout=0.5)
        crashed = await mcp.start(fixture_cmd("crash"), wait_for="^never$")
    assert ready["ready"] is True and ready["matched_line"] == "READY", ready
    assert ready["wait_result"] == "matched"
    assert late["ready"] is False and late["wait_result"] == "timeout", late
    assert late["status"] == "running" and "READY" in late["last_lines"], late
    assert crashed["ready"] is False and crashed["wait_result"] == "exited", crashed
    assert crashed["status"] == "failed" and crashed["exit_code"] == 1, crashed
    assert any("RuntimeError" in line for line in crashed["last_lines"]), crashed["last_lines"]


async def test_wait_for_sees_a_line_finished_by_redrawing(server: Server, tmp_path: Path) -> None:
    """progress.py writes 'lint: waiting', then moves the cursor up and redraws that line as
    'lint: step 1/3' .. '3/3' (a line still in the editable window). The clean output ends with
    'lint: step 3/3', so waiting for it must match, as a later wait with since=0 does."""
    ready = "^lint: step 3/3$"
    async with connect(server, tmp_path) as mcp:
        info = await mcp.start(fixture_cmd("progress", "--delay", "0.05"), wait_for=ready)
        await mcp.wait_exit(info["name"])
        later = await mcp.wait_output(info["name"], ready, since=0)
    assert "lint: step 3/3" in info["last_lines"] and later["line"] == "lint: step 3/3"
    assert info["ready"] is True and info["wait_result"] == "matched", (
        info["wait_result"],
        info["last_lines"],
    )


# ----- lifecycle -----------------------------------------------------------------------------


async def test_restart_gives_a_new_pid_and_keeps_the_earlier_run(
    server: Server, tmp_path: Path
) -> None:
    async with connect(server, tmp_path) as mcp:
        first = await mcp.start(fixture_cmd("echo"), wait_for="^READY$")
        name = first["name"]
        await mcp.send(name, "from run one", "enter")
        await mcp.wait_output(name, "^echo: from run one$", since=0)
        second = await mcp.call("restart_process", name=name, wait_for="^READY$", wait_timeout=WAIT)
        earlier = await mcp.lines(name, run=1)
        latest = await mcp.lines(name)
    assert second["ready"], second
    assert second["name"] == name and second["pid"] != first["pid"], second
    assert second["restarts"] == 1 and second["run"] == 2 and second["status"] == "running"
    assert gone(first["pid"])
    assert "echo: from run one" in earlier and "echo: from run one" not in latest, latest


@pytest.mark.parametrize(
    ("args", "timeout", "signal"),
    [((), 10, "SIGTERM"), (("--ignore-term",), 0.5, "SIGKILL")],
    ids=["sigterm", "sigkill-after-timeout"],
)
async def test_stop_kills_every_grandchild(
    server: Server, tmp_path: Path, args: tuple[str, ...], timeout: float, signal: str
) -> None:
    async with connect(server, tmp_path) as mcp:
        info, pids = await start_tree(mcp, *args)
        stopped = await mcp.call("stop_process", name=info["name"], timeout=timeout)
    assert stopped["status"] == "stopped" and stopped["signal"] == signal, stopped
    assert [pid for pid in pids if not gone(pid)] == []


async def test_same_command_twice_is_already_running(server: Server, tmp_path: Path) -> None:
    async with connect(server, tmp_path) as mcp:
        first = await mcp.start(fixture_cmd("echo"), wait_for="^READY$")
        again = await mcp.start(fixture_cmd("echo"))
        replaced = await mcp.start(fixture_cmd("echo"), replace=True, wait_for="^READY$")
    assert again["already_running"] is True and again["pid"] == first["pid"], again
    assert again["name"] == first["name"]
    assert replaced["already_running"] is False and replaced["pid"] != first["pid"], replaced
    assert replaced["name"] == first["name"] and gone(first["pid"])


# ----- bad input ------------------------------------------------------------------------------


async def test_bad_input_is_a_clear_tool_error(server: Server, tmp_path: Path) -> None:
    cwd = str(tmp_path)
    start = {"command": "true", "working_directory": cwd}
    async with connect(server, tmp_path) as mcp:
        name = (await mcp.start(fixture_cmd("echo"), wait_for="^READY$"))["name"]
        cases: list[tuple[str, dict[str, Any], str | None]] = [
            ("get_process_output", {"name": "nope"}, "no process named 'nope'"),
            ("start_process", {**start, "command": ""}, "command is empty"),
            ("start_process", {**start, "command": "no-such-program-xyz -v"}, "not found"),
            ("start_process", {**start, "working_directory": "relative/dir"}, "absolute"),
            ("start_process", {**start, "working_directory": f"{cwd}/missing"}, "does not exist"),
            # refused by schema validation or by the server: either is fine
            ("start_process", {**start, "environment": {"X": 1}}, None),
            ("get_process_output", {"name": name, "grep": "(unclosed"}, "invalid grep"),
            ("get_process_output", {"name": name, "lines": 0}, "lines must be"),
            ("get_process_output", {"name": name, "lines": 10**9}, "lines must be"),
        ]
        for tool, arguments, expected in cases:
            message = await mcp.error(tool, **arguments)
            assert "Traceback" not in message and "internal error" not in message, message
            assert expected is None or expected in message, (tool, arguments, message)
        status = await mcp.call("get_process_status", name=name)
        listed = (await mcp.call("list_processes"))["processes"]
    assert server.proc.poll() is None
    assert status["status"] == "running"
    assert [p["name"] for p in listed] == [name], listed


# ----- HTTP ----------------------------------------------------------------------------------


async def test_mcp_path_without_slash_is_served(server: Server) -> None:
    response = await post_initialize(server, "/mcp")
    assert response.status_code == 200, (response.status_code, response.headers)


async def test_foreign_host_and_origin_are_refused(server: Server) -> None:
    assert (await post_initialize(server, "/mcp/", Host="evil.example")).status_code == 421
    assert (await post_initialize(server, "/mcp/", Origin="http://evil.example")).status_code == 403
    local = f"http://localhost:{server.port}"
    assert (await post_initialize(server, "/mcp/", Origin=local)).status_code == 200


# ----- the server's own lifecycle ------------------------------------------------------------


async def test_server_sigterm_leaves_no_process_behind(server: Server, tmp_path: Path) -> None:
    async with connect(server, tmp_path) as mcp:
        _, pids = await start_tree(mcp)
        mcp.started.clear()  # the server's shutdown is what must stop it
    returncode = server.stop()
    assert [pid for pid in pids if not gone(pid)] == []
    assert returncode == 0, f"server exited with {returncode} on SIGTERM"


async def test_process_list_survives_a_server_restart(
    server: Server, server_factory: Callable[..., Server], tmp_path: Path
) -> None:
    async with connect(server, tmp_path) as mcp:
        short = await mcp.start(fixture_cmd("colors"))
        await mcp.wait_exit(short["name"])
        long = await mcp.start(fixture_cmd("echo"), wait_for="^READY$")
        mcp.started.clear()  # the server's shutdown is what must stop it
    server.stop()
    assert gone(long["pid"])

    again = server_factory(server.data_dir)
    async with connect(again, tmp_path) as mcp:
        listed = {p["name"]: p for p in (await mcp.call("list_processes"))["processes"]}
        output = await mcp.lines(short["name"])
        rerun = await mcp.call(
            "restart_process", name=short["name"], wait_for="^READY$", wait_timeout=WAIT
        )
        mcp.started.append(short["name"])
    assert set(listed) == {short["name"], long["name"]}
    assert listed[short["name"]]["status"] == "exited", listed
    assert listed[long["name"]]["status"] == "stopped", listed
    assert "size=200x50" in output, output
    assert rerun["ready"] and rerun["run"] == 2 and rerun["pid"] != short["pid"], rerun
