"""Which Host and Origin headers the server accepts: loopback only.

A page on another site can make a browser send requests to 127.0.0.1 (DNS rebinding gives it a Host
of its own name; a plain cross-site request carries its Origin). Refusing both keeps the server,
which runs commands, out of any web page's reach, including pages of the dev servers it runs.
"""

from __future__ import annotations

from urllib.parse import urlsplit

LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1", "[::1]"})


def _hostname(host: str) -> str:
    host = host.strip().lower()
    if host.startswith("["):
        return host[: host.find("]") + 1] if "]" in host else host
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


def is_loopback_host(host: str | None) -> bool:
    """Host header: absent is refused (HTTP/1.1 requires it); a loopback name or address is fine."""
    if not host:
        return False
    name = _hostname(host)
    return name in LOOPBACK_NAMES or (name.startswith("127.") and name.replace(".", "").isdigit())


def is_allowed_origin(origin: str | None, own_port: int | None, browser_allowed: bool) -> bool:
    """Origin header: absent (not a browser) is fine. A browser page is let in only where
    browser_allowed (MCP), and only from this server's own origin: a page of a dev server on
    another localhost port is a web page like any other."""
    if origin is None:
        return True
    if not browser_allowed:
        return False
    try:
        parts = urlsplit(origin.strip())
        port = parts.port
    except ValueError:
        return False
    if parts.scheme not in {"http", "https"} or not parts.netloc:
        return False
    return is_loopback_host(parts.netloc) and port == own_port
