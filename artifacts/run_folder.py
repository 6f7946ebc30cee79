"""A run's output folder as one unit: checked before any work, written aside, swapped in whole.

A reader sees the earlier run or the new one, never a mix of the two: every file of a run is
written into a staging folder beside the output folder, which then takes the output folder's
place in one ``renameat2(RENAME_EXCHANGE)`` (Linux; elsewhere two renames, with a moment in
which the folder is absent but never mixed). An existing run is replaced only when asked, and
a folder holding anything but an earlier run's outputs is never replaced.
"""

from __future__ import annotations

import ctypes
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

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


def check_output_folder(
    folder: str | Path,
    overwrite: bool,
    option: str = "--out",
    overwrite_option: str = "--overwrite",
) -> Path:
    """Validate ``folder`` before any work is done.

    ``option`` / ``overwrite_option``: how the command names the folder and the flag that
    allows replacing an earlier run (e.g. ``--results.dir`` / ``--results.overwrite true``).

    Raises:
        OutputFolderError: when it is a file, cannot be created or written, holds an earlier
            run and ``overwrite`` is false, or holds files that are not a run's outputs.
    """
    folder = Path(folder)
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
    return folder


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
    """An empty staging folder beside ``folder`` (same file system, mode from the umask)."""
    folder = Path(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=folder.parent, prefix=f".{folder.name}.staging-"))
    os.chmod(staging, 0o777 & ~_umask())
    return staging


def swap_in(staging: Path, folder: str | Path) -> None:
    """Make ``staging`` the new ``folder``; an earlier run there is replaced whole."""
    folder = Path(folder)
    if not folder.exists():
        os.rename(staging, folder)
    elif _exchange(staging, folder):
        shutil.rmtree(staging)  # now holds the earlier run
    else:
        old = Path(tempfile.mkdtemp(dir=folder.parent, prefix=f".{folder.name}.old-"))
        os.rename(folder, old / "run")
        os.rename(staging, folder)
        shutil.rmtree(old)


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
            shutil.rmtree(staging, ignore_errors=True)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
