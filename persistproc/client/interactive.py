"""`persistproc run CMD` and `persistproc attach PID|NAME`: a process in this terminal.

`run` starts the command through the server in the current directory with this environment (sent
to the server, never logged), then attaches; if the same command already runs here it attaches to
that one. When no server answers, one is started in the background first.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from persistproc import paths
from persistproc.client.api import Client, ClientError, ServerUnavailable
from persistproc.client.attach import attach, terminal_size
from persistproc.client.commands import Output
from persistproc.detach import DEFAULT_DETACH_KEY, parse_detach_key

NO_SERVER_START_ENV = "PERSISTPROC_NO_SERVER_START"
DETACH_KEY_ENV = "PERSISTPROC_DETACH_KEY"
SERVER_START_TIMEOUT = 20.0


def ensure_server(client: Client, allowed: bool, out: Output, data_dir: str | None = None) -> None:
    """Start a background server when none answers (detached from this terminal: closing the
    terminal does not stop it), and wait until it is ready."""
    try:
        client.health()
        return
    except ServerUnavailable:
        if not allowed or os.environ.get(NO_SERVER_START_ENV, "") not in ("", "0"):
            raise
    directory = paths.ensure_private_dir(paths.data_dir(data_dir))
    log_path = directory / "server.out"
    with open(log_path, "ab") as log:
        server = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "persistproc",
                "--serve",
                "--host",
                client.host,
                "--port",
                str(client.port),
                "--data-dir",
                str(directory),
            ],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            start_new_session=True,
            close_fds=True,
        )
    deadline = time.monotonic() + SERVER_START_TIMEOUT
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise ClientError(
                f"the server did not start (exit {server.returncode}); see {log_path}"
            )
        try:
            client.health()
            out.note(f"started a server in the background (pid {server.pid}, log {log_path})")
            return
        except ServerUnavailable:
            time.sleep(0.05)  # readiness probe of a process we just started
    raise ClientError(
        f"the server did not answer within {SERVER_START_TIMEOUT:.0f} s; see {log_path}"
    )


def _detach_key(args: argparse.Namespace) -> int:
    spec = args.detach_key or os.environ.get(DETACH_KEY_ENV) or DEFAULT_DETACH_KEY
    try:
        return parse_detach_key(spec)
    except ValueError as error:
        raise ClientError(str(error)) from None


def _attached(client: Client, target: str, args: argparse.Namespace, out: Output) -> int:
    key = _detach_key(args)
    outcome = asyncio.run(attach(client, target, args.read_only, key))
    info: dict[str, Any] = outcome.process
    name, pid = info.get("name", target), info.get("pid")
    if outcome.detached:
        out.note(
            f"detached from {name} (pid {pid}); it keeps running. Back: persistproc attach {name}"
        )
        return 0
    with contextlib.suppress(ClientError):
        info = client.status(name)
    code, signal_name = info.get("exit_code"), info.get("signal")
    out.note(
        f"{name} (pid {pid}) {info.get('status', 'ended')}: "
        + (f"exit code {code}" if signal_name is None else f"killed by {signal_name}")
    )
    return int(code) if isinstance(code, int) else 1


def cmd_attach(client: Client, args: argparse.Namespace, out: Output) -> int:
    ensure_server(client, allowed=False, out=out)
    target = args.target
    if target is None:
        target = _pick(client.list_processes())
    return _attached(client, str(target), args, out)


def _pick(processes: list[dict[str, Any]]) -> str:
    """The only running process, or the one the person picks when several run."""
    running = [p for p in processes if p["status"] == "running"]
    if len(running) == 1:
        return str(running[0]["name"])
    if not running:
        raise ClientError("no process is running: start one with persistproc CMD")
    names = ", ".join(f"{p['name']} ({p['pid']})" for p in running)
    if not (sys.stdin.isatty() and sys.stdout.isatty()):
        raise ClientError(f"several processes run: name one of {names}")
    from prompt_toolkit.shortcuts import choice  # only needed here; slow to import

    options = [(str(p["name"]), f"{p['name']}  (pid {p['pid']})  {p['command']}") for p in running]
    try:
        return choice("Attach to which process?", options=options)
    except (KeyboardInterrupt, EOFError):
        raise ClientError("nothing attached") from None


def cmd_run(client: Client, args: argparse.Namespace, out: Output) -> int:
    words: list[str] = list(args.argv)
    if words and words[0] == "--":
        words = words[1:]
    if not words:
        raise ClientError("give the command to run, e.g. persistproc run npm run dev")
    _detach_key(args)  # a bad key is reported before anything starts
    ensure_server(client, not args.no_server_start, out, getattr(args, "data_dir", None))
    command = words[0] if len(words) == 1 else shlex.join(words)
    # One terminal for both streams unless asked: that is what a program run directly gets
    # (bash takes its job-control terminal from stderr).
    options: dict[str, Any] = {
        "environment": dict(os.environ),
        "merge_stderr": not args.separate_stderr,
    }
    if not args.detach and sys.stdout.isatty():
        # start at this terminal's size: programs lay out their first output before any resize
        options["columns"], options["rows"] = terminal_size(sys.stdout.fileno())
    if args.name:
        options["name"] = args.name
    info = client.start(command, str(Path.cwd()), **options)
    if info.get("already_running"):
        out.note(f"{info['name']} (pid {info['pid']}) is already running here: attaching to it")
    if args.detach:
        out.line(f"{info['pid']} {info['name']}")
        return 0
    return _attached(client, info["name"], args, out)


def add_interactive_commands(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser],
    common: argparse.ArgumentParser,
) -> None:
    detach_help = (
        f"key that detaches (default {DEFAULT_DETACH_KEY}, or ${DETACH_KEY_ENV}); "
        "press it twice to send it to the process"
    )
    run = subparsers.add_parser(
        "run",
        parents=[common],
        help="Run a command through the server in this terminal (also: persistproc CMD ...).",
        description="Run CMD through the server in the current directory with this environment,\n"
        "in this terminal: colors, prompts, Ctrl-C and resizing work as if it ran directly.\n"
        f"The detach key ({DEFAULT_DETACH_KEY}) leaves it running; `persistproc attach NAME`\n"
        "comes back. If CMD already runs here, attaches to it instead of starting another.\n"
        "Starts a server in the background when none answers.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    run.add_argument("--name", help="name for the process (default: derived from CMD)")
    run.add_argument("--detach", action="store_true", help="start it, print pid and name, return")
    run.add_argument(
        "--no-server-start",
        action="store_true",
        help=f"fail instead of starting a server (or set {NO_SERVER_START_ENV}=1)",
    )
    run.add_argument("--detach-key", metavar="KEY", help=detach_help)
    run.add_argument(
        "--separate-stderr",
        action="store_true",
        help="give the program's error output a terminal of its own, so readers can tell the two"
        " streams apart (default: one terminal for both, as when run directly; a shell needs that"
        " for job control)",
    )
    run.add_argument("argv", nargs=argparse.REMAINDER, metavar="CMD [ARGS...]")
    run.set_defaults(handler=cmd_run, read_only=False)

    attach_parser = subparsers.add_parser(
        "attach",
        parents=[common],
        help="Attach this terminal to a running process.",
        description="Show the process's terminal here and type into it. The detach key leaves it\n"
        "running. Without PID|NAME, attaches to the only running process.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    attach_parser.add_argument("target", nargs="?", metavar="PID|NAME", help="the process")
    attach_parser.add_argument(
        "--read-only", action="store_true", help="watch only: never type, never resize"
    )
    attach_parser.add_argument("--detach-key", metavar="KEY", help=detach_help)
    attach_parser.set_defaults(handler=cmd_attach)
