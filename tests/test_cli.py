"""The `persistproc` command line client and the /api/ routes, against a real server subprocess.

Most commands run in-process through `main([...])` (fast, output captured by capsys); the ones whose
exact bytes or process behaviour matter (--raw, -f, no server) run as `python -m persistproc`.
"""

from __future__ import annotations

import json
import os
import select
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil
import pytest
from conftest import Server, fixture_cmd, free_port

from persistproc.cli import main
from persistproc.client.render import Column, Style, cell_width, table, truncate, use_color

WAIT = 20.0  # seconds any wait in these tests may take at most
NEVER = r"(?!)"  # matches no line: a wait with it returns when the process ends


@dataclass
class Result:
    code: int
    out: str
    err: str


def api(server: Server, method: str, path: str, body: Any = None, **headers: str) -> Any:
    """One /api/ request; returns (status, decoded JSON body)."""
    data = body if isinstance(body, bytes) else None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(server.base + path, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=WAIT + 10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        with error:
            return error.code, json.loads(error.read())


class Processes:
    """Starts fixture programs over REST and stops every one of them when the test ends."""

    def __init__(self, server: Server, cwd: Path) -> None:
        self.server, self.cwd = server, cwd
        self.names: list[str] = []

    def start(
        self, fixture: str, *args: str, wait_for: str | None = "^READY$", **options: Any
    ) -> Any:
        body: dict[str, Any] = {
            "command": fixture_cmd(fixture, *args),
            "working_directory": str(self.cwd),
        }
        if wait_for is not None:
            body.update(wait_for=wait_for, wait_timeout=WAIT)
        status, info = api(self.server, "POST", "/api/processes", {**body, **options})
        assert status == 200, info
        self.names.append(info["name"])
        if wait_for is not None:
            assert info["ready"], info
        return info

    def wait_exit(self, name: str) -> dict[str, Any]:
        body = {"pattern": NEVER, "timeout": WAIT, "since": 0}
        status, found = api(self.server, "POST", f"/api/processes/{name}/wait", body)
        assert status == 200 and found["reason"] == "exited", found
        return dict(found["process"])

    def stop_all(self) -> None:
        for name in self.names:
            status, answer = api(self.server, "POST", f"/api/processes/{name}/stop", {})
            assert status in (200, 404), answer


@pytest.fixture
def procs(server: Server, tmp_path: Path) -> Iterator[Processes]:
    started = Processes(server, tmp_path)
    yield started
    started.stop_all()


@pytest.fixture
def cli(server: Server, capsys: pytest.CaptureFixture[str]) -> Any:
    """Run `persistproc --port PORT ARGS...` in-process; returns its exit code and output."""

    def run(*args: str) -> Result:
        try:
            code = main(["--port", str(server.port), *args])
        except SystemExit as exit_:  # argparse: --help, usage errors
            code = int(exit_.code or 0)
        captured = capsys.readouterr()
        return Result(code, captured.out, captured.err)

    return run


def run_cli(port: int, *args: str, **environment: str) -> subprocess.CompletedProcess[bytes]:
    """`python -m persistproc ARGS...` with PERSISTPROC_PORT set, as a person would run it."""
    env = {**os.environ, "PERSISTPROC_PORT": str(port), **environment}
    command = [sys.executable, "-m", "persistproc", *args]
    return subprocess.run(command, env=env, capture_output=True, timeout=WAIT + 10, check=False)


def read_until(proc: subprocess.Popen[bytes], needle: bytes, seen: bytes = b"") -> bytes:
    """Read the child's stdout until `needle` appears; fail after WAIT seconds."""
    assert proc.stdout is not None
    deadline = time.monotonic() + WAIT
    data = seen
    while needle not in data:
        remaining = deadline - time.monotonic()
        assert remaining > 0, f"{needle!r} never came; got {data!r}"
        ready, _, _ = select.select([proc.stdout.fileno()], [], [], remaining)
        if ready:
            chunk = os.read(proc.stdout.fileno(), 65536)
            assert chunk, f"stdout closed before {needle!r}; got {data!r}"
            data += chunk
    return data


def one_error_line(result: Result, starts: str) -> None:
    assert result.code == 1, result
    assert result.out == "", result
    assert result.err.startswith(f"persistproc: {starts}"), result
    assert result.err.count("\n") == 1 and "Traceback" not in result.err, result


# ----- list and status ---------------------------------------------------------------------------


def test_list_empty(cli: Any) -> None:
    result = cli("list")
    assert (result.code, result.out, result.err) == (0, "", "persistproc: no processes\n")
    result = cli("list", "--json")
    assert result.code == 0 and json.loads(result.out) == []


def test_list_shows_processes_and_fits_the_width(
    cli: Any, procs: Processes, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    echo = procs.start("echo")
    colors = procs.start("colors")
    procs.wait_exit(colors["name"])
    result = cli("list")
    assert result.code == 0, result
    header, *rows = result.out.splitlines()
    assert header.split() == ["NAME", "PID", "STATUS", "AGE", "DIRECTORY", "COMMAND"]
    by_name = {row.split()[0]: row for row in rows}
    assert set(by_name) == {echo["name"], colors["name"]}
    assert f"{echo['pid']}  running" in by_name[echo["name"]]
    assert "exited 0" in by_name[colors["name"]]
    assert "\x1b[" not in result.out  # not a terminal: no colors

    monkeypatch.setenv("COLUMNS", "70")
    narrow = cli("list")
    assert all(cell_width(line) <= 70 for line in narrow.out.splitlines()), narrow.out
    assert "…" in narrow.out

    listed = json.loads(cli("list", "--json").out)
    assert {p["name"] for p in listed} == {echo["name"], colors["name"]}
    elsewhere = cli("list", "--json", "--directory", str(tmp_path / "nowhere"))
    assert json.loads(elsewhere.out) == []


def test_status_by_name_and_pid(cli: Any, procs: Processes) -> None:
    info = procs.start("echo")
    result = cli("status", info["name"])
    assert result.code == 0, result
    fields = dict(line.split(None, 1) for line in result.out.splitlines() if " " in line)
    assert fields["pid"] == str(info["pid"])
    assert fields["status"].startswith("running")
    assert fields["command"] == info["command"]
    by_pid = json.loads(cli("status", str(info["pid"]), "--json").out)
    assert by_pid["name"] == info["name"] and "listening_ports" in by_pid


# ----- logs --------------------------------------------------------------------------------------


def test_logs_tail_stream_grep_and_raw(cli: Any, procs: Processes, server: Server) -> None:
    info = procs.start("flood", "120", wait_for="ValueError: boom")
    procs.wait_exit(info["name"])
    name = info["name"]

    tail = cli("logs", name, "-n", "2")
    assert tail.code == 0 and tail.out.splitlines() == [
        '    raise ValueError("boom")',
        "ValueError: boom",
    ]
    stdout = cli("logs", name, "-n", "2", "--stream", "stdout").out.splitlines()
    assert [line.split()[:2] for line in stdout] == [["line", "000119"], ["line", "000120"]]
    assert "boom" not in cli("logs", name, "--stream", "stdout").out
    grep = cli("logs", name, "--grep", "line 00004[0-2]").out.splitlines()
    assert [line.split()[1] for line in grep] == ["000040", "000041", "000042"]
    assert cli("logs", name).out.count("\n") == 100  # the default

    raw = run_cli(server.port, "logs", name, "--raw")
    assert raw.returncode == 0, raw.stderr
    assert b"\x1b[" in raw.stdout and raw.stdout.endswith(b"ValueError: boom\r\n")
    assert raw.stdout.count(b" the quick brown fox") == 120
    last = run_cli(server.port, "logs", name, "--raw", "-n", "1")
    assert last.stdout == b"ValueError: boom\r\n", last


def test_logs_follow_prints_new_lines_and_stops_when_the_process_exits(
    procs: Processes, server: Server
) -> None:
    name = procs.start("echo")["name"]
    env = {**os.environ, "PERSISTPROC_PORT": str(server.port)}
    follow = subprocess.Popen(
        [sys.executable, "-m", "persistproc", "logs", name, "-f"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )
    try:
        seen = read_until(follow, b"READY\n")
        status, _ = api(server, "POST", f"/api/processes/{name}/input", {"text": "one\n"})
        assert status == 200
        seen = read_until(follow, b"echo: one\n", seen)
        status, _ = api(server, "POST", f"/api/processes/{name}/stop", {})
        assert status == 200
        rest, err = follow.communicate(timeout=WAIT)
    finally:
        if follow.poll() is None:
            follow.kill()
            follow.communicate()
    assert follow.returncode == 0, err
    assert (seen + rest).count(b"echo: one\n") == 1  # printed once, never repeated


# ----- stop, restart, screen, send, wait ---------------------------------------------------------


def test_stop_and_restart(cli: Any, procs: Processes) -> None:
    info = procs.start("echo")
    name = info["name"]
    restarted = cli("restart", name, "--wait-for", "^READY$")
    assert restarted.code == 0, restarted
    after = json.loads(cli("status", name, "--json").out)
    assert after["pid"] != info["pid"] and after["run"] == 2 and after["status"] == "running"
    assert restarted.out == f"restarted {name} (pid {after['pid']}, run 2)\n"
    assert not psutil.pid_exists(info["pid"]) or psutil.Process(info["pid"]).status() == "zombie"

    stopped = cli("stop", name, "--timeout", "5")
    assert stopped.code == 0 and stopped.out.startswith(f"stopped {name} (pid {after['pid']}"), (
        stopped
    )
    assert json.loads(cli("status", name, "--json").out)["status"] == "stopped"
    again = cli("stop", name)
    assert again.code == 0 and again.out.startswith(f"{name} was not running"), again


def test_screen(cli: Any, procs: Processes) -> None:
    name = procs.start("screen_draw")["name"]
    result = cli("screen", name)
    assert result.code == 0, result
    rows = result.out.split("\n")
    assert rows[0] == "TOP-LEFT"
    assert rows[3:6] == ["    +------+", "    |      |", "    +------+"]
    assert rows[7] == "READY"
    assert any(row.strip() == "CENTER" for row in rows)
    assert result.out.endswith("\n") and not result.out.endswith("\n\n")  # no blank rows at the end
    shot = json.loads(cli("screen", name, "--json").out)
    assert shot["lines"][0].startswith("TOP-LEFT") and shot["columns"] > 0


def test_send_and_wait_on_a_prompt(cli: Any, procs: Processes) -> None:
    name = procs.start("prompt", wait_for=r"^name\?")["name"]
    asked = cli("wait", name, r"name\?", "--since", "0")
    assert asked.code == 0 and asked.out.startswith("name?"), asked
    sent = cli("send", name, "bob", "--key", "enter")
    assert (sent.code, sent.out, sent.err) == (0, "", "")
    greeted = cli("wait", name, "hello, bob!", "--since", "0")
    assert (greeted.code, greeted.out) == (0, "hello, bob!\n"), greeted
    found = json.loads(cli("wait", name, "hello", "--since", "0", "--json").out)
    assert found["matched"] and found["line"] == "hello, bob!"
    procs.wait_exit(name)
    ended = cli("send", name, "late")
    one_error_line(ended, f"'{name}' is not running")


def test_wait_timeout_exits_1(cli: Any, procs: Processes) -> None:
    name = procs.start("echo")["name"]
    result = cli("wait", name, "never there", "--timeout", "0.3")
    assert result.code == 1 and result.out == "", result
    assert result.err == "persistproc: no line matched 'never there' within 0.3 s\n"


# ----- errors ------------------------------------------------------------------------------------


UNKNOWN = [
    ["status", "nope"],
    ["logs", "nope"],
    ["logs", "nope", "--raw"],
    ["logs", "nope", "-f"],
    ["stop", "nope"],
    ["restart", "nope"],
    ["screen", "nope"],
    ["send", "nope", "x"],
    ["wait", "nope", "x"],
    ["remove", "nope"],
]


def test_unknown_name_is_one_line_and_exit_1(cli: Any) -> None:
    for args in UNKNOWN:  # one server for all: each server costs about a second to start
        one_error_line(cli(*args), "no process named 'nope'")


def test_unknown_pid_and_bad_arguments(cli: Any) -> None:
    one_error_line(cli("status", "999999999"), "no process with pid 999999999")
    one_error_line(cli("logs", "x", "--grep", "("), "invalid grep '('")
    both = cli("send", "x")
    assert both.code == 2 and both.err == "persistproc: give TEXT, --key, or both\n", both
    raw = cli("logs", "x", "--raw", "--grep", "a")
    assert raw.code == 2 and "--raw" in raw.err, raw
    usage = cli("logs", "x", "-n", "0")
    assert usage.code == 2 and "expected 1 or more" in usage.err


def test_no_server_is_one_line_and_exit_1() -> None:
    port = free_port()  # nobody listens on it
    result = run_cli(port, "list")
    assert result.returncode == 1
    assert result.stdout == b""
    expected = f"persistproc: no persistproc server on 127.0.0.1:{port} (start one with 'persistproc --serve')\n"
    assert result.stderr.decode() == expected


def test_help_documents_commands_and_exit_codes(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        main(["--help"])
    assert done.value.code == 0
    text = capsys.readouterr().out
    assert "exit status:" in text and "2    bad usage" in text
    for command in ("list", "status", "logs", "stop", "restart", "screen", "send", "wait"):
        assert f"    {command} " in text
        with pytest.raises(SystemExit) as done:
            main([command, "--help"])
        assert done.value.code == 0 and capsys.readouterr().out.startswith("usage: persistproc")
    assert main([]) == 2
    capsys.readouterr()
    with pytest.raises(SystemExit) as done:
        main(["--serve", "list"])
    assert done.value.code == 2


# ----- the REST routes ---------------------------------------------------------------------------


def test_rest_errors_are_json_with_the_right_status(server: Server, procs: Processes) -> None:
    name = procs.start("echo", name="web")["name"]
    cases: list[tuple[str, str, Any, int, str]] = [
        ("GET", "/api/processes/nope", None, 404, "no process named 'nope'"),
        ("GET", "/api/processes/123456789", None, 404, "no process with pid 123456789"),
        ("GET", f"/api/processes/{name}/output?lines=0", None, 400, "lines must be"),
        ("GET", f"/api/processes/{name}/output?lines=x", None, 400, "lines must be a whole"),
        ("GET", f"/api/processes/{name}/output?bogus=1", None, 400, "unknown query parameter"),
        ("POST", "/api/processes", b"{not json", 400, "not valid JSON"),
        ("POST", "/api/processes", b"[1]", 400, "must be a JSON object"),
        ("POST", "/api/processes", {"working_directory": "/"}, 400, "command is required"),
        ("POST", f"/api/processes/{name}/stop", {"force": "yes"}, 400, "force must be true"),
        ("POST", f"/api/processes/{name}/wait", {"pattern": "x", "when": 1}, 400, "unknown field"),
        ("POST", f"/api/processes/{name}/input", {}, 400, "give text, keys, or both"),
        ("POST", f"/api/processes/{name}/screen", {}, 405, "Method Not Allowed"),
        ("GET", "/api/nothing", None, 404, "Not Found"),
    ]
    for method, path, body, code, message in cases:
        status, answer = api(server, method, path, body)
        assert (status, list(answer)) == (code, ["error"]), (method, path, answer)
        assert message in answer["error"], (method, path, answer)
        assert "Traceback" not in answer["error"]

    other = {"command": fixture_cmd("echo", "x"), "working_directory": str(procs.cwd), "name": name}
    status, answer = api(server, "POST", "/api/processes", other)
    assert status == 409 and "is used by running process" in answer["error"], answer
    status, answer = api(server, "GET", "/api/processes", None, Host="evil.example")
    assert status == 421, answer


def test_rest_start_list_remove(server: Server, procs: Processes) -> None:
    info = procs.start("echo", name="svc")
    assert info["status"] == "running" and info["ready"] is True
    status, listed = api(server, "GET", f"/api/processes?working_directory={procs.cwd}")
    assert status == 200 and [p["name"] for p in listed["processes"]] == ["svc"]
    status, page = api(server, "GET", "/api/processes/svc/output?lines=5&stream=stdout")
    assert status == 200 and page["text"] == "READY" and page["cursor"] == 1
    status, removed = api(server, "DELETE", "/api/processes/svc")
    assert status == 200 and removed["removed"] is True
    assert api(server, "GET", "/api/processes")[1] == {"processes": []}


def test_shutdown_stops_the_server_and_its_processes(server: Server, procs: Processes) -> None:
    info = procs.start("echo")
    result = run_cli(server.port, "shutdown")
    assert result.returncode == 0, result.stderr
    assert (
        result.stdout.decode() == f"the persistproc server on 127.0.0.1:{server.port} has stopped\n"
    )
    assert server.proc.wait(timeout=WAIT) == 0
    assert not psutil.pid_exists(info["pid"]) or psutil.Process(info["pid"]).status() == "zombie"
    procs.names.clear()  # the server stopped them; nobody is left to ask


def test_a_second_server_on_the_same_data_directory_is_refused(
    server: Server, procs: Processes
) -> None:
    """It would take the first one's processes for leftovers of a crash and kill them."""
    info = procs.start("echo", name="kept")
    other = free_port()
    command = [sys.executable, "-m", "persistproc", "--serve", "--port", str(other)]
    second = subprocess.run(
        [*command, "--data-dir", str(server.data_dir)],
        capture_output=True,
        timeout=WAIT,
        check=False,
    )
    assert second.returncode == 1
    message = second.stderr.decode()
    assert f"in use by another persistproc server (pid {server.proc.pid}, port {server.port})" in (
        message
    ), message
    assert "Traceback" not in message
    assert psutil.Process(info["pid"]).status() != psutil.STATUS_ZOMBIE  # untouched
    assert api(server, "GET", "/api/processes/kept")[1]["status"] == "running"


def test_shutdown_returns_once_every_process_is_stopped(server: Server, procs: Processes) -> None:
    """A process that ignores SIGTERM keeps the server busy for its grace period after the port
    closed: `shutdown` waits for that too, then a new server can take the data directory."""
    procs.start("sigtrap", "--ignore-term", name="stubborn")
    result = run_cli(server.port, "shutdown")
    assert result.returncode == 0, result.stderr
    assert server.proc.poll() is not None  # exited, not only closed its port
    procs.names.clear()


# ----- rendering ---------------------------------------------------------------------------------


class FakeTerminal:
    def __init__(self, tty: bool) -> None:
        self.tty = tty

    def isatty(self) -> bool:
        return self.tty


def test_colors_only_on_a_terminal_without_no_color() -> None:
    assert use_color(FakeTerminal(True), {})  # type: ignore[arg-type]
    assert not use_color(FakeTerminal(True), {"NO_COLOR": "1"})  # type: ignore[arg-type]
    assert not use_color(FakeTerminal(False), {})  # type: ignore[arg-type]
    assert Style(True)("x", "31") == "\x1b[31mx\x1b[0m" and Style(False)("x", "31") == "x"


def test_table_shrinks_elastic_columns_to_fit() -> None:
    columns = [
        Column("NAME"),
        Column("PATH", elastic=True, keep_end=True),
        Column("CMD", elastic=True),
    ]
    rows = [["web", "/home/me/projects/site", "npm run dev -- --port 3000 --host"]]
    wide = table(columns, rows, None)
    assert wide[1] == "web   /home/me/projects/site  npm run dev -- --port 3000 --host"
    narrow = table(columns, rows, 40, [[None, None, "32"]], Style(True))
    plain = [
        line.replace("\x1b[32m", "").replace("\x1b[0m", "").replace("\x1b[1m", "")
        for line in narrow
    ]
    assert all(cell_width(line) <= 40 for line in plain), plain
    assert "…" in plain[1] and plain[1].startswith("web ")
    assert truncate("/a/long/path", 6, keep_end=True) == "…/path"
    assert truncate("表表表", 4) == "表…" and cell_width("表") == 2
