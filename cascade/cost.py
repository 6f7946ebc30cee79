"""Exit distributions and expected compute of a cascade."""

from __future__ import annotations

import torch


def exit_fractions(exit_stage: torch.Tensor, num_stages: int) -> torch.Tensor:
    """Fraction of samples that leave after each stage: entry k-1 is ``exit_frac@k``."""
    counts = torch.bincount(exit_stage.long() - 1, minlength=num_stages).double()
    return counts / max(exit_stage.numel(), 1)


def expected_macs(exit_stage: torch.Tensor, stage_macs: list[float]) -> float:
    """Expected MACs per sample: sum_k (fraction of samples reaching stage k) x MACs_k."""
    reach = torch.tensor(
        [float((exit_stage >= k + 1).double().mean()) for k in range(len(stage_macs))],
        dtype=torch.float64,
    )
    return float((reach * torch.tensor(stage_macs, dtype=torch.float64)).sum())
