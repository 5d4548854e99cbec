"""The non-interactive subcommands: each parses its options, makes one or a few API calls, prints.

Errors reach the person as one line on stderr (`persistproc: ...`) and exit status 1; a traceback
would mean a bug in persistproc, not in how it was used.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TextIO

import psutil

from persistproc.client.api import Client, ClientError, ServerUnavailable
from persistproc.client.follow import LogOptions, print_logs
from persistproc.client.rawlogs import print_raw
from persistproc.client.render import Style, output_width, process_table, status_lines, use_color


class UsageError(ClientError):
    """Options that parse but do not go together: exit status 2, like argparse's own errors."""


SHUTDOWN_WAIT = 30.0  # seconds `shutdown` waits for the server to be gone (it stops every process)


@dataclass
class Output:
    out: TextIO
    err: TextIO
    style: Style
    width: int | None

    def line(self, text: str = "") -> None:
        print(text, file=self.out)

    def json(self, value: Any) -> None:
        print(json.dumps(value, indent=2, ensure_ascii=False), file=self.out)

    def note(self, text: str) -> None:
        print(f"persistproc: {text}", file=self.err, flush=True)


Handler = Callable[[Client, argparse.Namespace, Output], int]


def run(args: argparse.Namespace, client: Client) -> int:
    """Run the subcommand args.handler names; returns the exit status."""
    output = Output(sys.stdout, sys.stderr, Style(use_color(sys.stdout)), output_width(sys.stdout))
    handler: Handler = args.handler
    try:
        return handler(client, args, output)
    except UsageError as error:
        output.note(str(error))
        return 2
    except ClientError as error:
        output.note(str(error))
        return 1
    except KeyboardInterrupt:
        return 130  # Ctrl-C ends `logs -f` and long waits: the usual way out, not an error
    except BrokenPipeError:
        # The reader went away (`persistproc logs | head`): stop quietly. Point stdout at
        # /dev/null so that the interpreter's final flush does not fail again.
        devnull = os.open(os.devnull, os.O_WRONLY)
        try:
            os.dup2(devnull, sys.stdout.fileno())
        except (OSError, ValueError):
            pass
        finally:
            os.close(devnull)
        return 1


# ----- handlers ----------------------------------------------------------------------------------


def cmd_list(client: Client, args: argparse.Namespace, out: Output) -> int:
    directory = os.path.abspath(args.directory) if args.directory else None
    processes = client.list_processes(directory)
    if args.json:
        out.json(processes)
    elif not processes:
        out.note("no processes" + (f" in {directory}" if directory else ""))
    else:
        for line in process_table(processes, out.width, out.style):
            out.line(line)
    return 0


def cmd_status(client: Client, args: argparse.Namespace, out: Output) -> int:
    info = client.status(args.target)
    if args.json:
        out.json(info)
    else:
        for line in status_lines(info, out.style):
            out.line(line)
    return 0


def cmd_logs(client: Client, args: argparse.Namespace, out: Output) -> int:
    options = LogOptions(args.lines, args.stream, args.grep, args.follow)
    if args.raw and (args.grep is not None or args.stream != "combined"):
        raise UsageError("--raw prints the raw log of both streams: --grep and --stream need text")
    if args.raw:
        out.out.flush()
        return print_raw(client, args.target, options, sys.stdout.buffer, out.note)
    return print_logs(client, args.target, options, out.out, out.note)


def _ended(info: dict[str, Any]) -> str:
    if info.get("signal"):
        return f"signal {info['signal']}"
    if info.get("exit_code") is not None:
        return f"exit code {info['exit_code']}"
    return str(info.get("status"))


def cmd_stop(client: Client, args: argparse.Namespace, out: Output) -> int:
    info = client.stop(args.target, force=args.force, timeout=args.timeout)
    if args.json:
        out.json(info)
    elif info.get("note"):
        out.line(f"{info['name']} was not running ({_ended(info)})")
    else:
        out.line(f"stopped {info['name']} (pid {info['pid']}, {_ended(info)})")
    return 0


def cmd_restart(client: Client, args: argparse.Namespace, out: Output) -> int:
    info = client.restart(args.target, wait_for=args.wait_for, wait_timeout=args.wait_timeout)
    if args.json:
        out.json(info)
        return 0 if info.get("ready", True) else 1
    out.line(f"restarted {info['name']} (pid {info['pid']}, run {info['run']})")
    if args.wait_for is not None and not info.get("ready"):
        reason = "it exited" if info.get("wait_result") == "exited" else "the timeout passed"
        out.note(f"no line matched {args.wait_for!r} before {reason}")
        return 1
    return 0


def cmd_screen(client: Client, args: argparse.Namespace, out: Output) -> int:
    shot = client.screen(args.target)
    if args.json:
        out.json(shot)
        return 0
    rows = [str(row).rstrip() for row in shot.get("lines", [])]
    while rows and not rows[-1]:
        rows.pop()  # a mostly empty terminal should not print fifty blank lines
    for row in rows:
        out.line(row)
    return 0


def cmd_send(client: Client, args: argparse.Namespace, out: Output) -> int:
    if args.text is None and not args.keys:
        raise UsageError("give TEXT, --key, or both")
    client.send(args.target, args.text, args.keys or None)
    return 0


def cmd_wait(client: Client, args: argparse.Namespace, out: Output) -> int:
    found = client.wait(
        args.target, args.pattern, timeout=args.timeout, since=args.since, stream=args.stream
    )
    if args.json:
        out.json(found)
    elif found.get("matched"):
        out.line(str(found.get("line")))
    elif found.get("reason") == "exited":
        name = found.get("process", {}).get("name", args.target)
        out.note(f"{name} ended before a line matched {args.pattern!r}")
    else:
        out.note(f"no line matched {args.pattern!r} within {args.timeout:g} s")
    return 0 if found.get("matched") else 1


def cmd_remove(client: Client, args: argparse.Namespace, out: Output) -> int:
    info = client.remove(args.target)
    out.line(f"removed {info['name']}")
    return 0


def cmd_shutdown(client: Client, args: argparse.Namespace, out: Output) -> int:
    pid = client.shutdown().get("pid")
    # Return once the server has exited (it stops every process first, after closing its port),
    # so that `persistproc shutdown && persistproc --serve` finds the data directory free.
    deadline = time.monotonic() + SHUTDOWN_WAIT
    while time.monotonic() < deadline:
        if isinstance(pid, int) and _gone(pid):
            out.line(f"the persistproc server on {client.address} has stopped")
            return 0
        if not isinstance(pid, int):  # an older server: the port closing is all there is to see
            try:
                client.health()
            except ServerUnavailable:
                out.line(f"the persistproc server on {client.address} has stopped")
                return 0
            except ClientError:
                pass  # answering or closing mid-shutdown: ask again
        time.sleep(0.1)
    raise ClientError(f"the server on {client.address} is still running {SHUTDOWN_WAIT:g} s later")


def _gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True
