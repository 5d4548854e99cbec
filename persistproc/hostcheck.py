"""Which Host and Origin headers the server accepts: loopback only.

A page on another site can make a browser send requests to 127.0.0.1 (DNS rebinding gives it a Host
of its own name; a plain cross-site request carries its Origin). Refusing both keeps the server,
which runs commands, out of any web page's reach.
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


def is_allowed_origin(origin: str | None) -> bool:
    """Origin header: absent (not a browser) or a loopback origin; 'null' and others refused."""
    if origin is None:
        return True
    try:
        parts = urlsplit(origin.strip())
    except ValueError:
        return False
    if parts.scheme not in {"http", "https"} or not parts.netloc:
        return False
    return is_loopback_host(parts.netloc)
