"""SIGTERM ends a command with a non-zero status and one line, never Lightning's status 0.

A job scheduler (SLURM's ``scancel``, a time limit) sends SIGTERM. Ending with status 0 would let
an ``afterok`` dependent start on an unfinished step, so every command ends with
[`SIGTERM_EXIT_CODE`][] instead, through a Python-level exit: ``finally`` blocks and ``atexit``
handlers run, so staging folders are removed and output-folder claims released.
"""

from __future__ import annotations

import signal
import sys

SIGTERM_EXIT_CODE = 128 + 15
"""The exit status of a command ended by SIGTERM, as a shell reports it (128 + 15)."""


class Interrupted(SystemExit):
    """A run stopped by SIGTERM: one line on stderr, exit status [`SIGTERM_EXIT_CODE`][].

    Nothing marks the step finished (no ``finished.json``, no results folder swapped in); a
    rerun resumes a member from its newest checkpoint or redoes an evaluation.

    Args:
        what: the interrupted command or subcommand, as the user typed it (e.g. ``fit``).
    """

    def __init__(self, what: str):
        super().__init__(SIGTERM_EXIT_CODE)
        print(
            f"error: {what} interrupted by SIGTERM before it finished; exiting with status "
            f"{SIGTERM_EXIT_CODE} (run it again to resume or redo it)",
            file=sys.stderr,
            flush=True,
        )


def exit_on_sigterm(what: str) -> None:
    """From now on, SIGTERM raises [`Interrupted`][] in the main thread (for commands that do
    not run under Lightning's own SIGTERM handling, e.g. the offline evaluator)."""

    def handler(signum, frame) -> None:
        raise Interrupted(what)

    signal.signal(signal.SIGTERM, handler)
