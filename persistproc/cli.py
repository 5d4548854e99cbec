"""The `persistproc` command."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from persistproc import __version__, paths
from persistproc.config import DEFAULT_HOST, parse_port, port_from_env

DESCRIPTION = """Run development processes under pseudo-terminals and share them between people and
AI agents (MCP at http://127.0.0.1:8947/mcp/)."""

EPILOG = """environment:
  PERSISTPROC_PORT       port to serve on or talk to (default 8947)
  PERSISTPROC_DATA_DIR   where process lists and logs are kept

exit status:
  0  success; 1  the server could not start (port in use, ...); 2  bad usage"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="persistproc",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"persistproc {__version__}")
    parser.add_argument("--serve", action="store_true", help="run the server in the foreground")
    parser.add_argument(
        "--host", default=DEFAULT_HOST, help="address to listen on (default %(default)s)"
    )
    parser.add_argument("--port", help="port (default $PERSISTPROC_PORT or 8947)")
    parser.add_argument(
        "--data-dir",
        help="data directory (default $PERSISTPROC_DATA_DIR or the platform's user data directory)",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        port = parse_port(args.port) if args.port is not None else port_from_env()
    except ValueError as error:
        parser.error(str(error))
    if not args.serve:
        parser.print_help()
        return 2
    from persistproc.server.main import serve  # the server's imports are heavy; load on demand

    return serve(args.host, port, paths.data_dir(args.data_dir))


if __name__ == "__main__":
    sys.exit(main())
