"""Test-only callbacks for signalling a subprocess at a known point of its run.

``MarkAndSlow`` writes ``marker`` once the run reaches ``step`` batches of its loop and then
sleeps ``delay`` seconds per batch, so a test that waits for the marker signals the process in
the middle of the loop, every time (given with ``--trainer.callbacks+=tests.signal_helpers...``).
"""

from __future__ import annotations

import time
from pathlib import Path

from lightning.pytorch import Callback


class MarkAndSlow(Callback):
    """Write ``marker`` at batch ``step`` of fit, test or predict, then sleep ``delay`` s per
    batch."""

    def __init__(self, marker: str, step: int = 1, delay: float = 0.5):
        self.marker, self.step, self.delay = Path(marker), step, delay
        self._batches = 0

    def _batch(self) -> None:
        self._batches += 1
        if self._batches >= self.step:
            self.marker.touch()
            time.sleep(self.delay)

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        self._batch()

    def on_test_batch_start(self, trainer, pl_module, batch, batch_idx, dataloader_idx=0):
        self._batch()

    def on_predict_batch_start(self, trainer, pl_module, batch, batch_idx, dataloader_idx=0):
        self._batch()
