"""Significance of paired bootstrap differences: which differences are tested, their p-values
and the Benjamini-Hochberg decisions over the family.

Testing hundreds of differences at once finds some by chance, so each paired difference
(``window_cascades.cascade.bootstrap.Bootstrap.delta_rows``) carries a two-sided p-value from the
bootstrap standard error and a Benjamini-Hochberg decision at false discovery rate [`FDR`][] over
one
family: the random quantities only (not cost or exit fractions, which the fitted policy fixes,
nor the policy's own settings [`NOT_COMPARED`][]).
"""

from __future__ import annotations

import math

import torch

NOT_COMPARED = ("op_threshold", "op_bound")
"""Settings of a policy, not quality measures: no paired differences are tested for them."""
FDR = 0.05
"""The false discovery rate of the Benjamini-Hochberg decisions."""


def is_random_metric(metric: str) -> bool:
    """Whether a metric varies with the test sample given the fitted policy: not the cost or
    exit fractions (what the policy was fitted to spend) nor the policy's own settings."""
    return metric not in (*NOT_COMPARED, "expected_macs") and not metric.startswith("exit_frac@")


def bootstrap_p_value(delta: float, differences: torch.Tensor) -> float:
    """Two-sided p-value of "the paired difference is 0": erfc(|delta| / (se sqrt 2)), the
    normal approximation with ``se`` the standard deviation of the B resampled differences
    (resamples where the metric is undefined, NaN, left out). Unlike counting resamples on
    either side of 0, it resolves p-values below 1 / B, which a correction over hundreds of
    differences needs. NaN when fewer than 2 resamples are left or they do not vary."""
    d = differences[~torch.isnan(differences)].double()
    if d.numel() < 2 or not math.isfinite(delta):
        return float("nan")
    se = float(d.std())
    if not se > 0:
        return float("nan")
    return math.erfc(abs(delta) / (se * math.sqrt(2)))


def benjamini_hochberg(p_values: list[float], fdr: float = FDR) -> list[bool]:
    """Benjamini-Hochberg step-up decisions: reject the k smallest p-values, k the largest
    rank with p_(k) <= k / m x ``fdr`` (m = number of p-values); controls the expected
    fraction of false discoveries at ``fdr`` (independent or positively dependent tests)."""
    m = len(p_values)
    order = sorted(range(m), key=lambda i: p_values[i])
    k = max((rank for rank, i in enumerate(order, 1) if p_values[i] <= rank / m * fdr), default=0)
    rejected = set(order[:k])
    return [i in rejected for i in range(m)]
