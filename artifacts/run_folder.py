"""A run's output folder as one unit: checked before any work, written aside, swapped in whole.

A reader sees the earlier run or the new one, never a mix of the two: every file of a run is
written into a staging folder beside the output folder, which then takes the output folder's
place in one ``renameat2(RENAME_EXCHANGE)`` (Linux; elsewhere two renames, with a moment in
which the folder is absent but never mixed). An existing run is replaced only when asked, and
a folder holding anything but an earlier run's outputs is never replaced.

The folder is claimed for the whole run (``window_cascades.artifacts.folder_claim``; staging
folders: ``window_cascades.artifacts.staging_folders``): [`check_output_folder`][] takes an
exclusive lock (``fcntl.flock``) on ``.<name>.lock`` beside it, holding this process's pid, so a
second run into the same folder is refused while the first runs (the lock ends with the process,
even on ``kill -9``). Each run lists the files it wrote, with their sizes and SHA-256, in
``.run_files.json`` inside the folder (``window_cascades.artifacts.run_files``). At the swap,
only the earlier run's own files, unchanged, are deleted; anything else found in the folder (a
file put there during the run, a run file edited since) is kept, in ``.<name>.kept-*``, with a
notice.
A folder of a release before the list: its known file names and plots are the run's.
Staging folders are named ``.<name>.staging-<pid>-*`` and removed on every Python-level exit
(``finally`` and ``atexit``); those left by a hard kill are found by the next claim of the
folder, named, and removed, or kept with a notice while their process lives; one holding an
earlier run swapped out (a kill between the exchange and the clean-up) gets the same rule as
the swap: the user's files in it are kept, not deleted.

An output folder that is a symbolic link is written through: the staging folder is made beside
the folder it points to, which is replaced; the link stays as it is (one line says so).
"""

from __future__ import annotations

import atexit
import ctypes
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from window_cascades.artifacts.faults import fault_point
from window_cascades.artifacts.folder_claim import (
    OutputFolderError,
    claim_output_folder,
    claimed,
    holds_claim,
    lock_path,
    release_all_claims,
    release_output_folder,
)
from window_cascades.artifacts.run_files import (
    RUN_FILES_LIST,
    drop_run_files,
    is_run_output,
    listed_run_files,
    write_run_files_list,
)
from window_cascades.artifacts.staging_folders import (
    clean_stale_staging,
    discard_all_staging,
    discard_staging,
    forget_staging,
    new_staging_folder,
    written_through,
)


def launch_rank() -> int:
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
    ``claim``: take the folder's lock ([`claim_output_folder`][]) until [`swap_in`][] or
    the process ends; ``None``: when this is rank 0 of its launch (``RANK``/``SLURM_PROCID``).

    Raises:
        OutputFolderError: when it is a file, cannot be created or written, another running
            process claimed it, it holds an earlier run and ``overwrite`` is false, or it holds
            files that are not a run's outputs.
    """
    link, folder = Path(folder), written_through(folder)
    if folder != link:
        print(f"note: {option} {link} is a symbolic link: writing through it into {folder}")
        clean_stale_staging(link)  # what an earlier release left beside the link
    _check_paths(folder, option)
    if claim if claim is not None else launch_rank() == 0:
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
        entries = sorted(p for p in folder.iterdir() if p.name != RUN_FILES_LIST)
        listed = listed_run_files(folder)
        foreign = [p.name for p in entries if not is_run_output(p, listed)]
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


@atexit.register
def _clean_at_exit() -> None:
    discard_all_staging()
    release_all_claims()


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


_PUBLISHED: list[Path] = []  # what this process swapped in (or wrote in full), in order
_PUBLISHING = [0]  # a swap under way


def published() -> list[Path]:
    """The output folders (and files) this process has published in full so far."""
    return list(_PUBLISHED)


def mark_published(path: str | Path) -> None:
    """Record that ``path`` now holds a complete, new output of this process (a signal from
    now on need not report the command as unfinished)."""
    _PUBLISHED.append(Path(path))


def publishing() -> bool:
    """Whether a swap is under way (a signal handler must let it finish)."""
    return _PUBLISHING[0] > 0


def swap_in(staging: Path, folder: str | Path) -> None:
    """Make ``staging`` the new ``folder`` and release the claim of ``folder``.

    An earlier run there is replaced whole; of the replaced folder, only a run's own outputs
    are deleted: anything else (put there during the run) is kept in ``.<name>.kept-*``
    beside it, with a notice.

    Raises:
        OutputFolderError: this process claimed ``folder`` but its lock file was removed or
            replaced (another run may be writing there); ``staging`` is then left as it is.
    """
    folder = written_through(folder)
    if claimed(folder) and not holds_claim(folder):
        raise OutputFolderError(
            f"{folder}: its lock {lock_path(folder)} was removed during the run (another run "
            "may be writing there); not replacing it, this run's results are discarded"
        )
    write_run_files_list(staging)
    if folder.is_dir() and listed_run_files(folder) is None:  # a run of an earlier release
        write_run_files_list(folder, legacy=True)  # so that its swapped-out copy is one too
    fault_point("swap")
    _PUBLISHING[0] += 1
    try:
        if not folder.exists():
            os.rename(staging, folder)
            mark_published(folder)
        elif _exchange(staging, folder):
            mark_published(folder)
            fault_point("swapped")
            _drop_earlier_run(staging, folder)  # staging now holds the earlier run
        else:
            old = Path(tempfile.mkdtemp(dir=folder.parent, prefix=f".{folder.name}.old-"))
            os.rename(folder, old / "run")
            os.rename(staging, folder)
            mark_published(folder)
            _drop_earlier_run(old / "run", folder)
            shutil.rmtree(old, ignore_errors=True)
        forget_staging(staging)
    finally:
        _PUBLISHING[0] -= 1
        release_output_folder(folder)


def _drop_earlier_run(earlier: Path, folder: Path) -> None:
    """Delete the earlier run's outputs in ``earlier``; keep and name anything else."""
    drop_run_files(earlier, folder, f"{folder} held")
    forget_staging(earlier)


@contextmanager
def staged_run_folder(folder: str | Path) -> Iterator[Path]:
    """Yield a staging folder beside ``folder``; on success it becomes ``folder`` (an earlier
    run there is replaced whole), on failure it is removed and ``folder`` is untouched.

    Call [`check_output_folder`][] first.
    """
    folder = written_through(folder)
    staging = new_staging_folder(folder)
    try:
        yield staging
        swap_in(staging, folder)
    finally:
        if staging.exists():
            discard_staging(staging)
        release_output_folder(folder)
