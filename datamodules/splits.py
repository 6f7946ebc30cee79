"""Deterministic stratified splits."""

from __future__ import annotations

import torch


def stratified_split(labels: torch.Tensor, fractions: list[float], seed: int) -> list[torch.Tensor]:
    """Split sample indices into parts with the given fractions, class by class.

    Each class's indices are shuffled with a generator seeded by ``seed`` and cut at the
    cumulative fractions (rounded per class), so every part keeps the class balance and the
    same seed always gives the same split. The last part takes the remainder.

    Args:
        labels: The samples' class labels, shape (N,).
        fractions: The parts' shares of each class, summing to 1.
        seed: The seed of the shuffle.

    Returns:
        One tensor of sample indices per part, in the order of ``fractions``.
    """
    if abs(sum(fractions) - 1) > 1e-6:
        raise ValueError(f"split fractions must sum to 1, got {fractions}")
    gen = torch.Generator().manual_seed(seed)
    parts: list[list[torch.Tensor]] = [[] for _ in fractions]
    for c in torch.unique(labels).tolist():
        idx = torch.nonzero(labels == c).flatten()
        idx = idx[torch.randperm(idx.numel(), generator=gen)]
        start = 0
        cum = 0.0
        for p, frac in enumerate(fractions):
            cum += frac
            end = idx.numel() if p == len(fractions) - 1 else round(cum * idx.numel())
            parts[p].append(idx[start:end])
            start = end
    return [torch.sort(torch.cat(p)).values for p in parts]
