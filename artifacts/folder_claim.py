"""The claim of an output folder for one run: an exclusive ``fcntl.flock`` on ``.<name>.lock``
beside it, recording the holder's pid and start time, so a second run into the same folder is
refused while the first runs (the kernel drops the lock when the process ends, even on
``kill -9``). A new claim cleans the staging folders a killed run left."""

from __future__ import annotations

import fcntl
import json
import os
import time
from pathlib import Path

from window_cascades.artifacts.staging_folders import clean_stale_staging


class OutputFolderError(ValueError):
    """The output folder cannot take this run (names the folder and what to do)."""


_CLAIMS: dict[Path, int] = {}  # folder (resolved) -> the open, locked lock file's descriptor


def lock_path(folder: str | Path) -> Path:
    """The lock file of ``folder``: ``.<name>.lock`` beside it."""
    folder = Path(folder).resolve()
    return folder.parent / f".{folder.name}.lock"


def claim_output_folder(folder: str | Path, option: str = "--out") -> None:
    """Lock ``folder`` for this process (re-entrant), then clean its debris.

    The lock is an ``fcntl.flock`` on [`lock_path`][], which records this process's pid and
    start time; the kernel drops it when the process ends, however it ends.

    Raises:
        OutputFolderError: another process holds the lock (names its pid).
    """
    key = Path(folder).resolve()
    if key in _CLAIMS:
        return
    path = lock_path(key)
    path.parent.mkdir(parents=True, exist_ok=True)
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read_holder(fd)
            os.close(fd)
            raise OutputFolderError(
                f"{option} {folder} is in use by another run ({holder}; lock {path}); wait for "
                "it to finish or choose another folder"
            ) from None
        if _is_lock_file(fd, path):  # else the holder removed it between our open and lock
            break
        os.close(fd)
    info = json.dumps({"pid": os.getpid(), "since": time.strftime("%Y-%m-%dT%H:%M:%S%z")})
    os.ftruncate(fd, 0)
    os.pwrite(fd, info.encode() + b"\n", 0)
    _CLAIMS[key] = fd
    clean_stale_staging(key)


def _read_holder(fd: int) -> str:
    try:
        info = json.loads(os.pread(fd, 4096, 0) or b"{}")
        return f"pid {int(info['pid'])}, since {info.get('since', '?')}"
    except (ValueError, KeyError, TypeError, OSError):
        return "pid unknown"


def claimed(folder: str | Path) -> bool:
    """Whether this process claimed ``folder`` (and has not released it); its lock file may
    since have been removed (see [`holds_claim`][])."""
    return Path(folder).resolve() in _CLAIMS


def holds_claim(folder: str | Path) -> bool:
    """Whether this process holds ``folder``'s lock and the lock file is still the locked one."""
    key = Path(folder).resolve()
    fd = _CLAIMS.get(key)
    return fd is not None and _is_lock_file(fd, lock_path(key))


def _is_lock_file(fd: int, path: Path) -> bool:
    try:
        return os.fstat(fd).st_ino == os.stat(path).st_ino
    except FileNotFoundError:
        return False


def release_output_folder(folder: str | Path) -> None:
    """Drop this process's claim of ``folder`` (no-op without one); removes the lock file."""
    key = Path(folder).resolve()
    fd = _CLAIMS.pop(key, None)
    if fd is None:
        return
    try:
        if _is_lock_file(fd, lock_path(key)):
            os.unlink(lock_path(key))  # before unlocking: a waiter then retries on a new file
    finally:
        os.close(fd)


def release_all_claims() -> None:
    """Drop every claim this process holds."""
    for folder in list(_CLAIMS):
        release_output_folder(folder)
