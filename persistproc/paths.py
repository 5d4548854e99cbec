"""Where persistproc keeps its files."""

from __future__ import annotations

import hashlib
import os
import stat
import tempfile
from pathlib import Path

import platformdirs

from persistproc.config import DATA_DIR_ENV


def data_dir(explicit: str | os.PathLike[str] | None = None) -> Path:
    """The data directory: the explicit one, else $PERSISTPROC_DATA_DIR, else the platform's."""
    chosen = explicit or os.environ.get(DATA_DIR_ENV) or platformdirs.user_data_dir("persistproc")
    return Path(chosen).expanduser().resolve()


def ensure_private_dir(path: Path) -> Path:
    """Create path (and parents) readable by the owner only: logs and state hold secrets at times."""
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    info = path.stat()
    if info.st_uid == os.geteuid() and info.st_mode & 0o077:
        path.chmod(0o700)  # made earlier by hand (mkdir's umask): ours, so made private now
    return path


def state_file(root: Path) -> Path:
    return root / "processes.json"


def server_log(root: Path) -> Path:
    return root / "server.log"


def run_dir(root: Path, name: str, run_number: int) -> Path:
    return root / "processes" / name / f"run-{run_number:04d}"


def lock_file(root: Path) -> Path:
    """Held (flock) by the server that uses this data directory, with its pid and port inside."""
    return root / "server.lock"


def token_file(root: Path) -> Path:
    """The running server's bearer token (0600), when it requires one: clients read it from here."""
    return root / "token"


# sun_path holds 108 bytes on Linux and 104 on macOS, the terminating NUL included.
SOCKET_PATH_LIMIT = 103


def server_socket(root: Path, port: int) -> Path:
    """The Unix socket the server of data directory `root` on TCP `port` serves besides TCP.

    The port is in the name, so a client asking for one port never reaches a server on another.
    In a private directory of the data directory, or, when that path is too long for a socket
    address, in a per-user directory under the system's temporary directory, named after a digest
    of the data directory. Server and clients both call this, so they agree without asking.
    """
    preferred = root / "sockets" / f"{port}.sock"
    if len(os.fsencode(preferred)) <= SOCKET_PATH_LIMIT:
        return preferred
    digest = hashlib.sha256(os.fsencode(root)).hexdigest()[:16]
    short = Path(tempfile.gettempdir()) / f"persistproc-{os.geteuid()}" / f"{digest}-{port}.sock"
    if len(os.fsencode(short)) <= SOCKET_PATH_LIMIT:
        return short
    return Path("/tmp") / f"persistproc-{os.geteuid()}" / f"{digest}-{port}.sock"


def is_private_dir(path: Path) -> bool:
    """True if path is a real directory (not a symlink) of this user that nobody else may enter:
    a socket in it can only have been put there by this user."""
    try:
        info = path.lstat()
    except OSError:
        return False
    return (
        stat.S_ISDIR(info.st_mode)
        and info.st_uid == os.geteuid()
        and stat.S_IMODE(info.st_mode) & 0o077 == 0
    )
