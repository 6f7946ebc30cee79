"""A run's output folder as one unit: checked before any work, written aside, swapped in whole.

A reader sees the earlier run or the new one, never a mix of the two: every file of a run is
written into a staging folder beside the output folder, which then takes the output folder's
place in one ``renameat2(RENAME_EXCHANGE)`` (Linux; elsewhere two renames, with a moment in
which the folder is absent but never mixed). An existing run is replaced only when asked, and
a folder holding anything but an earlier run's outputs is never replaced.

The folder is claimed for the whole run: :func:`check_output_folder` takes an exclusive lock
(``fcntl.flock``) on ``.<name>.lock`` beside it, holding this process's pid, so a second run
into the same folder is refused while the first runs (the lock ends with the process, even on
``kill -9``). At the swap, only the earlier run's own files are deleted; anything else found
in the folder (a file put there during the run) is kept, in ``.<name>.kept-<pid>-*``, with a
notice. Staging folders are named ``.<name>.staging-<pid>-*`` and removed on every
Python-level exit (``finally`` and ``atexit``); those left by a hard kill are found by the next
claim of the folder, named, and removed, or kept with a notice while their process lives.
"""

from __future__ import annotations

import atexit
import ctypes
import fcntl
import json
import os
import re
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from artifacts.faults import fault_point

RUN_FILES = (
    "metrics.csv",
    "summary.json",
    "deltas.csv",
    "orders.csv",
    "report.md",
    "window.json",
    "cascade.ckpt",
)


class OutputFolderError(ValueError):
    """The output folder cannot take this run (names the folder and what to do)."""


def _is_run_output(path: Path) -> bool:
    return path.name in RUN_FILES or path.suffix == ".png"


def _env_rank() -> int:
    """This process's rank among processes launched together (0 when launched alone)."""
    for var in ("RANK", "SLURM_PROCID", "LOCAL_RANK"):
        if os.environ.get(var, "").isdigit():
            return int(os.environ[var])
    return 0


def check_output_folder(
    folder: str | Path,
    overwrite: bool,
    option: str = "--out",
    overwrite_option: str = "--overwrite",
    claim: bool | None = None,
) -> Path:
    """Validate ``folder`` before any work is done, and claim it for this process.

    ``option`` / ``overwrite_option``: how the command names the folder and the flag that
    allows replacing an earlier run (e.g. ``--results.dir`` / ``--results.overwrite true``).
    ``claim``: take the folder's lock (:func:`claim_output_folder`) until :func:`swap_in` or
    the process ends; ``None``: when this is rank 0 of its launch (``RANK``/``SLURM_PROCID``).

    Raises:
        OutputFolderError: when it is a file, cannot be created or written, another running
            process claimed it, it holds an earlier run and ``overwrite`` is false, or it holds
            files that are not a run's outputs.
    """
    folder = Path(folder)
    _check_paths(folder, option)
    if claim if claim is not None else _env_rank() == 0:
        claim_output_folder(folder, option)
    try:
        _check_contents(folder, overwrite, option, overwrite_option)
    except OutputFolderError:
        release_output_folder(folder)
        raise
    return folder


def _check_paths(folder: Path, option: str) -> None:
    if folder.exists() and not folder.is_dir():
        raise OutputFolderError(f"{option} {folder} is a file; expected a folder for the results")
    parent = folder.resolve().parent
    if not parent.exists():
        try:
            parent.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise OutputFolderError(
                f"{option} {folder}: cannot create {parent} ({err.strerror})"
            ) from None
    if not os.access(parent, os.W_OK | os.X_OK):
        raise OutputFolderError(f"{option} {folder}: no permission to write in {parent}")


def _check_contents(folder: Path, overwrite: bool, option: str, overwrite_option: str) -> None:
    if folder.is_dir():
        entries = sorted(folder.iterdir())
        foreign = [p.name for p in entries if not _is_run_output(p)]
        if foreign:
            raise OutputFolderError(
                f"{option} {folder} holds files that are not results of an earlier run "
                f"({', '.join(foreign[:5])}); choose a new or empty folder"
            )
        if entries and not overwrite:
            raise OutputFolderError(
                f"{option} {folder} holds an earlier run ({', '.join(p.name for p in entries[:4])}"
                f"{', ...' if len(entries) > 4 else ''}); pass {overwrite_option} to replace it"
            )


_CLAIMS: dict[Path, int] = {}  # folder (resolved) -> the open, locked lock file's descriptor
_STAGING: set[Path] = set()  # this process's staging folders, removed at exit


def lock_path(folder: str | Path) -> Path:
    """The lock file of ``folder``: ``.<name>.lock`` beside it."""
    folder = Path(folder).resolve()
    return folder.parent / f".{folder.name}.lock"


def claim_output_folder(folder: str | Path, option: str = "--out") -> None:
    """Lock ``folder`` for this process (re-entrant), then clean its debris.

    The lock is an ``fcntl.flock`` on :func:`lock_path`, which records this process's pid and
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


_STAGING_NAME = re.compile(r"^\.(?P<name>.+)\.(?:staging|old)-(?:(?P<pid>\d+)-)?[^/]*$")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def clean_stale_staging(folder: str | Path) -> list[Path]:
    """Remove the staging folders a killed run left beside ``folder``; returns those removed.

    Each is named on stderr; one whose recorded pid is a live process other than this one is
    kept, with a notice (its run may still be writing).
    """
    folder = Path(folder).resolve()
    removed = []
    if not folder.parent.is_dir():
        return removed
    for path in sorted(folder.parent.iterdir()):
        match = _STAGING_NAME.match(path.name)
        if not match or match["name"] != folder.name or not path.is_dir() or path in _STAGING:
            continue
        pid = int(match["pid"]) if match["pid"] else None
        if pid is not None and pid != os.getpid() and _alive(pid):
            print(f"note: kept {path}: left by process {pid}, which is still running",
                  file=sys.stderr)  # fmt: skip
            continue
        shutil.rmtree(path, ignore_errors=True)
        who = f"process {pid}, which has ended" if pid is not None else "an interrupted run"
        print(f"note: removed {path}, an unfinished staging folder left by {who}",
              file=sys.stderr)  # fmt: skip
        removed.append(path)
    return removed


@atexit.register
def _clean_at_exit() -> None:
    for path in list(_STAGING):
        shutil.rmtree(path, ignore_errors=True)
    for folder in list(_CLAIMS):
        release_output_folder(folder)


def _exchange(a: Path, b: Path) -> bool:
    """Atomically exchange two paths (Linux renameat2); False where unsupported."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    at_fdcwd, rename_exchange = -100, 2
    ok = renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0
    return ok


def new_staging_folder(folder: str | Path) -> Path:
    """An empty staging folder beside ``folder`` (same file system, mode from the umask),
    ``.<name>.staging-<pid>-<random>``; removed at exit unless swapped in."""
    folder = Path(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    prefix = f".{folder.name}.staging-{os.getpid()}-"
    staging = Path(tempfile.mkdtemp(dir=folder.parent, prefix=prefix)).resolve()
    _STAGING.add(staging)
    os.chmod(staging, 0o777 & ~_umask())
    return staging


def discard_staging(staging: Path) -> None:
    """Remove a staging folder that will not be swapped in."""
    shutil.rmtree(staging, ignore_errors=True)
    _STAGING.discard(Path(staging).resolve())


def swap_in(staging: Path, folder: str | Path) -> None:
    """Make ``staging`` the new ``folder`` and release the claim of ``folder``.

    An earlier run there is replaced whole; of the replaced folder, only a run's own outputs
    are deleted: anything else (put there during the run) is kept in ``.<name>.kept-<pid>-*``
    beside it, with a notice.

    Raises:
        OutputFolderError: this process claimed ``folder`` but its lock file was removed or
            replaced (another run may be writing there); ``staging`` is then left as it is.
    """
    folder = Path(folder)
    key = folder.resolve()
    if key in _CLAIMS and not holds_claim(folder):
        raise OutputFolderError(
            f"{folder}: its lock {lock_path(folder)} was removed during the run (another run "
            "may be writing there); not replacing it, this run's results are discarded"
        )
    fault_point("swap")
    try:
        if not folder.exists():
            os.rename(staging, folder)
        elif _exchange(staging, folder):
            fault_point("swapped")
            _drop_earlier_run(staging, folder)  # staging now holds the earlier run
        else:
            old = Path(tempfile.mkdtemp(dir=folder.parent, prefix=f".{folder.name}.old-"))
            os.rename(folder, old / "run")
            os.rename(staging, folder)
            _drop_earlier_run(old / "run", folder)
            shutil.rmtree(old, ignore_errors=True)
        _STAGING.discard(Path(staging).resolve())
    finally:
        release_output_folder(folder)


def _drop_earlier_run(earlier: Path, folder: Path) -> None:
    """Delete the earlier run's outputs in ``earlier``; keep and name anything else."""
    others = [p for p in earlier.iterdir() if not (_is_run_output(p) and p.is_file())]
    if not others:
        shutil.rmtree(earlier)
        return
    for p in earlier.iterdir():
        if p not in others:
            p.unlink()
    kept = Path(tempfile.mkdtemp(dir=folder.parent, prefix=f".{folder.name}.kept-"))
    os.rmdir(kept)
    os.rename(earlier, kept)
    _STAGING.discard(Path(earlier).resolve())
    names = ", ".join(p.name for p in others[:5])
    print(f"note: {folder} held files that are not a run's outputs ({names}); they were not "
          f"deleted: moved to {kept}", file=sys.stderr)  # fmt: skip


@contextmanager
def staged_run_folder(folder: str | Path) -> Iterator[Path]:
    """Yield a staging folder beside ``folder``; on success it becomes ``folder`` (an earlier
    run there is replaced whole), on failure it is removed and ``folder`` is untouched.

    Call :func:`check_output_folder` first.
    """
    staging = new_staging_folder(folder)
    try:
        yield staging
        swap_in(staging, folder)
    finally:
        if staging.exists():
            discard_staging(staging)
        release_output_folder(folder)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
