"""Per-sample outputs of a cascade: everything the metrics read, in O(N) instead of N x C.

Every registered metric is a function of a few per-sample quantities of the cascade's output
probabilities: the confidence of the chosen score, the exit stage, the top-label probability,
whether the arg-max class is the target, the probability of the target and the sum of squared
probabilities. Online they are taken from each batch's output probabilities (so the DDP-synced
states hold O(N) values); offline they are computed once per dataset for every ensemble prefix
and gathered by exit stage, so a sweep over policies costs O(N) per setting.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import torch

from window_cascades.uncertainty.probability_metrics import squared_norm


@dataclass
class SampleOutputs:
    """Per-sample cascade outputs (N each).

    Attributes:
        confidence: confidence of the policy's score at the exit stage, float64.
        exit_stage: 1-based number of members that processed the sample, int64.
        top_prob: top-label probability of the output probabilities, float64.
        correct: whether the arg-max class equals the target (False where unlabelled).
        target_prob: probability of the target class, float64 (0 where unlabelled).
        sum_sq: sum over classes of squared probabilities, float64.
    """

    confidence: torch.Tensor
    exit_stage: torch.Tensor
    top_prob: torch.Tensor
    correct: torch.Tensor
    target_prob: torch.Tensor
    sum_sq: torch.Tensor

    @classmethod
    def from_probs(
        cls,
        probs: torch.Tensor,
        confidence: torch.Tensor,
        exit_stage: torch.Tensor,
        targets: torch.Tensor,
    ) -> SampleOutputs:
        """From N x C output probabilities (float32, as the engine returns them)."""
        labelled = targets >= 0
        index = targets.long().clamp_min(0).view(-1, 1)
        target_prob = probs.gather(1, index).squeeze(1).double()
        return cls(
            confidence=confidence.double(),
            exit_stage=exit_stage.long(),
            top_prob=probs.max(dim=-1).values.double(),
            correct=(probs.argmax(dim=-1) == targets) & labelled,
            target_prob=torch.where(labelled, target_prob, torch.zeros_like(target_prob)),
            sum_sq=squared_norm(probs),
        )

    @classmethod
    def concat(cls, parts: list[SampleOutputs]) -> SampleOutputs:
        """The outputs of consecutive parts of the samples, in order."""
        return cls(**{f.name: torch.cat([getattr(p, f.name) for p in parts]) for f in fields(cls)})

    @property
    def num_samples(self) -> int:
        return self.confidence.numel()

    def cpu(self) -> SampleOutputs:
        """The same outputs in host memory."""
        return SampleOutputs(**{f.name: getattr(self, f.name).detach().cpu() for f in fields(self)})

    def select(self, index: torch.Tensor) -> SampleOutputs:
        """The outputs of a subset (or a reordering) of the samples."""
        return SampleOutputs(**{f.name: getattr(self, f.name)[index] for f in fields(self)})

    @staticmethod
    def by_exit_stage(stages: list[SampleOutputs], exit_stage: torch.Tensor) -> SampleOutputs:
        """Each sample's outputs from the stage it exits at (``stages[k]``: the outputs every
        sample would have if it exited after stage k + 1)."""
        rows = torch.arange(exit_stage.numel())
        picked = {
            f.name: torch.stack([getattr(s, f.name) for s in stages])[exit_stage - 1, rows]
            for f in fields(SampleOutputs)
            if f.name != "exit_stage"
        }
        return SampleOutputs(exit_stage=exit_stage.long(), **picked)
