"""Weighted copies of one sample: the machinery behind every metric's weighted form.

A bootstrap resample of N samples is N draws with replacement (B x N ``draws``): sample i
appears W[b, i] times in resample b. Each metric family keeps its weighted form beside its
plain one (``selective``, ``ood_detection``, ``failure_detection``, ``probability_metrics``):
it takes the per-sample quantities of the original sample once and the draws or their counts W
(B x N, float64), and returns the B metric values of the B resamples, equal to the plain
function evaluated on each resample with its repeated samples. This module holds what those
weighted forms share: the counts, the weighted mean and the weighted risk-coverage curve. A
resample does not change the order of the confidences, only the weight of each, so the curves
are weighted cumulative sums over one fixed sort: O(B x N) per metric instead of B sorts.

Why two forms rather than one weighted definition: the plain functions fix the reported numbers
(golden files hold them to the last bit), and their float arithmetic differs from the weighted
sums in the last bits; the weighted forms are held equal to them within 1e-10 by
``tests/cascade/test_metric_registry.py`` and ``tests/cascade/test_bootstrap.py``.
"""

from __future__ import annotations

from functools import cached_property

import torch


def draw_counts(draws: torch.Tensor, n: int) -> torch.Tensor:
    """How often each of n samples appears in each resample.

    Args:
        draws: B x k indices into the n samples (a resample's k draws with replacement).
        n: number of samples.

    Returns:
        B x n float64 counts W[b, i] (the weights of the weighted forms).
    """
    out = torch.zeros(draws.shape[0], n, dtype=torch.float64)
    return out.scatter_add_(1, draws, torch.ones(draws.shape, dtype=torch.float64))


def weighted_mean(values: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """The mean of per-sample ``values`` over each resample: sum_i W[b, i] values[i] /
    sum_i W[b, i] (the weighted form of every mean-type metric: accuracy, NLL, Brier, ...).

    Args:
        values: N per-sample values (any unit; the mean has the same).
        weights: B x N float64 counts W[b, i] ([`draw_counts`][]).

    Returns:
        B means (float64).
    """
    return weights @ values.double() / weights.sum(1)


def sort_with_rank(values: torch.Tensor, descending: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """Sort ``values`` (N, stable) and say where each sample went.

    Args:
        values: N values.
        descending: sort from the largest value down.

    Returns:
        (sorted values, rank): rank[i] is the position of sample i in the sorted order.
    """
    sorted_values, order = torch.sort(values, descending=descending, stable=True)
    rank = torch.empty_like(order)
    rank[order] = torch.arange(order.numel())
    return sorted_values, rank


class WeightedCurve:
    """Tie-aware risk-coverage curves of B resamples of one sample.

    One point per distinct confidence (most confident first), as
    [`window_cascades.uncertainty.selective.risk_coverage_curve`][]: at point g every sample with
    confidence >= the g-th largest distinct value is accepted. A point none of whose samples was
    drawn in resample b repeats the previous point of b (zero width in every area). Samples are
    binned by point straight from the draws (no B x N gather).

    Args:
        confidence: N confidences.
        loss: N per-sample losses (1 for an error, 0 for a correct sample; SCOD: beta for OOD).
        draws: B x k indices into the N samples (a resample's k draws with replacement).
        coverage_mask: optional N bool: the samples that count for the coverage (SCOD: the ID
            samples); default every sample.
    """

    def __init__(
        self,
        confidence: torch.Tensor,
        loss: torch.Tensor,
        draws: torch.Tensor,
        coverage_mask: torch.Tensor | None = None,
    ):
        conf = confidence.detach().double().flatten()
        sorted_conf, rank = sort_with_rank(conf, descending=True)
        first = torch.ones_like(sorted_conf, dtype=torch.bool)
        first[1:] = sorted_conf[1:] != sorted_conf[:-1]
        point_of_rank = torch.cumsum(first.long(), 0) - 1
        points = int(point_of_rank[-1]) + 1
        point = point_of_rank[rank][draws]  # B x k: the curve point of every draw

        def per_point(values: torch.Tensor | None) -> torch.Tensor:
            out = torch.zeros(draws.shape[0], points, dtype=torch.float64)
            src = torch.ones(draws.shape, dtype=torch.float64) if values is None else values
            return torch.cumsum(out.scatter_add_(1, point, src), 1)

        self.count = per_point(None)  # B x G weighted number accepted
        self.loss = per_point(loss.double().flatten()[draws])
        self.total = self.count[:, -1:]  # B x 1
        if coverage_mask is None:
            self.covered, self.covered_total = self.count, self.total
        else:
            self.covered = per_point(coverage_mask.flatten().double()[draws])
            self.covered_total = self.covered[:, -1:]

    @cached_property
    def coverage(self) -> torch.Tensor:
        """B x G fraction of (coverage) samples accepted at each point."""
        return self.covered / self.covered_total

    @cached_property
    def risk(self) -> torch.Tensor:
        """B x G selective risk; points before a resample's first accepted sample take that
        first point's risk (the flat extension to coverage 0 of
        [`aurc`][window_cascades.uncertainty.selective.aurc])."""
        reached = self.count > 0
        risk = self.loss / self.count.clamp_min(1e-300)
        first = reached.double().argmax(1, keepdim=True)  # first point with a positive count
        return torch.where(reached, risk, risk.gather(1, first))

    @cached_property
    def area(self) -> torch.Tensor:
        """B AURC values: trapezoid over the points, extended flat to coverage 0."""
        cov, risk = self.coverage, self.risk
        width = torch.diff(cov, dim=1, prepend=cov.new_zeros(cov.shape[0], 1))
        # sum_g width_g (risk_g + risk_{g-1}) / 2, with risk_{-1} = risk_0 (flat to 0)
        both = (width * risk).sum(1) + (width[:, 1:] * risk[:, :-1]).sum(1)
        return (both + width[:, 0] * risk[:, 0]) / 2

    def generalized_area(self) -> torch.Tensor:
        """B AUGRC values: trapezoid of (accepted loss / all) over coverage, from (0, 0)."""
        zero = self.count.new_zeros(self.count.shape[0], 1)
        width = torch.diff(self.count, dim=1, prepend=zero)
        both = (width * self.loss).sum(1) + (width[:, 1:] * self.loss[:, :-1]).sum(1)
        return both / (2 * self.total.squeeze(1) ** 2)

    def coverage_at_risk(self, max_risk: float) -> torch.Tensor:
        """B values of cov@r: the largest coverage with risk <= r (0 when none).

        Args:
            max_risk: the selective risk r, a fraction in (0, 1).
        """
        ok = (self.risk <= max_risk + 1e-12) & (self.count > 0)
        return (self.coverage * ok).amax(1)

    def risk_at_coverage(self, min_coverage: float) -> torch.Tensor:
        """B values of risk@c: the risk at the first point with coverage >= c.

        Args:
            min_coverage: the coverage c, a fraction in (0, 1].
        """
        reached = self.coverage >= min_coverage - 1e-12
        first = reached.double().argmax(1, keepdim=True)
        return self.risk.gather(1, first).squeeze(1)
