"""A member's checkpoints: ``last.ckpt`` always holds the newest step, ``best.ckpt`` the best
held-out loss, each file written whole (to ``<name>.partial``, then renamed).

Lightning's ``ModelCheckpoint`` (2.5+) refreshes ``last.ckpt`` only when it also saved a top-k
checkpoint at that step: with ``monitor`` and ``save_top_k=1``, an epoch that does not improve
the monitored loss leaves ``last.ckpt`` at the best epoch, so ``last.ckpt`` silently held the
best-validation weights, not the trained ones. [`MemberCheckpoint`][] writes ``last.ckpt``
at every save point (end of validation, or of the training epoch without validation) and at
the end of training, whether or not the monitored value improved.
"""

from __future__ import annotations

import os
from weakref import proxy

from lightning.pytorch import LightningModule, Trainer
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.trainer.states import TrainerFn


class MemberCheckpoint(ModelCheckpoint):
    """``ModelCheckpoint`` whose ``last.ckpt`` is the newest step, written atomically.

    Arguments are ``ModelCheckpoint``'s. ``last_step`` is the global step (optimiser
    steps) held by the last ``last.ckpt`` this callback wrote, ``None`` before the first.
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.last_step: int | None = None

    def _save_checkpoint(self, trainer: Trainer, filepath: str) -> None:
        # a kill mid-write leaves a .partial file, never a truncated .ckpt under the real name
        partial = filepath + ".partial"
        trainer.save_checkpoint(partial, self.save_weights_only)
        if trainer.is_global_zero:
            os.replace(partial, filepath)
        trainer.strategy.barrier("member_checkpoint")
        self._last_global_step_saved = trainer.global_step
        self._last_checkpoint_saved = filepath
        if trainer.is_global_zero:
            for logger in trainer.loggers:
                logger.after_save_checkpoint(proxy(self))

    def _save_last_checkpoint(self, trainer: Trainer, monitor_candidates: dict) -> None:
        super()._save_last_checkpoint(trainer, monitor_candidates)
        if self.save_last:
            self.last_step = trainer.global_step

    def _refresh_last(self, trainer: Trainer) -> None:
        if (
            not self.save_last
            or trainer.fast_dev_run
            or trainer.state.fn != TrainerFn.FITTING
            or trainer.sanity_checking
            or self.last_step == trainer.global_step
        ):
            return
        self._save_last_checkpoint(trainer, self._monitor_candidates(trainer))

    def on_train_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        super().on_train_epoch_end(trainer, pl_module)
        if self._should_save_on_train_epoch_end(trainer):
            self._refresh_last(trainer)

    def on_validation_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        super().on_validation_end(trainer, pl_module)
        if not self._should_save_on_train_epoch_end(trainer):
            self._refresh_last(trainer)

    def on_train_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        super().on_train_end(trainer, pl_module)
        self._refresh_last(trainer)
