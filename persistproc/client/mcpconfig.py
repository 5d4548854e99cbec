"""`persistproc mcp-config`: the settings that connect an MCP client (an agent) to this server.

Each client wants the same three facts (the MCP URL, the transport, the token if the server requires
one) in its own shape; printing them from the options the other commands use means the snippet
names the server those commands would reach.
"""

from __future__ import annotations

import argparse
import json
import shlex
from dataclasses import dataclass
from typing import Any

from persistproc import paths
from persistproc.client.api import Client, ClientError, ServerUnavailable, find_token
from persistproc.client.commands import Output
from persistproc.config import MCP_PATH

SERVER_NAME = "persistproc"  # the name the client shows for this server
FORMS = ("claude", "cursor", "vscode", "json")
# What each form is for, shown above it when every form is printed at once.
FORM_TITLES = {
    "claude": "Claude Code: run this command",
    "cursor": "Cursor: ~/.cursor/mcp.json (or .cursor/mcp.json in a project)",
    "vscode": "VS Code: .vscode/mcp.json (or the user configuration's MCP servers)",
    "json": "Other MCP clients: the common mcpServers form (also Claude Code's .mcp.json)",
}


@dataclass(frozen=True)
class Endpoint:
    url: str
    token: str | None

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}


def mcp_url(host: str, port: int) -> str:
    shown = f"[{host}]" if ":" in host else host  # an IPv6 address needs brackets in a URL
    return f"http://{shown}:{port}{MCP_PATH}/"


def snippet(form: str, endpoint: Endpoint) -> str:
    """The text that form's client takes: a shell command (claude) or a JSON document."""
    if form == "claude":
        words = ["claude", "mcp", "add", "--transport", "http", SERVER_NAME, endpoint.url]
        # --header takes several values, so it goes last, where it cannot swallow the name and URL.
        for name, value in endpoint.headers().items():
            words += ["--header", f"{name}: {value}"]
        return shlex.join(words)
    server: dict[str, Any]
    if form == "cursor":
        server = {"url": endpoint.url}
    elif form in ("vscode", "json"):
        server = {"type": "http", "url": endpoint.url}
    else:
        raise ValueError(f"unknown form {form!r}; expected one of {', '.join(FORMS)}")
    if endpoint.headers():
        server["headers"] = endpoint.headers()
    key = "servers" if form == "vscode" else "mcpServers"
    return json.dumps({key: {SERVER_NAME: server}}, indent=2)


def cmd_mcp_config(client: Client, args: argparse.Namespace, out: Output) -> int:
    token = find_token(paths.data_dir(getattr(args, "data_dir", None)))
    endpoint = Endpoint(mcp_url(client.host, client.port), token)
    if args.form is not None:
        out.line(snippet(args.form, endpoint))
    else:
        for index, form in enumerate(FORMS):
            out.line(("\n" if index else "") + f"# {FORM_TITLES[form]}")
            out.line(snippet(form, endpoint))
    if token:
        out.note("the snippet holds the server's token: keep it out of files you share")
    try:
        client.health()
    except ServerUnavailable:
        out.note(f"no server answers on {client.address} yet: start it with 'persistproc --serve'")
    except ClientError:
        pass  # something answers; whether it accepts the token is for the MCP client to find out
    return 0
