"""The files of a run, listed in its folder (``.run_files.json``: name -> size and SHA-256), so
that replacing or cleaning up a run deletes exactly what the run wrote, unchanged: a file a user
put into the folder, or a run file edited since, is kept and named (``drop_run_files``).
A folder written before the list existed is read by its known file names and plots."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
import tempfile
from collections.abc import Iterable
from pathlib import Path

from window_cascades.artifacts.atomic import write_json

RUN_FILES = (
    "metrics.csv",
    "summary.json",
    "deltas.csv",
    "orders.csv",
    "report.md",
    "cascade.ckpt",
)  # and the fitted cascade's file under its names (``_fitted_file_names``)


#: the fitted cascade's file in a results folder (named here, in a module that imports no
#: torch, so that claiming a folder or refusing an option does not import it)
FITTED_FILE = "fitted_cascade.json"
OLD_FITTED_FILE = "window.json"  # the name before it held every policy


def _fitted_file_names() -> tuple[str, str]:
    """``fitted_cascade.json`` and its name in runs before it."""
    return FITTED_FILE, OLD_FITTED_FILE


#: the list of a run's files (name -> size and SHA-256), written into the folder at the swap
RUN_FILES_LIST = ".run_files.json"


def _is_legacy_output(path: Path) -> bool:
    """A run's file by name, for a folder written before ``RUN_FILES_LIST`` existed."""
    return path.name in (*RUN_FILES, *_fitted_file_names()) or path.suffix == ".png"


def listed_run_files(folder: Path) -> dict[str, dict] | None:
    """The files a run wrote into ``folder`` (its ``RUN_FILES_LIST``), or None when the
    folder has no readable list (a run of an earlier release)."""
    try:
        data = json.loads((folder / RUN_FILES_LIST).read_text())
        files = data["files"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return files if isinstance(files, dict) else None


def _file_record(path: Path) -> dict:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return {"size": path.stat().st_size, "sha256": digest.hexdigest()}


def write_run_files_list(folder: Path, legacy: bool = False) -> None:
    """List the files in ``folder`` as the run's (``legacy``: only those named as a run's
    before the list existed), in ``RUN_FILES_LIST``."""
    files = {
        p.name: _file_record(p)
        for p in sorted(folder.iterdir())
        if p.is_file() and not p.is_symlink() and p.name != RUN_FILES_LIST
        if not legacy or _is_legacy_output(p)
    }
    write_json(folder / RUN_FILES_LIST, {"files": files})


def is_run_output(path: Path, listed: dict[str, dict] | None) -> bool:
    """Whether ``path`` is one of the run's files (by the list, else by name)."""
    if listed is None:
        return _is_legacy_output(path)
    return path.name == RUN_FILES_LIST or path.name in listed


def unchanged_run_output(path: Path, listed: dict[str, dict] | None) -> bool:
    """Whether ``path`` is a run's file as the run wrote it (safe to delete)."""
    if path.is_symlink() or not path.is_file():
        return False
    if listed is None:
        return _is_legacy_output(path)
    if path.name == RUN_FILES_LIST:
        return True
    record = listed.get(path.name)
    if not isinstance(record, dict) or record.get("size") != path.stat().st_size:
        return False
    return _file_record(path)["sha256"] == record.get("sha256")


def drop_run_files(earlier: Path, folder: Path, held: str) -> Path | None:
    """Delete a run's own, unchanged files in ``earlier`` (a replaced run folder, or a staging
    folder holding one), then remove it; anything else in it (files put there, run files
    edited since) is kept: ``earlier`` moves to ``.<name>.kept-*`` beside ``folder``,
    named on stderr. Returns where they were kept, or None when nothing was.
    """
    listed = listed_run_files(earlier)
    others = [p for p in earlier.iterdir() if not unchanged_run_output(p, listed)]
    if not others:
        shutil.rmtree(earlier)
        return None
    for p in earlier.iterdir():
        if p not in others:
            p.unlink()
    kept = Path(tempfile.mkdtemp(dir=folder.parent, prefix=f".{folder.name}.kept-"))
    os.rmdir(kept)
    os.rename(earlier, kept)
    names = ", ".join(p.name for p in others[:5]) + (", ..." if len(others) > 5 else "")
    print(
        f"note: {held} files that are not a run's outputs as it wrote them ({names}); they "
        f"were not deleted: moved to {kept}",
        file=sys.stderr,
    )
    return kept


def edited_run_files(folder: str | Path, names: Iterable[str]) -> list[str]:
    """Which of the run's files ``names`` in ``folder`` differ from what the run wrote (size
    and SHA-256 in its ``RUN_FILES_LIST``); a folder without the list, or a file the run
    did not list or that is gone, counts as not edited.

    Example:
        >>> import tempfile
        >>> folder = Path(tempfile.mkdtemp())
        >>> _ = (folder / "fitted_cascade.json").write_text("{}")
        >>> write_run_files_list(folder)
        >>> _ = (folder / "fitted_cascade.json").write_text('{"edited": 1}')
        >>> edited_run_files(folder, ["fitted_cascade.json", "metrics.csv"])
        ['fitted_cascade.json']
    """
    folder = Path(folder)
    listed = listed_run_files(folder)
    if listed is None:
        return []
    return [
        name
        for name in names
        if name in listed
        and (folder / name).is_file()
        and not unchanged_run_output(folder / name, listed)
    ]


def check_fitted_record_unedited(folder: str | Path, applied: str) -> None:
    """Refuse a run folder whose ``fitted_cascade.json`` was edited after its run wrote it: the
    file is a record of the fit, and ``applied`` (e.g. its ``cascade.ckpt``) holds the fit that
    is applied, so an edit would otherwise change nothing without a word.

    Raises:
        ValueError: naming the file and what to do instead.
    """
    for name in edited_run_files(folder, _fitted_file_names()[:1]):
        raise ValueError(
            f"{Path(folder) / name} was edited after the run that wrote it: it is a record of "
            f"the fit, never read back ({applied} holds the fit that is applied); undo the edit, "
            "or fit again with cascade test (--calibration.target, --calibration.width, ...)"
        )
