"""The metrics of many weighted copies of one sample at once (bootstrap resamples).

A bootstrap resample of N samples is N draws with replacement (B x N ``draws``): sample i
appears W[b, i] times in resample b. Every metric below takes the per-sample quantities of the
original sample once and the draws or their counts W (B x N, float64), and returns the B metric
values of the B resamples, equal to the metric of ``uncertainty.selective`` / ``ood_detection``
/ ``probability_metrics`` evaluated on each resample with its repeated samples. A resample does
not change the order of the confidences, only the weight of each, so the curves are weighted
cumulative sums over one fixed sort: O(B x N) per metric instead of B sorts.
"""

from __future__ import annotations

from functools import cached_property

import torch


def draw_counts(draws: torch.Tensor, n: int) -> torch.Tensor:
    """B x n float64: how often each of n samples appears in each row of ``draws`` (B x k)."""
    out = torch.zeros(draws.shape[0], n, dtype=torch.float64)
    return out.scatter_add_(1, draws, torch.ones(draws.shape, dtype=torch.float64))


def weighted_mean(values: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """Sum_i W[b, i] values[i] / sum_i W[b, i], per resample b."""
    return weights @ values.double() / weights.sum(1)


def _rank(values: torch.Tensor, descending: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """(sorted values, position of each sample in the sorted order)."""
    sorted_values, order = torch.sort(values, descending=descending, stable=True)
    rank = torch.empty_like(order)
    rank[order] = torch.arange(order.numel())
    return sorted_values, rank


class WeightedCurve:
    """Tie-aware risk-coverage curves of B resamples of one sample.

    One point per distinct confidence (most confident first), as
    :func:`uncertainty.selective.risk_coverage_curve`: at point g every sample with confidence
    >= the g-th largest distinct value is accepted. A point none of whose samples was drawn in
    resample b repeats the previous point of b (zero width in every area). Samples are binned
    by point straight from the draws (no B x N gather).

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
        sorted_conf, rank = _rank(conf, descending=True)
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
        first point's risk (the flat extension to coverage 0 of :func:`aurc`)."""
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
        """B values of cov@r: the largest coverage with risk <= r (0 when none)."""
        ok = (self.risk <= max_risk + 1e-12) & (self.count > 0)
        return (self.coverage * ok).amax(1)

    def risk_at_coverage(self, min_coverage: float) -> torch.Tensor:
        """B values of risk@c: the risk at the first point with coverage >= c."""
        reached = self.coverage >= min_coverage - 1e-12
        first = reached.double().argmax(1, keepdim=True)
        return self.risk.gather(1, first).squeeze(1)


def weighted_oracle_aurc(correct: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """B AURC values of the oracle ranking (every correct sample first, all distinct).

    With n = sum_i W[b, i] samples of which C_b correct, the per-sample curve has risk
    max(0, k - C_b) / k at coverage k / n (k = 1..n), extended flat to 0.
    """
    n = weights.sum(1)
    if not bool((n == n[0]).all()):
        raise ValueError("weighted_oracle_aurc needs resamples of one size")
    size = int(n[0])
    good = weights @ correct.double().flatten()  # B
    k = torch.arange(1, size + 1, dtype=torch.float64)
    risk = (k - good[:, None]).clamp_min(0) / k
    risk = torch.cat([risk[:, :1], risk], 1)
    return torch.trapezoid(risk, dx=1.0 / size, dim=1)


def weighted_auroc(
    id_conf: torch.Tensor, ood_conf: torch.Tensor, id_draws: torch.Tensor, ood_draws: torch.Tensor
) -> torch.Tensor:
    """B AUROC values of OOD (positive) vs ID by -confidence: P(conf_ood < conf_id) + half the
    ties, over the resamples ``id_draws`` (B x N_id) and ``ood_draws`` (B x N_ood)."""
    ids, rank = _rank(id_conf.double().flatten(), descending=False)
    sorted_weights = draw_counts(rank[id_draws], ids.numel())
    cum = torch.cat([sorted_weights.new_zeros(id_draws.shape[0], 1), sorted_weights.cumsum(1)], 1)
    ood = ood_conf.double().flatten()
    below = torch.searchsorted(ids, ood, right=False)  # ID samples with conf < ood conf
    upto = torch.searchsorted(ids, ood, right=True)  # ... <= ood conf
    total = cum[:, -1:]
    # per OOD sample: ID weight above it plus half the tied weight
    wins = total - 0.5 * (cum[:, upto] + cum[:, below])
    w_ood = draw_counts(ood_draws, ood.numel())
    return (wins * w_ood).sum(1) / (total.squeeze(1) * w_ood.sum(1))


def weighted_aupr(
    id_conf: torch.Tensor, ood_conf: torch.Tensor, id_draws: torch.Tensor, ood_draws: torch.Tensor
) -> torch.Tensor:
    """B average precisions, OOD positive, thresholds at the distinct scores (-confidence)."""
    conf = torch.cat([id_conf.flatten(), ood_conf.flatten()]).double()
    is_ood = torch.cat([torch.zeros(id_conf.numel()), torch.ones(ood_conf.numel())]).double()
    draws = torch.cat([id_draws, ood_draws + id_conf.numel()], 1)
    curve = WeightedCurve(-conf, is_ood, draws)  # most OOD-like first
    tp, n_pred = curve.loss, curve.count
    precision = torch.where(n_pred > 0, tp / n_pred.clamp_min(1e-300), torch.zeros_like(tp))
    recall = tp / tp[:, -1:]
    recall_prev = torch.cat([recall.new_zeros(recall.shape[0], 1), recall[:, :-1]], 1)
    return ((recall - recall_prev) * precision).sum(1)


def weighted_fpr(
    id_conf: torch.Tensor,
    ood_conf: torch.Tensor,
    id_draws: torch.Tensor,
    ood_draws: torch.Tensor,
    tpr: float,
) -> torch.Tensor:
    """B values of fpr@p: the OOD fraction with confidence >= the largest threshold that
    accepts at least p of the resampled ID samples."""
    ids, rank = _rank(id_conf.double().flatten(), descending=True)
    cum_id = torch.cumsum(draw_counts(rank[id_draws], ids.numel()), 1)
    need = torch.ceil(tpr * cum_id[:, -1:] - 1e-9).clamp_min(1)
    threshold = ids[(cum_id < need).sum(1)]  # B: first position reaching the count
    oods, o_rank = _rank(ood_conf.double().flatten(), descending=False)
    cum_ood = torch.cumsum(draw_counts(o_rank[ood_draws], oods.numel()), 1)
    cum_ood = torch.cat([cum_ood.new_zeros(cum_ood.shape[0], 1), cum_ood], 1)
    below = torch.searchsorted(oods, threshold, right=False)  # OOD with conf < threshold
    accepted = cum_ood[:, -1] - cum_ood.gather(1, below[:, None]).squeeze(1)
    return accepted / cum_ood[:, -1]


def weighted_calibration_error(
    top_prob: torch.Tensor, correct: torch.Tensor, weights: torch.Tensor, bins: int = 15
) -> torch.Tensor:
    """B top-label ECEs with the bins of :func:`calibration_error`: sum_b |sum_{i in b}
    W_i (correct_i - conf_i)| / sum_i W_i."""
    conf = top_prob.double().flatten()
    edges = torch.linspace(0, 1, bins + 1, dtype=torch.float64)
    which = torch.bucketize(conf, edges[1:-1], right=False)
    gap = correct.double().flatten() - conf
    per_bin = torch.zeros(bins, conf.numel(), dtype=torch.float64)
    per_bin[which, torch.arange(conf.numel())] = gap
    return (weights @ per_bin.T).abs().sum(1) / weights.sum(1)


def _by_correctness(
    confidence: torch.Tensor, correct: torch.Tensor, weights: torch.Tensor, descending: bool
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """(sorted correct confidences, their B x n weights in that order, wrong confidences, their
    B x m weights)."""
    conf, ok = confidence.double().flatten(), correct.bool().flatten()
    right, order = torch.sort(conf[ok], descending=descending, stable=True)
    return right, weights[:, ok][:, order], conf[~ok], weights[:, ~ok]


def _nan_where_undefined(value: torch.Tensor, w_right: torch.Tensor, w_wrong: torch.Tensor):
    defined = (w_right.sum(1) > 0) & (w_wrong.sum(1) > 0)
    return torch.where(defined, value, torch.full_like(value, float("nan")))


def weighted_failure_auroc(
    confidence: torch.Tensor, correct: torch.Tensor, weights: torch.Tensor
) -> torch.Tensor:
    """B values of :func:`uncertainty.failure_detection.failure_auroc`, sample i counted
    W[b, i] times: sum over wrong j and correct i of W_j W_i (1[c_i > c_j] + 0.5 1[c_i = c_j]),
    over (sum_wrong W)(sum_correct W); NaN for a resample with no correct or no wrong draw."""
    right, w_right, wrong, w_wrong = _by_correctness(confidence, correct, weights, False)
    cum = torch.cat([w_right.new_zeros(w_right.shape[0], 1), w_right.cumsum(1)], 1)
    below = torch.searchsorted(right, wrong, right=False)  # correct with conf < a wrong one's
    upto = torch.searchsorted(right, wrong, right=True)  # ... <= it
    total = cum[:, -1:]
    wins = total - 0.5 * (cum[:, upto] + cum[:, below])  # correct weight above, half the ties
    value = (wins * w_wrong).sum(1) / (total.squeeze(1) * w_wrong.sum(1)).clamp_min(1e-300)
    return _nan_where_undefined(value, w_right, w_wrong)


def weighted_failure_fpr(
    confidence: torch.Tensor, correct: torch.Tensor, weights: torch.Tensor, tpr: float
) -> torch.Tensor:
    """B values of :func:`uncertainty.failure_detection.failure_fpr_at_tpr` (the standard
    threshold: the largest accepting at least ``tpr`` of the resample's correct draws), sample
    i counted W[b, i] times; NaN for a resample with no correct or no wrong draw."""
    right, w_right, wrong, w_wrong = _by_correctness(confidence, correct, weights, True)
    if right.numel() == 0 or wrong.numel() == 0:
        return torch.full((weights.shape[0],), float("nan"), dtype=torch.float64)
    cum = torch.cumsum(w_right, 1)
    need = torch.ceil(tpr * cum[:, -1:] - 1e-9).clamp_min(1)
    first = (cum < need).sum(1).clamp_max(right.numel() - 1)  # first position reaching it
    threshold = right[first]
    accepted = (w_wrong * (wrong[None, :] >= threshold[:, None]).double()).sum(1)
    value = accepted / w_wrong.sum(1).clamp_min(1e-300)
    return _nan_where_undefined(value, w_right, w_wrong)
