"""Staging folders beside an output folder (``.<name>.staging-<pid>-*``): made empty, removed
when not swapped in, and those a killed run left found and removed, or kept with a notice while
their process lives. ``window_cascades.artifacts.run_folder`` removes this process's own at exit."""

from __future__ import annotations

import os
import re
import shutil
import sys
import tempfile
from pathlib import Path

from window_cascades.artifacts.run_files import drop_run_files, listed_run_files

_STAGING: set[Path] = set()  # this process's staging folders, removed at exit
_STAGING_NAME = re.compile(r"^\.(?P<name>.+)\.(?:staging|old)-(?:(?P<pid>\d+)-)?[^/]*$")


def process_alive(pid: int) -> bool:
    """Whether a process with id ``pid`` exists (on this host)."""
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
    kept, with a notice (its run may still be writing). One that holds an earlier run swapped
    out of ``folder`` (the run was killed between the exchange and the clean-up; it has the
    run's list of files) loses only that run's own files: anything else in it (a user's file)
    is kept beside ``folder`` with a notice (``window_cascades.artifacts.run_files``). A
    staging *link* left by an earlier release's write into a symbolically linked folder is
    removed as a link.
    """
    folder = Path(folder).absolute()
    removed = []
    if not folder.parent.is_dir():
        return removed
    for path in sorted(folder.parent.iterdir()):
        match = _STAGING_NAME.match(path.name)
        if not match or match["name"] != folder.name or path in _STAGING:
            continue
        if not path.is_dir() and not path.is_symlink():
            continue
        pid = int(match["pid"]) if match["pid"] else None
        if pid is not None and pid != os.getpid() and process_alive(pid):
            print(
                f"note: kept {path}: left by process {pid}, which is still running", file=sys.stderr
            )
            continue
        who = f"process {pid}, which has ended" if pid is not None else "an interrupted run"
        if path.is_symlink():
            path.unlink()
        elif listed_run_files(path) is not None:  # an earlier run swapped out, or about to be
            drop_run_files(path, folder, f"{path}, left by {who}, held")
        else:
            shutil.rmtree(path, ignore_errors=True)
        if path.exists() or path.is_symlink():
            print(f"note: could not remove {path}, left by {who}", file=sys.stderr)
            continue
        print(f"note: removed {path}, an unfinished staging folder left by {who}", file=sys.stderr)
        removed.append(path)
    return removed


def written_through(folder: str | Path) -> Path:
    """``folder``, or the folder it points to when it is a symbolic link (written through)."""
    folder = Path(folder)
    return folder.resolve() if folder.is_symlink() else folder


def new_staging_folder(folder: str | Path) -> Path:
    """An empty staging folder beside ``folder`` (beside the folder it points to when it is a
    symbolic link: same file system, mode from the umask), ``.<name>.staging-<pid>-<random>``;
    removed at exit unless swapped in."""
    folder = written_through(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    prefix = f".{folder.name}.staging-{os.getpid()}-"
    staging = Path(tempfile.mkdtemp(dir=folder.parent, prefix=prefix)).resolve()
    _STAGING.add(staging)
    os.chmod(staging, 0o777 & ~_umask())
    return staging


def _remove_staging(staging: Path) -> None:
    """Remove a staging folder; one that holds a run's list of files (it may hold an earlier
    run swapped out of its folder, and a user's file) loses only that run's own files."""
    match = _STAGING_NAME.match(staging.name)
    if match and staging.is_dir() and listed_run_files(staging) is not None:
        folder = staging.parent / match["name"]
        try:
            drop_run_files(staging, folder, f"{staging} held")
            return
        except OSError:
            pass
    shutil.rmtree(staging, ignore_errors=True)


def discard_staging(staging: Path) -> None:
    """Remove a staging folder that will not be swapped in."""
    _remove_staging(staging)
    forget_staging(staging)


def forget_staging(staging: str | Path) -> None:
    """Stop tracking ``staging`` (it was swapped in or moved away): not removed at exit."""
    _STAGING.discard(Path(staging).resolve())


def discard_all_staging() -> None:
    """Remove every staging folder this process made and did not swap in."""
    for path in list(_STAGING):
        _remove_staging(path)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
