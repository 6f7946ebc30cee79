"""A member's optimiser and learning-rate schedule: SGD with momentum 0.9, a linear warm-up,
then cosine to 0, stepped once per optimiser step."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable

import torch


def warmup_cosine(total: int, warmup: int) -> Callable[[int], float]:
    """The learning-rate factor of a step: ``(step + 1) / (warmup + 1)`` for the first
    ``warmup`` steps, then a cosine from 1 to 0 over the remaining ``total - warmup``.

    A plain function (not a callable object), so the scheduler's state in a checkpoint does
    not carry it.
    """

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / (warmup + 1)
        progress = (step - warmup) / max(total - warmup, 1)
        return 0.5 * (1 + math.cos(math.pi * min(progress, 1.0)))

    return factor


def sgd_warmup_cosine(
    parameters: Iterable[torch.nn.Parameter],
    hparams,
    stepping_batches: float,
    max_epochs: int | None,
) -> dict:
    """SGD (momentum 0.9) and its warm-up + cosine schedule, as Lightning's
    ``configure_optimizers`` returns them.

    Args:
        parameters: the member's parameters.
        hparams: the member's hyperparameters (``lr``, ``nesterov``, ``weight_decay``,
            ``warmup_epochs``).
        stepping_batches: the trainer's estimated optimiser steps over the whole fit.
        max_epochs: the trainer's epochs (None: 1).
    """
    opt = torch.optim.SGD(
        parameters,
        lr=hparams.lr,
        momentum=0.9,
        nesterov=hparams.nesterov,
        weight_decay=hparams.weight_decay,
    )
    total = max(int(stepping_batches), 1)
    epochs = max(max_epochs or 1, 1)
    warmup = min(int(total * hparams.warmup_epochs / epochs), total - 1)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, warmup_cosine(total, warmup))
    return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}
