"""The claim of an output folder for one run: an exclusive ``fcntl.flock`` on ``.<name>.lock``
beside it, recording the holder's pid, host and start time, so a second run into the same
folder is refused while the first runs (the kernel drops the lock when the process ends, even on
``kill -9``). A new claim cleans the staging folders a killed run left.

File systems without ``flock`` (NFS without lockd, Lustre mounted ``noflock``, some FUSE
mounts) make the claim fail with "no locks available"; the run is then refused in one line
naming ``LOCKING_ENV``, which chooses the fallback:

- ``flock`` (default): the kernel's lock, refused where there is none;
- ``lockfile``: the lock file itself is the claim (created with ``O_EXCL``, removed at the end).
  One left by a killed run on this host is found stale (its process has ended) and replaced with
  a notice; one left on another host must be removed by hand (the message names it);
- ``off``: no claim at all (nothing stops two runs writing into one folder).
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import socket
import sys
import time
from pathlib import Path

from window_cascades.artifacts.staging_folders import clean_stale_staging, process_alive

LOCKING_ENV = "WINDOW_CASCADES_LOCKING"
LOCKING_MODES = ("flock", "lockfile", "off")
#: what flock raises where the file system has no such lock
NO_FLOCK_ERRNOS = {errno.ENOLCK, errno.ENOSYS, errno.EOPNOTSUPP, errno.ENOTSUP, errno.EINVAL}


class OutputFolderError(ValueError):
    """The output folder cannot take this run (names the folder and what to do)."""


_CLAIMS: dict[Path, int] = {}  # folder (resolved) -> the open, locked lock file's descriptor


def lock_path(folder: str | Path) -> Path:
    """The lock file of ``folder``: ``.<name>.lock`` beside it."""
    folder = Path(folder).resolve()
    return folder.parent / f".{folder.name}.lock"


def locking_mode() -> str:
    """The claim's mechanism, ``$WINDOW_CASCADES_LOCKING`` (default ``flock``).

    Raises:
        OutputFolderError: a value other than those of ``LOCKING_MODES``.
    """
    mode = os.environ.get(LOCKING_ENV, "flock") or "flock"
    if mode not in LOCKING_MODES:
        raise OutputFolderError(f"{LOCKING_ENV}={mode}: expected one of {', '.join(LOCKING_MODES)}")
    return mode


def claim_output_folder(folder: str | Path, option: str = "--out") -> None:
    """Lock ``folder`` for this process (re-entrant), then clean its debris.

    The lock is an ``fcntl.flock`` on ``lock_path``, which records this process's pid, host
    and start time; the kernel drops it when the process ends, however it ends. Where the file
    system has no ``flock``, ``LOCKING_ENV`` chooses the fallback (module docstring).

    Raises:
        OutputFolderError: another process holds the lock (names its pid and host), the lock
            path is not a regular file, or the file system has no ``flock`` and no fallback
            was chosen (names ``LOCKING_ENV``).
    """
    key = Path(folder).resolve()
    if key in _CLAIMS:
        return
    mode = locking_mode()
    path = lock_path(key)
    path.parent.mkdir(parents=True, exist_ok=True)
    if mode == "off":
        _CLAIMS[key] = -1
    elif mode == "lockfile":
        _CLAIMS[key] = _claim_lock_file(path, folder, option)
    else:
        _CLAIMS[key] = _claim_flock(path, folder, option)
    clean_stale_staging(key)


def _holder_info() -> bytes:
    info = {
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "since": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    return json.dumps(info).encode() + b"\n"


def _open_lock(path: Path, folder: str | Path, option: str, flags: int) -> int:
    """``os.open`` of the lock file; one line when its path is a folder or cannot be opened."""
    try:
        return os.open(path, flags, 0o666)
    except FileExistsError:
        raise
    except OSError as err:
        what = "a folder" if path.is_dir() else f"not a usable file ({err.strerror})"
        raise OutputFolderError(
            f"{option} {folder}: its lock {path} is {what}; remove it and run again"
        ) from None


def _claim_flock(path: Path, folder: str | Path, option: str) -> int:
    while True:
        fd = _open_lock(path, folder, option, os.O_RDWR | os.O_CREAT)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read_holder(fd)
            os.close(fd)
            raise OutputFolderError(
                f"{option} {folder} is in use by another run ({holder}; lock {path}); wait for "
                "it to finish or choose another folder"
            ) from None
        except OSError as err:
            os.close(fd)
            if err.errno not in NO_FLOCK_ERRNOS:
                raise
            raise OutputFolderError(
                f"{option} {folder}: the file system does not support flock (errno "
                f"{err.errno}: {err.strerror}; e.g. NFS without lockd, Lustre mounted noflock): "
                f"set {LOCKING_ENV}=lockfile (a lock file; one a killed run left on another "
                f"host must be removed by hand) or {LOCKING_ENV}=off (no protection against "
                "two runs writing into one folder)"
            ) from None
        if _is_lock_file(fd, path):  # else the holder removed it between our open and lock
            break
        os.close(fd)
    os.ftruncate(fd, 0)
    os.pwrite(fd, _holder_info(), 0)
    return fd


def _claim_lock_file(path: Path, folder: str | Path, option: str) -> int:
    """The ``lockfile`` fallback: the lock file, created with ``O_EXCL``, is the claim."""
    for _ in range(3):
        try:
            fd = _open_lock(path, folder, option, os.O_RDWR | os.O_CREAT | os.O_EXCL)
        except FileExistsError:
            info = _lock_file_info(path)
            if info is None or info.get("host") != socket.gethostname():
                shown = _describe(info) if info else "holder unknown"
                raise OutputFolderError(
                    f"{option} {folder} is claimed by the lock file {path} ({shown}); if that "
                    "run has ended, remove the file and run again"
                ) from None
            if process_alive(int(info["pid"])):
                raise OutputFolderError(
                    f"{option} {folder} is in use by another run ({_describe(info)}; lock "
                    f"{path}); wait for it to finish or choose another folder"
                ) from None
            print(
                f"note: replaced the lock file {path} of a run that has ended ({_describe(info)})",
                file=sys.stderr,
            )
            path.unlink(missing_ok=True)
            continue
        os.pwrite(fd, _holder_info(), 0)
        os.fsync(fd)
        return fd
    raise OutputFolderError(f"{option} {folder}: could not create its lock file {path}")


def _lock_file_info(path: Path) -> dict | None:
    try:
        info = json.loads(path.read_text() or "{}")
        int(info["pid"])
        return info
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _describe(info: dict) -> str:
    host = f", on host {info['host']}" if info.get("host") else ""
    return f"pid {int(info['pid'])}, since {info.get('since', '?')}{host}"


def _read_holder(fd: int) -> str:
    try:
        return _describe(json.loads(os.pread(fd, 4096, 0) or b"{}"))
    except (ValueError, KeyError, TypeError, OSError):
        return "pid unknown"


def claimed(folder: str | Path) -> bool:
    """Whether this process claimed ``folder`` (and has not released it); its lock file may
    since have been removed (see [`holds_claim`][])."""
    return Path(folder).resolve() in _CLAIMS


def holds_claim(folder: str | Path) -> bool:
    """Whether this process holds ``folder``'s lock and the lock file is still the locked one
    (always, once claimed, with ``WINDOW_CASCADES_LOCKING=off``)."""
    key = Path(folder).resolve()
    fd = _CLAIMS.get(key)
    return fd is not None and (fd == -1 or _is_lock_file(fd, lock_path(key)))


def _is_lock_file(fd: int, path: Path) -> bool:
    try:
        return os.fstat(fd).st_ino == os.stat(path).st_ino
    except FileNotFoundError:
        return False


def release_output_folder(folder: str | Path) -> None:
    """Drop this process's claim of ``folder`` (no-op without one); removes the lock file."""
    key = Path(folder).resolve()
    fd = _CLAIMS.pop(key, None)
    if fd is None or fd == -1:
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
