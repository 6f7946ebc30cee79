"""torchmetrics wrapper that gathers per-sample cascade outputs across processes."""

from __future__ import annotations

import torch
from torchmetrics import Metric
from torchmetrics.utilities import dim_zero_cat

from cascade.engine import CascadeResult


class CascadeOutputs(Metric):
    """Accumulates (probs, confidence, exit stage, target) of every sample seen.

    States are ``cat`` lists, so under DDP ``compute()`` returns the outputs of all processes
    and every metric computed from them equals a single-process run (the evaluation sampler
    must not pad). Every rank must call ``compute()``.
    """

    full_state_update = False

    def __init__(self):
        super().__init__()
        for name in ("probs", "confidence", "exit_stage", "targets"):
            self.add_state(name, default=[], dist_reduce_fx="cat")

    def update(self, result: CascadeResult, targets: torch.Tensor) -> None:
        # states live on the metric's device, as the process group's all-gather needs
        self.probs.append(result.probs.float().to(self.device))
        self.confidence.append(result.confidence.double().to(self.device))
        self.exit_stage.append(result.exit_stage.long().to(self.device))
        self.targets.append(targets.long().to(self.device))

    def compute(self) -> tuple[CascadeResult, torch.Tensor]:
        result = CascadeResult(
            probs=dim_zero_cat(self.probs).cpu(),
            confidence=dim_zero_cat(self.confidence).cpu(),
            exit_stage=dim_zero_cat(self.exit_stage).cpu(),
        )
        return result, dim_zero_cat(self.targets).cpu()
