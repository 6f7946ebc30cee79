"""SIGTERM ends a command with a non-zero status and one line, never Lightning's status 0, unless
the command's new outputs were already published in full (then status 0 and a note); a reader
that closes the pipe early (``| head``) ends it quietly (``quiet_on_closed_pipe``).

A job scheduler (SLURM's ``scancel``, a time limit) sends SIGTERM. Ending with status 0 would let
an ``afterok`` dependent start on an unfinished step, so every command ends with
[`SIGTERM_EXIT_CODE`][] instead, through a Python-level exit: ``finally`` blocks and ``atexit``
handlers run, so staging folders are removed and output-folder claims released.
"""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Callable

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


_STATE = {"lightning": 0, "pending": False, "finished": False}


def sigterm_handler(what: str) -> Callable:
    """The SIGTERM handler of a command called ``what`` (see ``exit_on_sigterm``)."""

    def handler(signum, frame) -> None:
        from window_cascades.artifacts.run_folder import published, publishing

        if _STATE["lightning"] or publishing():
            # Lightning's own handler (which calls this one too) stops its loop at the next
            # batch, or a swap is under way: finish that, then stop (stop_if_requested)
            _STATE["pending"] = True
            if publishing() and not _STATE["lightning"]:
                print(
                    f"note: SIGTERM arrived while {what} published its results; finishing that",
                    file=sys.stderr,
                    flush=True,
                )
            return
        if _STATE["finished"] or published():
            done = ", ".join(str(p) for p in published()) or "its outputs"
            print(
                f"note: SIGTERM arrived after {what} had written {done} in full; exiting with "
                "status 0",
                file=sys.stderr,
                flush=True,
            )
            raise SystemExit(0)
        raise Interrupted(what)

    return handler


def exit_on_sigterm(what: str) -> Callable:
    """From now on, SIGTERM raises ``Interrupted`` in the main thread (for commands that do
    not run under Lightning's own SIGTERM handling, e.g. the offline evaluator and the pipeline
    between its steps); returns the handler it replaced.

    Only a command with nothing new published stops with ``SIGTERM_EXIT_CODE``: once its
    results are swapped in (``window_cascades.artifacts.run_folder.published``) or it marked
    itself finished (``mark_finished``), SIGTERM ends it with status 0 and a note. While a
    swap is under way, or a LightningCLI step runs (``lightning_step``: Lightning's own
    handler stops its loop), the signal is kept for ``stop_if_requested``.
    """
    _STATE.update(pending=False, finished=False)
    return signal.signal(signal.SIGTERM, sigterm_handler(what))


class lightning_step:  # noqa: N801 (used as a context manager, like contextlib's)
    """While a LightningCLI subcommand runs: a SIGTERM is left to Lightning's handler (which
    calls the previous handler too) and kept as a stop request."""

    def __enter__(self) -> None:
        _STATE["lightning"] += 1

    def __exit__(self, *exc) -> None:
        _STATE["lightning"] -= 1


def request_stop() -> None:
    """Keep a SIGTERM that arrived after a step had written its outputs in full: the command
    stops at its next step (``stop_if_requested``)."""
    _STATE["pending"] = True


def take_stop_request() -> bool:
    """Whether a SIGTERM arrived that was kept for later (and forget it)."""
    pending, _STATE["pending"] = _STATE["pending"], False
    return pending


def stop_if_requested(what: str) -> None:
    """Between the steps of a command: stop with ``Interrupted`` if a SIGTERM was kept."""
    if take_stop_request():
        raise Interrupted(what)


def mark_finished() -> None:
    """The command's work is done and written: a SIGTERM from now on ends it with status 0."""
    _STATE["finished"] = True


SIGPIPE_EXIT_CODE = 128 + 13  # what a shell reports for a process ended by SIGPIPE


def quiet_on_closed_pipe(run: Callable[[], int | None]) -> int:
    """``run()``'s exit status; when the reader of stdout went away (``init --force | head
    -3``), ``SIGPIPE_EXIT_CODE`` without a traceback, as a Unix tool ends (stdout is
    pointed at ``/dev/null`` so that the interpreter's final flush does not fail again)."""
    try:
        status = run() or 0
        sys.stdout.flush()
        return status
    except BrokenPipeError:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return SIGPIPE_EXIT_CODE
