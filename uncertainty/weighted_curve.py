"""Weighted copies of one sample: the machinery behind every metric's weighted form.

A bootstrap resample of N samples is N draws with replacement (B x N ``draws``): sample i
appears W[b, i] times in resample b. Each metric family keeps its weighted form beside its
plain one (``selective``, ``ood_detection``, ``failure_detection``, ``probability_metrics``):
it takes the per-sample quantities of the original sample once and the counts W (B x N), and
returns the B metric values of the B resamples, equal to the plain function evaluated on each
resample with its repeated samples. This module holds what those weighted forms share: the
counts, the weighted mean, one sort of the confidences with its groups of equal confidence
([`SortedGroups`][]), the risk-coverage curves read from cumulative counts over it
([`CountCurve`][]) and OOD detection from the ID and OOD sets' cumulative counts over their
own sorts ([`OodRanks`][], [`OodCounts`][]).

A resample does not change the order of the confidences, only the weight of each, so every
curve of every resample is a cumulative sum of the counts over one fixed sort, read at the end
of each group of tied confidences: one gather, one cumulative sum and one read per channel
(count, errors, ...), O(B x N), instead of B sorts. Counts are integers, so the cumulative
sums are exact (in float32 below 2^24 = 16.7 million draws, in float64 below 2^53), and every
curve metric is then a handful of float64 passes over B x G values (G distinct confidences).

Why two forms rather than one weighted definition: the plain functions fix the reported numbers
(golden files hold them to the last bit), and their float arithmetic differs from the weighted
sums in the last bits; the weighted forms are held equal to them within 1e-10 by
``tests/cascade/test_metric_registry.py`` and ``tests/cascade/test_bootstrap.py``.
"""

from __future__ import annotations

from functools import cached_property

import torch


def draw_counts(draws: torch.Tensor, n: int, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """How often each of n samples appears in each resample.

    Args:
        draws: B x k indices into the n samples (a resample's k draws with replacement).
        n: number of samples.
        dtype: the counts' dtype (float32 holds them exactly up to 2^24 draws per resample).

    Returns:
        B x n counts W[b, i] (the weights of the weighted forms).
    """
    out = torch.zeros(draws.shape[0], n, dtype=dtype)
    return out.scatter_add_(1, draws, torch.ones(draws.shape, dtype=dtype))


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


class SortedGroups:
    """One stable sort of N confidences, and its groups of equal confidence.

    Args:
        confidence: N confidences.
        descending: most confident first (the order of the risk-coverage curves).

    Attributes:
        order: N sample indices in sorted order.
        values: the sorted confidences (float64).
        ends: G positions in the sorted order, the last of each group of equal confidence.
    """

    def __init__(self, confidence: torch.Tensor, descending: bool = True):
        conf = confidence.detach().double().flatten()
        self.values, self.order = torch.sort(conf, descending=descending, stable=True)
        last = torch.ones(conf.numel(), dtype=torch.bool)
        last[:-1] = self.values[1:] != self.values[:-1]
        self.ends = torch.nonzero(last).flatten()
        self.tied = self.ends.numel() < conf.numel()

    @property
    def num_groups(self) -> int:
        """G, the number of distinct confidences."""
        return self.ends.numel()

    def sorted_mask(self, values: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
        """Per-sample ``values`` (N: a 0/1 mask, a loss) in sorted order, as ``dtype``.

        Args:
            values: N per-sample values, in the samples' own order.
            dtype: The result's dtype.
        """
        return values.flatten().to(dtype)[self.order]

    def cumulate(self, weights: torch.Tensor, sorted_values: torch.Tensor | None = None):
        """Cumulative sums of B x N ``weights`` (times ``sorted_values``, per sorted position,
        when given) over the sorted order, read at each group's end.

        Args:
            weights: B x N counts (float32 or float64), in the samples' own order.
            sorted_values: None, or N per-position factors in sorted order
                ([`sorted_mask`][]), e.g. 1 for an error and 0 otherwise.

        Returns:
            B x G float64: entry (b, g) sums the weights of the samples in groups 0..g.
        """
        w = weights.index_select(1, self.order)
        return self.cumulate_sorted(w, sorted_values)

    def cumulate_sorted(self, w: torch.Tensor, sorted_values: torch.Tensor | None = None):
        """[`cumulate`][] of weights already in sorted order (B x N).

        Args:
            w: B x N counts, in sorted order.
            sorted_values: None, or N per-position factors in sorted order.
        """
        if sorted_values is not None:
            w = w * sorted_values
        cum = w.cumsum(1)
        if self.tied:
            cum = cum.index_select(1, self.ends)
        return cum.double()


def _previous(cumulative: torch.Tensor) -> torch.Tensor:
    """B x G: each group's cumulative value before it (0 before the first group)."""
    return torch.nn.functional.pad(cumulative[:, :-1], (1, 0))


def _dot(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Row-wise dot products of two B x G tensors (B values)."""
    return torch.linalg.vecdot(a, b, dim=1)


def trapezoid_area(width: torch.Tensor, risk: torch.Tensor, first: torch.Tensor) -> torch.Tensor:
    """sum_g width_g (risk_g + risk_{g-1}) / 2 over B rows, the curve extended flat before its
    first point with a positive count (``first``, B indices): risk_{first - 1} = risk_first.

    Args:
        width: B x G widths (0 where a group adds nothing to the coverage).
        risk: B x G risks, any value (e.g. 0) before ``first``.
        first: B indices of the first group with a positive count.
    """
    own = _dot(width, risk) + _dot(width[:, 1:], risk[:, :-1])
    at_first = width.gather(1, first[:, None]) * risk.gather(1, first[:, None])
    return (own + at_first.squeeze(1)) / 2


class CountCurve:
    """Tie-aware risk-coverage curves of B resamples of one sample, from cumulative counts.

    One point per distinct confidence (most confident first), as
    [`window_cascades.uncertainty.selective.risk_coverage_curve`][]: at point g every sample
    with confidence >= the g-th largest distinct value is accepted. A point none of whose
    samples was drawn in resample b repeats the previous point of b (zero width in every
    area). Build it with [`SortedGroups`][]' cumulative sums.

    Args:
        count: B x G weighted number accepted at each point (float64).
        loss: B x G weighted loss accepted (errors; SCOD: errors + beta x OOD samples).
        covered: B x G weighted number of the samples that count for the coverage (SCOD: the
            ID samples); None: ``count``.
    """

    def __init__(self, count: torch.Tensor, loss: torch.Tensor, covered: torch.Tensor | None):
        self.count, self.loss = count, loss
        self.total = count[:, -1:]  # B x 1
        self.covered = count if covered is None else covered
        self.covered_total = self.covered[:, -1:]

    @cached_property
    def first(self) -> torch.Tensor:
        """B: the first point with a positive count."""
        # the counts are cumulative (non-decreasing): the number of points still at 0
        zero = torch.zeros(self.count.shape[0], 1, dtype=self.count.dtype)
        return torch.searchsorted(self.count, zero, right=True).squeeze(1)

    @cached_property
    def coverage(self) -> torch.Tensor:
        """B x G fraction of (coverage) samples accepted at each point."""
        return self.covered / self.covered_total

    @cached_property
    def _risk_from_first(self) -> torch.Tensor:
        """B x G selective risk, 0 before the first point with a positive count."""
        return self.loss / self.count.clamp_min(1e-300)

    @cached_property
    def risk(self) -> torch.Tensor:
        """B x G selective risk; points before a resample's first accepted sample take that
        first point's risk (the flat extension to coverage 0 of ``aurc``)."""
        risk = self._risk_from_first
        reached = self.count > 0
        return torch.where(reached, risk, risk.gather(1, self.first[:, None]))

    @cached_property
    def _count_width(self) -> torch.Tensor:
        """B x G count added at each point."""
        return self.count - _previous(self.count)

    @cached_property
    def _covered_width(self) -> torch.Tensor:
        """B x G coverage count added at each point (the count's, without a coverage mask)."""
        if self.covered is self.count:
            return self._count_width
        return self.covered - _previous(self.covered)

    @cached_property
    def area(self) -> torch.Tensor:
        """B AURC values: trapezoid over the points, extended flat to coverage 0."""
        width = self._covered_width
        first = self.first.clamp_max(self.count.shape[1] - 1)
        area = trapezoid_area(width, self._risk_from_first, first)
        return area / self.covered_total.squeeze(1)

    def generalized_area(self) -> torch.Tensor:
        """B AUGRC values: trapezoid of (accepted loss / all) over coverage, from (0, 0)."""
        width = self._count_width
        both = _dot(width, self.loss) + _dot(width[:, 1:], self.loss[:, :-1])
        return both / (2 * self.total.squeeze(1) ** 2)

    def coverage_at_risk(self, max_risk: float) -> torch.Tensor:
        """B values of cov@r: the largest coverage with risk <= r (0 when none).

        Args:
            max_risk: The risk r, a fraction.
        """
        ok = (self._risk_from_first <= max_risk + 1e-12) & (self.count > 0)
        return torch.where(ok, self.coverage, 0.0).amax(1)

    def risk_at_coverage(self, min_coverage: float) -> torch.Tensor:
        """B values of risk@c: the risk at the first point with coverage >= c.

        Args:
            min_coverage: The coverage c, a fraction.
        """
        value = torch.full((self.coverage.shape[0], 1), min_coverage - 1e-12, dtype=torch.float64)
        last = self.coverage.shape[1] - 1
        at = torch.searchsorted(self.coverage, value).clamp_max(last)
        # a point before the resample's first accepted sample takes that point's risk (risk)
        at = torch.where(self.count.gather(1, at) > 0, at, self.first[:, None].clamp_max(last))
        return self._risk_from_first.gather(1, at).squeeze(1)


class WeightedCurve(CountCurve):
    """[`CountCurve`][] of B resamples given as draws.

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
        groups = SortedGroups(confidence)
        w = draw_counts(draws, confidence.numel()).index_select(1, groups.order)
        count = groups.cumulate_sorted(w)
        loss_c = groups.cumulate_sorted(w, groups.sorted_mask(loss.double(), torch.float64))
        covered = None
        if coverage_mask is not None:
            mask = groups.sorted_mask(coverage_mask.double(), torch.float64)
            covered = groups.cumulate_sorted(w, mask)
        super().__init__(count, loss_c, covered)


def failure_from_counts(
    count: torch.Tensor, errors: torch.Tensor, tpr: float | None = None
) -> torch.Tensor:
    """Failure detection (correct predictions positive) of B resamples from the cumulative
    counts of a [`SortedGroups`][] sort (most confident first): with ``tpr`` None the AUROC,
    sum_g e_g (K_{g-1} + K_g) / 2 / (K E) (K correct, E wrong draws; e_g the wrong draws of
    group g); else the fraction of wrong draws accepted at the largest threshold accepting at
    least ``tpr`` of the correct ones. NaN where a resample has no correct or no wrong draw.

    Args:
        count: B x G cumulative draws.
        errors: B x G cumulative wrong draws.
        tpr: the share of correct draws accepted, in (0, 1], or None for the AUROC.

    Returns:
        B values (float64).
    """
    right = count - errors
    right_total, wrong_total = right[:, -1], errors[:, -1]
    if tpr is None:
        wrong_here = errors - _previous(errors)
        pairs = _dot(wrong_here, right) + _dot(wrong_here, _previous(right))
        value = pairs / 2 / (right_total * wrong_total).clamp_min(1e-300)
    else:
        need = torch.ceil(tpr * right_total[:, None] - 1e-9).clamp_min(1)
        # right is non-decreasing along each row: the number of points below need
        at = torch.searchsorted(right, need).clamp_max(count.shape[1] - 1)
        value = errors.gather(1, at).squeeze(1) / wrong_total.clamp_min(1e-300)
    defined = (right_total > 0) & (wrong_total > 0)
    return torch.where(defined, value, torch.full_like(value, float("nan")))


def ood_from_counts(
    id_count: torch.Tensor, ood_count: torch.Tensor, metric: str, tpr: float = 0.95
) -> torch.Tensor:
    """OOD detection (OOD positive, scored by -confidence) of B resamples from the cumulative
    ID and OOD draws of one [`SortedGroups`][] sort of the ID and OOD confidences together
    (most confident first).

    Args:
        id_count: B x G cumulative ID draws.
        ood_count: B x G cumulative OOD draws.
        metric: ``auroc`` (P(conf_ood < conf_id) + half the ties), ``aupr`` (average
            precision at the distinct scores, most OOD-like first) or ``fpr`` (the fraction of
            OOD draws accepted at the largest threshold accepting at least ``tpr`` of the ID
            draws).
        tpr: the ID acceptance rate of ``fpr``, in (0, 1].

    Returns:
        B values (fractions, float64).
    """
    id_total, ood_total = id_count[:, -1], ood_count[:, -1]
    ood_before = _previous(ood_count)
    if metric == "auroc":
        ood_here = ood_count - ood_before
        pairs = _dot(ood_here, id_count) + _dot(ood_here, _previous(id_count))
        return pairs / 2 / (id_total * ood_total)
    if metric == "aupr":
        # group g seen from the most OOD-like end: true positives O_tot - O_{g-1} among
        # T_tot - T_{g-1} flagged, recall step o_g / O_tot
        flagged = (id_total + ood_total)[:, None] - _previous(id_count) - ood_before
        precision = (ood_total[:, None] - ood_before) / flagged.clamp_min(1e-300)
        return _dot(ood_count - ood_before, precision) / ood_total
    need = torch.ceil(tpr * id_total[:, None] - 1e-9).clamp_min(1)
    at = (id_count < need).sum(1, keepdim=True).clamp_max(id_count.shape[1] - 1)
    return ood_count.gather(1, at).squeeze(1) / ood_total


class OodRanks:
    """What OOD detection of resamples reads that the resampling does not change: the ID and
    OOD confidences each sorted once (most confident first), and where every distinct OOD
    confidence falls among the ID ones.

    With these, an OOD set's AUROC, AUPR and fpr@P need only the cumulative draws of the ID set
    over its own sort (shared by every OOD set of a policy) and of the OOD set over its sort,
    read at the OOD groups: O(B x (N_id + N_ood)) gathers and one cumulative sum per set, and
    then B x G_ood float64 passes (G_ood distinct OOD confidences), instead of sorting the ID
    and OOD samples together and passing over all their groups.

    Args:
        id_confidence: N_id confidences of the ID set.
        ood_confidence: N_ood confidences of the OOD set.

    Attributes:
        id: the sort of the ID confidences ([`SortedGroups`][]).
        ood: the sort of the OOD confidences.
        id_above: G_ood: per distinct OOD confidence v (most confident first), the number of
            ID samples with confidence > v.
        id_through: G_ood: the number of ID samples with confidence >= v.
        ood_starts: G_ood: the sorted position of each OOD group's first sample.
        ood_through_id: N_id: per ID sample in sorted order, the number of OOD samples at least
            as confident.
    """

    def __init__(self, id_confidence: torch.Tensor, ood_confidence: torch.Tensor):
        self.id = SortedGroups(id_confidence)
        self.ood = SortedGroups(ood_confidence)
        id_ascending = self.id.values.flip(0).contiguous()
        ood_ascending = self.ood.values.flip(0).contiguous()
        distinct = self.ood.values.index_select(0, self.ood.ends)
        n_id, n_ood = id_ascending.numel(), ood_ascending.numel()
        self.id_above = n_id - torch.searchsorted(id_ascending, distinct, right=True)
        self.id_through = n_id - torch.searchsorted(id_ascending, distinct, right=False)
        self.ood_starts = torch.cat([self.ood.ends.new_zeros(1), self.ood.ends[:-1] + 1])
        self.ood_through_id = n_ood - torch.searchsorted(ood_ascending, self.id.values)


def cumulative_from_zero(groups: SortedGroups, weights: torch.Tensor) -> torch.Tensor:
    """B x (N + 1) cumulative sums of ``weights`` over ``groups``' sorted order, from 0: column
    k sums the weights of the k most confident samples (exact for integer counts).

    Args:
        groups: the sort ([`SortedGroups`][]).
        weights: B x N counts, in the samples' own order.
    """
    sorted_weights = weights.index_select(1, groups.order)
    return torch.nn.functional.pad(sorted_weights, (1, 0)).cumsum(1)


class OodCounts:
    """OOD detection (OOD positive, scored by -confidence) of B resamples, from the cumulative
    draws of the ID and OOD sets over their own sorts ([`OodRanks`][]). Equal to
    [`ood_from_counts`][] over the ID and OOD samples sorted together (a group of equal
    confidence without an OOD sample adds nothing to any of the three metrics), within the
    last bits of the float64 sums.

    Args:
        ranks: the fixed sorts and ranks of the ID and OOD confidences.
        id_cumulative: B x (N_id + 1) cumulative ID draws ([`cumulative_from_zero`][] over
            ``ranks.id``).
        ood_cumulative: B x (N_ood + 1) cumulative OOD draws over ``ranks.ood``.
    """

    def __init__(self, ranks: OodRanks, id_cumulative: torch.Tensor, ood_cumulative: torch.Tensor):
        self.ranks = ranks
        self.id_cumulative, self.ood_cumulative = id_cumulative, ood_cumulative
        self.id_before = id_cumulative.index_select(1, ranks.id_above).double()
        self.id_through = id_cumulative.index_select(1, ranks.id_through).double()
        self.ood_before = ood_cumulative.index_select(1, ranks.ood_starts).double()
        ood_through = ood_cumulative.index_select(1, ranks.ood.ends + 1).double()
        self.ood_here = ood_through - self.ood_before  # B x G_ood OOD draws of each group
        self.id_total = id_cumulative[:, -1].double()
        self.ood_total = ood_cumulative[:, -1].double()

    def auroc(self) -> torch.Tensor:
        """B values of P(conf_ood < conf_id) + half the ties."""
        pairs = _dot(self.ood_here, self.id_through) + _dot(self.ood_here, self.id_before)
        return pairs / 2 / (self.id_total * self.ood_total)

    def aupr(self) -> torch.Tensor:
        """B values of the average precision at the distinct scores, most OOD-like first: at
        group g, O_tot - O_{g-1} OOD draws among the T_tot - T_{g-1} flagged, recall step
        o_g / O_tot (T = ID + OOD)."""
        total = (self.id_total + self.ood_total)[:, None]
        flagged = total - self.id_before - self.ood_before
        precision = (self.ood_total[:, None] - self.ood_before) / flagged.clamp_min(1e-300)
        return _dot(self.ood_here, precision) / self.ood_total

    def fpr(self, tpr: float) -> torch.Tensor:
        """B values of the fraction of OOD draws accepted at the largest threshold accepting at
        least ``tpr`` of the ID draws.

        Args:
            tpr: the ID acceptance rate, in (0, 1].
        """
        cumulative = self.id_cumulative
        need = torch.ceil(tpr * self.id_total - 1e-9).clamp_min(1).to(cumulative.dtype)
        # the first sorted ID sample whose cumulative draws reach need (N_id: none does)
        first = torch.searchsorted(cumulative, need[:, None]).squeeze(1) - 1
        n_id, n_ood = cumulative.shape[1] - 1, self.ood_cumulative.shape[1] - 1
        reached = first < n_id
        at = self.ranks.ood_through_id.index_select(0, first.clamp(0, max(n_id - 1, 0)))
        at = torch.where(reached, at, torch.full_like(at, n_ood))
        accepted = self.ood_cumulative.gather(1, at[:, None]).squeeze(1).double()
        return accepted / self.ood_total
