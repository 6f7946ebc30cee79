"""One line per training epoch, for logs where Lightning's progress bar is off."""

from __future__ import annotations

import math
import time

from lightning.pytorch.callbacks import Callback


def epoch_line(
    epoch: int, max_epochs: int | None, metrics: dict, seconds: float, left: float | None
) -> str:
    """The line of one finished epoch, e.g. ``epoch 3/6: train/loss 0.41, val/acc 0.93 (12 s;
    about 38 s left)``.

    Args:
        epoch: the epoch just finished, counted from 1.
        max_epochs: the epochs the run trains (None or negative: unbounded).
        metrics: name -> value of the progress-bar metrics (``*_step`` values left out, the
            ``_epoch`` suffix dropped).
        seconds: wall time of this epoch, in seconds.
        left: estimated wall time of the remaining epochs, in seconds (None: unknown).

    Returns:
        The line, without a newline.
    """
    total = f"/{max_epochs}" if max_epochs is not None and max_epochs > 0 else ""
    shown = {}
    for name, value in sorted(metrics.items()):
        if name.endswith("_step"):
            continue
        shown[name.removesuffix("_epoch")] = float(value)
    values = ", ".join(f"{name} {value:.4g}" for name, value in shown.items())
    timing = f"{seconds:.0f} s" + (f"; about {left:.0f} s left" if left is not None else "")
    return f"epoch {epoch}{total}" + (f": {values}" if values else "") + f" ({timing})"


class EpochLine(Callback):
    """Prints [`epoch_line`][] on stdout (the first process only) after each training epoch,
    with its validation metrics, the epoch's wall time and the time left at the mean pace so far.

    Added by the commands to a ``fit`` whose progress bar is off (stdout is not a terminal, e.g.
    a SLURM log, or ``--no-progress``), so that a log shows the training advance instead of
    nothing for the length of a member's training.
    """

    def __init__(self):
        self._started = self._epoch_started = 0.0
        self._epochs_timed = 0

    def on_train_start(self, trainer, pl_module) -> None:
        self._started, self._epochs_timed = time.monotonic(), 0

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        self._epoch_started = time.monotonic()

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        if not trainer.is_global_zero or trainer.sanity_checking:
            return
        now = time.monotonic()
        self._epochs_timed += 1
        done = trainer.current_epoch + 1
        left = None
        if trainer.max_epochs is not None and trainer.max_epochs > 0:
            pace = (now - self._started) / self._epochs_timed
            left = max(trainer.max_epochs - done, 0) * pace
        metrics = {
            k: v.item() if hasattr(v, "item") else v
            for k, v in trainer.progress_bar_metrics.items()
        }
        metrics = {
            k: v for k, v in metrics.items() if isinstance(v, int | float) and not math.isnan(v)
        }
        line = epoch_line(done, trainer.max_epochs, metrics, now - self._epoch_started, left)
        print(line, flush=True)
