"""Exact k-nearest-neighbour search of unit-normalised features, in row blocks.

The KNN score needs, for every query, the k-th largest cosine similarity to a bank of training
features. The N x M similarity matrix is never held: queries are taken in blocks of rows such
that one block's similarities to the whole bank fit ``BLOCK_VALUES`` values (256 MiB in
float32), and only each block's top k are kept. Exact flat search is bound by the one matrix
product either way (faiss-cpu's ``IndexFlatIP`` was measured no faster on 2 cores,
benchmarks/scores/README.md), so nothing beyond torch is needed.
"""

from __future__ import annotations

import torch

BLOCK_VALUES = 1 << 26
"""Similarities held at once: query rows per block = this // bank size (at least 1)."""


def unit_rows(x: torch.Tensor) -> torch.Tensor:
    """Rows scaled to unit Euclidean norm (a zero row stays zero), in float32 at least
    (float64 kept)."""
    x = x.double() if x.dtype == torch.float64 else x.float()
    return x / x.norm(dim=1, keepdim=True).clamp_min(1e-12)


def kth_neighbour_similarity(
    queries: torch.Tensor, bank: torch.Tensor, k: int, block_values: int = BLOCK_VALUES
) -> torch.Tensor:
    """The k-th largest cosine similarity of each query to the rows of ``bank``.

    Args:
        queries: N x D features (normalised here).
        bank: M x D unit-normalised training features (``unit_rows``).
        k: the neighbour rank, 1 <= k <= M.
        block_values: similarities held at once (query rows per block x M).

    Returns:
        N similarities, in the precision of the computation (float64 when both inputs are
        float64, else float32).

    Raises:
        ValueError: k outside 1..M, or feature dimensions that differ.
    """
    m = bank.shape[0]
    if not 1 <= k <= m:
        raise ValueError(f"knn: k = {k} neighbours, but the bank holds {m} training samples")
    if queries.shape[1] != bank.shape[1]:
        raise ValueError(
            f"knn: features of dimension {queries.shape[1]}, the bank's are {bank.shape[1]}"
        )
    q = unit_rows(queries)
    dtype = torch.float64 if q.dtype == torch.float64 and bank.dtype == torch.float64 else None
    dtype = dtype or torch.float32
    q, bank = q.to(dtype), bank.to(dtype)
    rows = max(1, block_values // m)
    out = torch.empty(q.shape[0], dtype=dtype)
    for start in range(0, q.shape[0], rows):
        block = q[start : start + rows] @ bank.T
        out[start : start + rows] = block.topk(k, dim=1).values[:, k - 1]
    return out
