"""The fitted cascade as a file in a results folder: ``fitted_cascade.json``.

It holds every fitted policy (the window's tau, q and bounds, the single threshold, the
budget's interval, ...), the temperatures and how they were fitted: the same value a cascade
checkpoint carries (``window_cascades.cascade.fitted.FittedCascade``). Runs before this name was
chosen wrote it as ``window.json``; [`read_fitted_cascade`][] still reads that name, with a
one-line notice.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from window_cascades.artifacts.atomic import write_json
from window_cascades.artifacts.run_files import FITTED_FILE, OLD_FITTED_FILE
from window_cascades.cascade.fitted import FittedCascade
from window_cascades.cascade.fitted_checks import check_fitted_cascade


def fitted_file_in(folder: str | Path) -> Path:
    """The fitted cascade's file in a results folder: ``fitted_cascade.json``, or an earlier
    run's ``window.json`` (with a notice on stderr).

    Raises:
        FileNotFoundError: neither is there (the message names the folder and both names).
    """
    folder = Path(folder)
    if (folder / FITTED_FILE).is_file():
        return folder / FITTED_FILE
    if (folder / OLD_FITTED_FILE).is_file():
        print(
            f"note: {folder / OLD_FITTED_FILE} is the old name of {FITTED_FILE} (it holds every "
            "fitted policy); read as such",
            file=sys.stderr,
        )
        return folder / OLD_FITTED_FILE
    raise FileNotFoundError(
        f"{folder}: no {FITTED_FILE} (or {OLD_FITTED_FILE} of an earlier run): expected the "
        "results folder of a cascade test run"
    )


def read_fitted_cascade(path: str | Path, members: int | None = None) -> FittedCascade:
    """A fitted cascade from its file, or from a results folder holding one.

    Args:
        path: ``fitted_cascade.json`` (or an old ``window.json``), or the folder holding it.
        members: the number of members it must be fitted for (None: any).

    Raises:
        ValueError: the file is not JSON, or a field is out of range (the message names the
            file and the field, ``window_cascades.cascade.fitted_checks``).
    """
    path = Path(path)
    file = fitted_file_in(path) if path.is_dir() else path
    try:
        data = json.loads(file.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ValueError(f"{file}: not a readable fitted cascade (JSON): {err}") from None
    check_fitted_cascade(data, str(file), members)
    return FittedCascade.from_dict(data)


def write_fitted_cascade(folder: str | Path, fitted: FittedCascade) -> Path:
    """Write ``fitted_cascade.json`` into ``folder`` (atomically); returns its path."""
    path = Path(folder) / FITTED_FILE
    write_json(path, fitted.to_dict())
    return path
