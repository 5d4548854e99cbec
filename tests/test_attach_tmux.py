"""The interactive client in a real terminal: `persistproc CMD` and `persistproc attach` in tmux.

Each test has its own tmux server (its own socket) with `bash` in a 120x30 window, whose shell
talks to the test's persistproc server (PERSISTPROC_PORT, PERSISTPROC_DATA_DIR). The tests type
with `send-keys` and read the screen with `capture-pane`, polling until a pattern shows up.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest
from conftest import SESSION, SESSION_ENV, Server, fixture_cmd, free_port, kill_leftovers

TMUX = shutil.which("tmux")
pytestmark = pytest.mark.skipif(TMUX is None, reason="tmux is not installed")

WAIT = 15.0  # seconds a condition on the screen may take to show up
POLL = 0.05
COLUMNS, ROWS = 120, 30
# tmux leaves PS1 out of the panes' environment, hence `env`.
SHELL = shlex.join(["env", "PS1=$ ", "bash", "--norc", "--noprofile"])
# `persistproc` in these shells is this interpreter's package (sys.executable -m persistproc).
PERSISTPROC = [sys.executable, "-m", "persistproc"]
SHELL_SETUP = f'persistproc() {{ {shlex.join(PERSISTPROC)} "$@"; }}; clear'
UNSET_ENV = ("TMUX", "TMUX_PANE", "PERSISTPROC_NO_SERVER_START", "PERSISTPROC_DETACH_KEY")
RED = "\x1b[31m"
_DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # never via a proxy


class Tmux:
    """A tmux server on a socket of its own, session `main`; windows are named (first: `one`)."""

    def __init__(self, env: dict[str, str], cwd: Path) -> None:
        self.socket = f"persistproc-test-{uuid.uuid4().hex[:12]}"
        self.env, self.cwd = env, cwd
        self.socket_path: Path | None = None
        self._markers = 0

    def __call__(self, *args: str) -> str:
        """Run a tmux command on this server; return its output."""
        assert TMUX is not None
        command = [TMUX, "-L", self.socket, "-f", "/dev/null", *args]
        done = subprocess.run(
            command, env=self.env, capture_output=True, text=True, check=True, timeout=WAIT
        )
        return done.stdout

    def start(self) -> None:
        size = ["-x", str(COLUMNS), "-y", str(ROWS)]
        self("new-session", "-d", *size, "-s", "main", "-n", "one", "-c", str(self.cwd), SHELL)
        self.socket_path = Path(
            self("display-message", "-p", "-t", "main", "#{socket_path}").strip()
        )
        self._setup_shell("one")

    def new_window(self, window: str) -> None:
        self("new-window", "-d", "-t", "main", "-n", window, "-c", str(self.cwd), SHELL)
        self._setup_shell(window)

    def _setup_shell(self, window: str) -> None:
        self.type(SHELL_SETUP, window)
        self.wait_prompt(window)

    def kill(self) -> None:
        """Kill the server (its clients get SIGHUP) and remove its socket, which tmux leaves."""
        assert TMUX is not None
        subprocess.run(
            [TMUX, "-L", self.socket, "kill-server"],
            env=self.env,
            capture_output=True,
            check=False,
            timeout=WAIT,
        )
        if self.socket_path is not None:
            self.socket_path.unlink(missing_ok=True)

    def keys(self, *keys: str, window: str = "one") -> None:
        """Press keys by tmux name: `C-c`, `C-\\`, `Escape`, `Enter`."""
        self("send-keys", "-t", f"main:{window}", *keys)

    def type(self, text: str, window: str = "one", enter: bool = True) -> None:
        self("send-keys", "-t", f"main:{window}", "-l", text)
        if enter:
            self.keys("Enter", window=window)

    def screen(self, window: str = "one", escapes: bool = False) -> str:
        """The visible screen (-J: wrapped lines whole), without trailing blanks."""
        options = ["-p", "-J", *(["-e"] if escapes else [])]
        text = self("capture-pane", *options, "-t", f"main:{window}")
        return "\n".join(line.rstrip() for line in text.split("\n")).rstrip("\n")

    def wait_for(
        self, pattern: str, window: str = "one", escapes: bool = False, after: str | None = None
    ) -> re.Match[str]:
        """Poll until `pattern` (multi-line mode) matches the screen, or below the last line
        that contains `after`."""
        compiled = re.compile(pattern, re.MULTILINE)
        deadline = time.monotonic() + WAIT
        while True:
            text = self.screen(window, escapes)
            start = text.rfind(after) if after is not None else 0
            match = compiled.search(text, start) if start >= 0 else None
            if match:
                return match
            if time.monotonic() > deadline:
                pytest.fail(f"no {pattern!r} on the screen of {window} within {WAIT:g} s:\n{text}")
            time.sleep(POLL)

    def run(
        self, command: str, ready: str, window: str = "one", full_screen: bool = False
    ) -> re.Match[str]:
        """Type a command line and wait for `ready` below it (anywhere for a full-screen program,
        which hides the command line). The client shows the process only once the terminal is
        raw: keys typed after that go to the process (typed earlier, they are lost)."""
        self.type(command, window)
        return self.wait_for(ready, window, after=None if full_screen else f"$ {command}")

    def wait_prompt(self, window: str = "one") -> None:
        """Wait for the shell's prompt on the last line: what ran before has returned."""
        self.wait_for(r"^\$\Z", window)

    def exit_status(self, window: str = "one") -> int:
        """$? of the command the shell ran last (call once that command has returned)."""
        self._markers += 1
        marker = f"status{self._markers}"
        self.type(f"echo {marker}=$?", window)
        return int(self.wait_for(rf"^{marker}=(\d+)$", window).group(1))


@pytest.fixture
def tmux_factory(tmp_path: Path) -> Iterator[Callable[[int, Path], Tmux]]:
    """Start terminals whose shells talk to the persistproc server on (port, data dir); every
    tmux server is killed at teardown."""
    made: list[Tmux] = []
    workdir = tmp_path / "work"
    workdir.mkdir()

    def make(port: int, data_dir: Path) -> Tmux:
        env = {k: v for k, v in os.environ.items() if k not in UNSET_ENV}
        env.update(
            PERSISTPROC_PORT=str(port), PERSISTPROC_DATA_DIR=str(data_dir), **{SESSION_ENV: SESSION}
        )
        tmux = Tmux(env, workdir)
        made.append(tmux)
        tmux.start()
        return tmux

    yield make
    for tmux in made:
        tmux.kill()


@pytest.fixture
def term(server: Server, tmux_factory: Callable[[int, Path], Tmux]) -> Tmux:
    """A terminal whose shell talks to the test's server (killed before the server stops)."""
    return tmux_factory(server.port, server.data_dir)


def run_line(name: str, fixture: str, *args: str, options: tuple[str, ...] = ()) -> str:
    """`persistproc [options] --name NAME <fixture> [args]`, as a person would type it."""
    return f"{shlex.join(['persistproc', *options, '--name', name])} {fixture_cmd(fixture, *args)}"


def exit_note(name: str, code: int) -> str:
    """The line the client prints when the process ends while attached."""
    return rf"^persistproc: {re.escape(name)} \(pid \d+\) \w+: exit code {code}$"


def detach_note(name: str) -> str:
    """The line the client prints when it detaches: how to come back."""
    name = re.escape(name)
    return (
        rf"^persistproc: detached from {name} \(pid \d+\); it keeps running\. "
        rf"Back: persistproc attach {name}$"
    )


def api_get(server: Server, path: str) -> dict[str, Any]:
    with _DIRECT.open(f"{server.base}/api/processes/{path}", timeout=WAIT) as response:
        result: dict[str, Any] = json.load(response)
        return result


def api_status(server: Server, name: str) -> dict[str, Any] | None:
    """GET /api/processes/NAME, or None when the server knows no such process."""
    try:
        return api_get(server, name)
    except urllib.error.HTTPError as error:
        if error.code == 404:
            return None
        raise


def api_output(server: Server, name: str) -> str:
    return str(api_get(server, f"{name}/output?lines=1000")["text"])


def assert_running(server: Server, name: str) -> None:
    info = api_status(server, name)
    assert info is not None and info["status"] == "running", info


def cli(port: int, *args: str, timeout: float = WAIT) -> subprocess.CompletedProcess[str]:
    """The command line client outside any terminal, on `port`."""
    env = {**os.environ, "PERSISTPROC_PORT": str(port)}
    return subprocess.run(
        [*PERSISTPROC, *args], env=env, capture_output=True, text=True, timeout=timeout
    )


# ----- as if the program ran in this terminal ---------------------------------------------------


def test_colored_output_keeps_its_colors(term: Tmux) -> None:
    term.run(run_line("colors", "colors", "--stderr"), exit_note("colors", 0))
    screen = term.screen()
    assert "isatty: stdout=True stderr=True stdin=True" in screen
    assert "err line 3" in screen  # stderr reaches the terminal too
    colored = term.screen(escapes=True)
    for sgr in (f"{RED}red", "\x1b[38;5;208m", "\x1b[38;2;255;105;180m"):  # 16, 256, 24-bit
        assert sgr in colored, colored
    assert term.exit_status() == 0


def test_typed_input_reaches_a_prompt(term: Tmux) -> None:
    term.run(run_line("prompt", "prompt"), r"^name\?$")
    term.type("alice")
    term.wait_for(r"^hello, alice!$")
    term.wait_for(exit_note("prompt", 0))
    assert term.exit_status() == 0


def test_resize_reaches_the_process_and_ctrl_c_stops_it(term: Tmux) -> None:
    term.run(run_line("trap", "sigtrap"), r"^READY$")
    term("resize-window", "-t", "main:one", "-x", "100", "-y", "25")
    term.wait_for(r"^size=100x25$")
    term.keys("C-c")
    term.wait_for(r"got SIGINT$")  # after the terminal's echo of ^C
    term.wait_for(exit_note("trap", 130))
    assert term.exit_status() == 130


# A `persistproc` whose attach comes half a second late, as on a loaded machine: what a program
# does right after it starts then surely happens before the attach (else the tests would race).
LATE_CLIENT = """\
import asyncio, runpy
from persistproc.client import interactive

attach = interactive.attach


async def late(*args):
    await asyncio.sleep(0.5)
    return await attach(*args)


interactive.attach = late
runpy.run_module("persistproc", run_name="__main__")
"""


@pytest.fixture
def late_client(tmp_path: Path) -> str:
    """The command line of a `persistproc` that attaches half a second late."""
    from persistproc.client import interactive

    if not callable(getattr(interactive, "attach", None)):
        pytest.fail("persistproc.client.interactive.attach is gone: update LATE_CLIENT")
    script = tmp_path / "late_persistproc.py"
    script.write_text(LATE_CLIENT)
    return shlex.join([sys.executable, str(script)])


def test_the_process_starts_with_the_size_of_the_terminal(term: Tmux, late_client: str) -> None:
    # `stty size` reads the size once, at start, like any program that lays out its output then
    # (`ls` columns, a progress bar, a TUI's first frame).
    command = f"{late_client} --name size sh -c 'stty size; read line'"
    rows, columns = term.run(command, r"^(\d+) (\d+)$").groups()
    term.type("")
    term.wait_for(exit_note("size", 0))
    assert (int(columns), int(rows)) == (COLUMNS, ROWS)


def test_a_quick_command_shows_its_output_and_exit_code(term: Tmux, late_client: str) -> None:
    command = f"{late_client} --name quick sh -c 'echo quick-output; exit 3'"
    term.type(command)
    term.wait_prompt()
    assert term.exit_status() == 3, term.screen()
    shown = term.screen()
    assert re.search(r"^quick-output$", shown, re.MULTILINE), shown
    assert re.search(exit_note("quick", 3), shown, re.MULTILINE), shown


# ----- detach and attach again -------------------------------------------------------------------


def test_detach_key_leaves_the_process_running(server: Server, term: Tmux) -> None:
    term.run(run_line("echo", "echo"), r"^READY$")
    term.type("before")
    term.wait_for(r"^echo: before$")
    term.keys("C-\\")
    term.wait_for(detach_note("echo"))
    term.wait_prompt()
    assert term.exit_status() == 0
    assert_running(server, "echo")
    term.run("persistproc attach echo", r"^echo: before$")  # the recent output again
    term.type("after")
    term.wait_for(r"^echo: after$")
    term.keys("C-d")  # end of input: echo.py exits 0
    term.wait_for(exit_note("echo", 0))
    assert term.exit_status() == 0


def test_reattach_shows_the_same_full_screen(term: Tmux) -> None:
    term.run(run_line("draw", "screen_draw", "--alt"), r"^READY$", full_screen=True)
    drawn = term.screen()
    assert re.search(r"\ATOP-LEFT$", drawn, re.MULTILINE), drawn
    assert re.search(r"^ +CENTER$", drawn, re.MULTILINE), drawn
    assert "\n    +------+\n    |      |\n    +------+\n" in drawn
    term.keys("C-\\")
    term.wait_for(detach_note("draw"))
    term.wait_prompt()
    assert "CENTER" not in term.screen()  # the shell's screen again
    term.type("persistproc attach draw")
    term.wait_for(rf"\A{re.escape(drawn)}\Z")  # the same screen, repainted
    term.type("quit")
    term.wait_for(exit_note("draw", 0))
    assert "CENTER" not in term.screen()  # it left the alternate screen
    assert term.exit_status() == 0


def test_two_clients_and_a_read_only_one(server: Server, term: Tmux) -> None:
    clients = ("one", "two", "watch")
    term.new_window("two")
    term.new_window("watch")
    term.run(run_line("echo", "echo"), r"^READY$")
    term.run("persistproc attach echo", r"^READY$", "two")
    term.run("persistproc attach --read-only echo", r"^READY$", "watch")
    for typist in ("one", "two"):  # in turn: keys from two terminals at once would interleave
        term.type(f"from-{typist}", typist)
        for window in clients:
            term.wait_for(rf"^echo: from-{typist}$", window)
    term.type("sneaky", "watch")
    term.type("from-one-again")
    for window in clients:
        term.wait_for(r"^echo: from-one-again$", window)
        assert "sneaky" not in term.screen(window)
    assert "sneaky" not in api_output(server, "echo")
    term.keys("C-d", window="two")
    for window in clients:
        term.wait_for(exit_note("echo", 0), window)
        assert term.exit_status(window) == 0


def test_a_refused_attach_says_why(term: Tmux) -> None:
    term.type("persistproc attach nosuch")
    term.wait_prompt()
    assert term.exit_status() == 1
    assert "\npersistproc: no process named 'nosuch'" in term.screen(), term.screen()


# ----- the detach key ----------------------------------------------------------------------------

# Prints what one read in raw mode returns: there Ctrl-\ is a byte (0x1c), where a cooked
# terminal would turn it into SIGQUIT (so `cat -v` or echo.py could not show it).
RAW_READER = (
    "import os, tty; tty.setraw(0); print('READY', flush=True); "
    "print('got', os.read(0, 64).hex(), flush=True)"
)


def test_detach_key_pressed_twice_is_sent_once(term: Tmux) -> None:
    reader = shlex.join([sys.executable, "-c", RAW_READER])
    term.run(f"persistproc --name raw {reader}", r"^READY$")
    term.keys("C-\\", "C-\\")
    term.wait_for(r"got 1c$")  # one 0x1c, and no detaching
    term.wait_for(exit_note("raw", 0))
    assert "detached" not in term.screen()
    assert term.exit_status() == 0


def test_another_detach_key(server: Server, term: Tmux) -> None:
    term.run(run_line("echo", "echo", options=("--detach-key", "ctrl-a")), r"^READY$")
    term.keys("C-a")
    term.wait_for(detach_note("echo"))
    assert_running(server, "echo")
    term.run("PERSISTPROC_DETACH_KEY=ctrl-a persistproc attach echo", r"^READY$")
    term.type("still-there")
    term.wait_for(r"^echo: still-there$")
    term.keys("C-a")
    term.wait_for(detach_note("echo"), after="still-there")
    assert term.exit_status() == 0
    assert_running(server, "echo")


def test_an_invalid_detach_key_starts_nothing(server: Server, term: Tmux) -> None:
    term.run(run_line("echo", "echo", options=("--detach-key", "bogus")), r"invalid detach key")
    term.wait_prompt()
    assert term.exit_status() == 1
    assert api_status(server, "echo") is None


# ----- starting a server -------------------------------------------------------------------------


def servers_on(port: int) -> list[psutil.Process]:
    """`persistproc --serve` processes on this port."""
    found = []
    for process in psutil.process_iter(["cmdline"]):
        command = process.info["cmdline"] or []
        if "--serve" in command and str(port) in command:
            found.append(process)
    return found


def test_background_server_survives_the_terminal(
    tmp_path: Path, tmux_factory: Callable[[int, Path], Tmux]
) -> None:
    port = free_port()
    term = tmux_factory(port, tmp_path / "background-data")
    try:
        term.type(run_line("echo", "echo"))
        started = term.wait_for(r"^persistproc: started a server in the background \(pid (\d+)")
        term.wait_for(r"^READY$")
        assert [p.pid for p in servers_on(port)] == [int(started.group(1))]
        shell = psutil.Process(int(term("display-message", "-p", "-t", "main:one", "#{pane_pid}")))
        # The shell and the client; the server runs in a session of its own.
        in_terminal = [shell, *(p for p in shell.children() if os.getsid(p.pid) == shell.pid)]
        assert len(in_terminal) == 2, in_terminal
        term.kill()  # the terminal goes away: SIGHUP for the shell and the client
        _, alive = psutil.wait_procs(in_terminal, timeout=WAIT)
        assert not alive, f"still running after the terminal closed: {alive}"
        listed = cli(port, "list", "--json")
        assert listed.returncode == 0, listed.stderr
        [(name, status)] = [(p["name"], p["status"]) for p in json.loads(listed.stdout)]
        assert (name, status) == ("echo", "running")
    finally:
        with contextlib.suppress(subprocess.TimeoutExpired):
            cli(port, "shutdown", timeout=40)
        _, alive = psutil.wait_procs(servers_on(port), timeout=WAIT)
        for process in alive:
            process.kill()
        leaked = kill_leftovers()
    assert not alive, f"the background server outlived `persistproc shutdown`: {alive}"
    assert not leaked, f"processes outlived the background server: {leaked}"


@pytest.mark.parametrize("how", ["--no-server-start", "PERSISTPROC_NO_SERVER_START=1"])
def test_no_server_start(
    tmp_path: Path, tmux_factory: Callable[[int, Path], Tmux], how: str
) -> None:
    port = free_port()
    data_dir = tmp_path / "unused-data"
    term = tmux_factory(port, data_dir)
    if how.startswith("--"):
        term.type(run_line("echo", "echo", options=(how,)))
    else:
        term.type(f"{how} {run_line('echo', 'echo')}")
    term.wait_prompt()
    output = term.screen().split("\n")[1:-1]  # between the command line and the prompt
    assert len(output) == 1, output
    assert re.fullmatch(
        rf"persistproc: no persistproc server on 127\.0\.0\.1:{port}\b.*", output[0]
    )
    assert term.exit_status() == 1
    assert not servers_on(port)
    assert not data_dir.exists()


# ----- a real full-screen program ----------------------------------------------------------------


@pytest.mark.skipif(shutil.which("vim") is None, reason="vim is not installed")
def test_vim_survives_detach_and_attach(term: Tmux) -> None:
    term.run("persistproc --name vim vim -u NONE -N", r"^~$", full_screen=True)
    assert max(len(line) for line in term.screen().split("\n")) <= COLUMNS  # drawn for this size
    term.type("ihello", enter=False)
    term.keys("Escape")
    term.wait_for(r"\Ahello\n~$")
    term.keys("C-\\")
    term.wait_for(detach_note("vim"))
    term.wait_prompt()
    term.type("persistproc attach vim")
    term.wait_for(r"\Ahello\n~\n~\n")
    term.type(":q!")
    term.wait_for(exit_note("vim", 0))
    assert term.exit_status() == 0


def test_an_interactive_shell_has_job_control(term: Tmux) -> None:
    """One terminal for both streams, as when run directly: bash takes its job-control terminal
    from stderr, so it must be the controlling terminal."""
    term.run("persistproc --name shell env PS1=shell: bash --norc --noprofile -i", r"^shell:")
    term.type("sleep 1000 &")
    term.type("jobs; echo JOBS-DONE")
    term.wait_for(r"^\[1\]\+ +Running +sleep 1000 &$")
    term.wait_for(r"^JOBS-DONE$")
    assert "no job control" not in term.screen()
    term.type("kill %1; exit 0")
    term.wait_for(exit_note("shell", 0))
