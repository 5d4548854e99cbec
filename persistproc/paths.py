"""Where persistproc keeps its files."""

from __future__ import annotations

import os
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
    return path


def state_file(root: Path) -> Path:
    return root / "processes.json"


def server_log(root: Path) -> Path:
    return root / "server.log"


def run_dir(root: Path, name: str, run_number: int) -> Path:
    return root / "processes" / name / f"run-{run_number:04d}"


def token_file(root: Path) -> Path:
    """The running server's bearer token (0600), when it requires one: clients read it from here."""
    return root / "token"
