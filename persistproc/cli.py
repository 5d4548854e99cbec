"""The `persistproc` command: `--serve` runs the server; subcommands talk to a running one."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from persistproc import __version__, paths
from persistproc.client.api import Client
from persistproc.client.commands import run as run_command
from persistproc.client.interactive import add_interactive_commands
from persistproc.client.options import add_commands
from persistproc.config import (
    DEFAULT_HOST,
    DEFAULT_MAX_LOG_SIZE,
    GENERATE_TOKEN,
    MAX_LOG_SIZE_ENV,
    TOKEN_ENV,
    TOKEN_MIN_LENGTH,
    max_log_size_from_env,
    parse_port,
    parse_size,
    port_from_env,
    server_token,
)
from persistproc.hostcheck import is_loopback_host

DESCRIPTION = """Run development processes under pseudo-terminals and share them between people and
AI agents (MCP at http://127.0.0.1:8947/mcp/).

Start the server with `persistproc --serve`; the commands below talk to it."""

EPILOG = """environment:
  PERSISTPROC_PORT          port to serve on or talk to (default 8947)
  PERSISTPROC_DATA_DIR      where process lists and logs are kept
  PERSISTPROC_TOKEN         bearer token the server requires (--serve) or the commands send
  PERSISTPROC_MAX_LOG_SIZE  cap of each log file of a run (--serve; default 2G)
  NO_COLOR                  set to turn colors off

exit status:
  0    success
  1    failure: an error from the server, no such process, no server running, `wait` or
       `restart --wait-for` saw no matching line, or the server could not start
  2    bad usage
  130  interrupted (Ctrl-C)

`persistproc COMMAND --help` describes each command."""

HOST_HELP = (
    f"address to listen on (--serve) or to connect to (default {DEFAULT_HOST}). Without --host"
    " and --port, commands talk to the server over its Unix socket in the data directory when"
    " there is one"
)
PORT_HELP = "port to listen on or connect to (default $PERSISTPROC_PORT or 8947)"
TOKEN_HELP = (
    f"with --serve: require this bearer token on every request ('{GENERATE_TOKEN}': a random one;"
    f" default ${TOKEN_ENV}, else none; at least {TOKEN_MIN_LENGTH} characters). The server writes"
    " it to the file 'token' in the data directory (mode 0600), where the commands find it by"
    f" themselves. Prefer '{GENERATE_TOKEN}' or ${TOKEN_ENV}: other users can see command lines"
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="persistproc",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"persistproc {__version__}")
    parser.add_argument("--serve", action="store_true", help="run the server in the foreground")
    parser.add_argument("--host", help=HOST_HELP)
    parser.add_argument("--port", help=PORT_HELP)
    parser.add_argument(
        "--data-dir",
        help="data directory (default $PERSISTPROC_DATA_DIR or the platform's user data directory)",
    )
    parser.add_argument("--token", metavar="TOKEN", help=TOKEN_HELP)
    parser.add_argument(
        "--max-log-size",
        metavar="SIZE",
        help="with --serve: the cap of each log file of a run (raw, and each stream's clean text),"
        " such as 500M or 2G; past it the oldest half is dropped and readers are told which lines"
        f" are gone (default ${MAX_LOG_SIZE_ENV} or {DEFAULT_MAX_LOG_SIZE})",
    )
    # --host and --port are accepted after the subcommand too. SUPPRESS keeps a subcommand that
    # was not given them from overwriting the values parsed before it.
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--host", default=argparse.SUPPRESS, help=HOST_HELP)
    common.add_argument("--port", default=argparse.SUPPRESS, help=PORT_HELP)
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", title="commands")
    add_commands(subparsers, common)
    add_interactive_commands(subparsers, common)
    return parser


_TOP_OPTIONS_WITH_VALUE = {"--host", "--port", "--data-dir", "--token", "--max-log-size"}


def _implicit_run(argv: list[str], commands: set[str]) -> list[str]:
    """`persistproc npm run dev` means `persistproc run npm run dev`."""
    index = 0
    while index < len(argv):
        word = argv[index]
        if word in _TOP_OPTIONS_WITH_VALUE:
            index += 2
        elif word.split("=", 1)[0] in _TOP_OPTIONS_WITH_VALUE:
            index += 1
        elif word in commands or word in {"-h", "--help", "--version", "--serve"}:
            return argv
        elif word == "--" or not word.startswith("-") or word.split("=")[0] in _RUN_OPTIONS:
            return [*argv[:index], "run", *argv[index:]]
        else:
            return argv
    return argv


_RUN_OPTIONS = {"--name", "--detach", "--no-server-start", "--detach-key", "--separate-stderr"}


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    words = list(sys.argv[1:] if argv is None else argv)
    commands = set(_subcommands(parser))
    args = parser.parse_args(_implicit_run(words, commands))
    try:
        port = parse_port(args.port) if args.port is not None else port_from_env()
    except ValueError as error:
        parser.error(str(error))
    # An address given on the command line means TCP to that address, never the Unix socket.
    explicit_address = args.host is not None or args.port is not None
    host = args.host if args.host is not None else DEFAULT_HOST
    if args.token is not None and not args.serve:
        parser.error(
            "--token goes with --serve; the commands find the token by themselves"
            f" (or set ${TOKEN_ENV})"
        )
    if args.max_log_size is not None and not args.serve:
        parser.error("--max-log-size goes with --serve")
    if args.serve:
        if args.command is not None:
            parser.error(f"--serve runs the server; it cannot be combined with {args.command!r}")
        try:
            token = server_token(args.token)
            max_log_bytes = (
                parse_size(args.max_log_size)
                if args.max_log_size is not None
                else max_log_size_from_env()
            )
        except ValueError as error:
            parser.error(str(error))
        if not is_loopback_host(host):
            parser.error(
                f"--host {host}: persistproc runs commands for whoever reaches it, so it"
                " listens on loopback only (127.0.0.1, ::1, localhost)"
            )
        from persistproc.server.main import serve  # the server's imports are heavy; load on demand

        return serve(host, port, paths.data_dir(args.data_dir), token, max_log_bytes)
    if args.command is None:
        parser.print_help()
        return 2
    client = Client(
        host, port, data_dir=paths.data_dir(args.data_dir), unix_socket=not explicit_address
    )
    return run_command(args, client)


def _subcommands(parser: argparse.ArgumentParser) -> list[str]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return list(action.choices)
    return []


if __name__ == "__main__":
    sys.exit(main())
