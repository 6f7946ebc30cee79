"""Test-only fault injection at named write phases (``WINDOW_CASCADES_FAULT``).

Unset (every normal run), [`fault_point`][] does nothing. Set to ``<phase>:<action>``, the
process acts at that phase: ``raise`` (a ``RuntimeError``, i.e. a Python-level failure),
``exit`` (``os._exit(99)``: no ``finally``, no ``atexit``, as a hard kill) or ``wait`` (touch
the file ``$WINDOW_CASCADES_FAULT_MARKER``, then wait, up to 10 minutes, until that file is
removed: a test acts on the run paused at that phase). Phases:

- ``swap``: a run's staging folder is complete, before it replaces the output folder;
- ``swapped``: just after the swap, before the earlier run's files are deleted;
- ``logits``: between two datasets' files of a member's cached logits;
- ``step``: the pipeline between two of its steps (before each member, before the evaluation).
"""

from __future__ import annotations

import os
import time
from pathlib import Path

FAULT_ENV = "WINDOW_CASCADES_FAULT"
MARKER_ENV = "WINDOW_CASCADES_FAULT_MARKER"


def fault_point(phase: str) -> None:
    """Act as ``$WINDOW_CASCADES_FAULT`` says when it names ``phase``; else nothing."""
    spec = os.environ.get(FAULT_ENV)
    if not spec:
        return
    name, _, action = spec.partition(":")
    if name != phase:
        return
    if action == "exit":
        os._exit(99)
    if action == "wait":
        marker = Path(os.environ[MARKER_ENV])
        marker.touch()
        deadline = time.monotonic() + 600
        while marker.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        return
    raise RuntimeError(f"injected fault at {phase!r} ({FAULT_ENV}={spec})")
