"""Calibration metrics of N x C predicted probabilities against integer targets."""

from __future__ import annotations

import torch


def expected_calibration_error(probs: torch.Tensor, targets: torch.Tensor, bins: int = 15) -> float:
    """ECE of the top label: sum_b |B_b|/N * |acc(B_b) - conf(B_b)|.

    Bins are ``bins`` equal-width intervals (lo, hi] of the top-label probability over [0, 1]
    (the first bin also holds 0).
    """
    conf, pred = probs.max(dim=-1)
    conf = conf.double()
    correct = (pred == targets).double()
    edges = torch.linspace(0, 1, bins + 1, dtype=torch.float64)
    which = torch.bucketize(conf, edges[1:-1], right=False)  # bucket b holds (e_b, e_{b+1}]
    n = conf.numel()
    ece = torch.zeros((), dtype=torch.float64)
    for b in range(bins):
        mask = which == b
        if mask.any():
            ece += mask.sum() / n * (correct[mask].mean() - conf[mask].mean()).abs()
    return float(ece)


def negative_log_likelihood(probs: torch.Tensor, targets: torch.Tensor) -> float:
    """Mean of -log p(target) in nats (probabilities clamped at 1e-12)."""
    p = probs.gather(1, targets.long().view(-1, 1)).squeeze(1).double()
    return float(-torch.log(p.clamp_min(1e-12)).mean())


def brier_score(probs: torch.Tensor, targets: torch.Tensor) -> float:
    """Mean over samples of sum_c (p_c - 1[c = target])^2 (in [0, 2]).

    Computed as sum_c p_c^2 - 2 p_target + 1 per sample (no N x C one-hot).
    """
    p_target = probs.gather(1, targets.long().view(-1, 1)).squeeze(1).double()
    sum_sq = (probs * probs).sum(dim=-1).double()
    return float((sum_sq - 2 * p_target + 1).mean())


def accuracy(probs: torch.Tensor, targets: torch.Tensor) -> float:
    """Fraction of samples whose arg-max class equals the target."""
    return float((probs.argmax(dim=-1) == targets).double().mean())
