"""Progress bars for the steps that can take minutes (the offline evaluator's orders and
policies, the bootstrap's datasets, the benchmark's evaluation), off in logs.

A bar is drawn (tqdm, installed with Lightning, on stderr) only when stderr is a terminal and
progress was not switched off: ``--no-progress`` on the commands, or
``WINDOW_CASCADES_NO_PROGRESS=1`` (inherited by child processes). CI logs and redirected
output stay clean; the bars leave nothing behind when done.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable, Iterator
from typing import TypeVar

NO_PROGRESS_ENV = "WINDOW_CASCADES_NO_PROGRESS"
T = TypeVar("T")


def disable_progress() -> None:
    """Switch the bars off in this process and the processes it starts (``--no-progress``)."""
    os.environ[NO_PROGRESS_ENV] = "1"


def progress_enabled(stream=None) -> bool:
    """Whether to draw progress on ``stream`` (default stderr): a terminal, not switched off."""
    stream = sys.stderr if stream is None else stream
    if os.environ.get(NO_PROGRESS_ENV) == "1":
        return False
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


def progress(
    items: Iterable[T], desc: str, total: int | None = None, unit: str = "it"
) -> Iterable[T] | Iterator[T]:
    """``items``, with a bar on stderr while they are consumed when [`progress_enabled`][];
    otherwise ``items`` itself."""
    if not progress_enabled():
        return items
    from tqdm import tqdm

    return tqdm(
        items,
        desc=desc,
        total=total,
        unit=unit,
        leave=False,
        file=sys.stderr,
        dynamic_ncols=True,
    )
