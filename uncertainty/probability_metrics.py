"""Accuracy and calibration metrics of N x C predicted probabilities against integer targets.

Each metric is computed from O(N) per-sample statistics (top-label probability, correctness,
probability of the target, sum of squared probabilities), so the torchmetrics wrappers, which
keep only those statistics, call the very same functions. The weighted forms (B bootstrap
resamples at once, see ``window_cascades.uncertainty.weighted_curve``) sit beside them: the
mean-type metrics (accuracy, NLL, Brier) are
[`window_cascades.uncertainty.weighted_curve.weighted_mean`][] of the same per-sample values, ECE
is [`weighted_calibration_error`][].
"""

from __future__ import annotations

import torch


def top_label(probs: torch.Tensor, targets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(top-label probability as float64, correctness as bool) per sample.

    Args:
        probs: N x C class probabilities (rows sum to 1).
        targets: N class indices (int64), the labels.
    """
    conf, pred = probs.max(dim=-1)
    return conf.double(), pred == targets


def target_probability(probs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """p(target) per sample, float64.

    Args:
        probs: N x C class probabilities (rows sum to 1).
        targets: N class indices (int64), the labels.
    """
    return probs.gather(1, targets.long().view(-1, 1)).squeeze(1).double()


def squared_norm(probs: torch.Tensor) -> torch.Tensor:
    """sum_c p_c^2 per sample, float64.

    Args:
        probs: N x C class probabilities (rows sum to 1).
    """
    return (probs * probs).sum(dim=-1).double()


def calibration_error(top_prob: torch.Tensor, correct: torch.Tensor, bins: int = 15) -> float:
    """ECE of the top label: sum_b |B_b|/N * |acc(B_b) - conf(B_b)|.

    Bins are ``bins`` equal-width intervals (lo, hi] of the top-label probability over [0, 1]
    (the first bin also holds 0).

    Args:
        top_prob: N top-label probabilities (the largest class probability of each sample).
        correct: N bools, whether each top label is the sample's label.
        bins: number of equal-width bins of the top-label probability over [0, 1].
    """
    conf, correct = top_prob.double(), correct.double()
    edges = torch.linspace(0, 1, bins + 1, dtype=torch.float64)
    which = torch.bucketize(conf, edges[1:-1], right=False)  # bucket b holds (e_b, e_{b+1}]
    n = conf.numel()
    ece = torch.zeros((), dtype=torch.float64)
    for b in range(bins):
        mask = which == b
        if mask.any():
            ece += mask.sum().double() / n * (correct[mask].mean() - conf[mask].mean()).abs()
    return float(ece)


def reliability_bins(
    top_prob: torch.Tensor, correct: torch.Tensor, bins: int = 15
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The reliability diagram behind [`calibration_error`][] (the same ``bins`` equal-width
    bins of the top-label probability): per bin, the mean top-label probability, the accuracy
    and the number of samples (mean and accuracy NaN in an empty bin). With no calibration
    error, accuracy equals the mean probability in every bin; ECE is the count-weighted mean
    gap.

    Args:
        top_prob: N top-label probabilities (the largest class probability of each sample).
        correct: N bools, whether each top label is the sample's label.
        bins: number of equal-width bins of the top-label probability over [0, 1].
    """
    conf, ok = top_prob.double().flatten(), correct.double().flatten()
    edges = torch.linspace(0, 1, bins + 1, dtype=torch.float64)
    which = torch.bucketize(conf, edges[1:-1], right=False)
    count = torch.zeros(bins, dtype=torch.float64).index_add_(0, which, torch.ones_like(conf))
    total_conf = torch.zeros(bins, dtype=torch.float64).index_add_(0, which, conf)
    total_ok = torch.zeros(bins, dtype=torch.float64).index_add_(0, which, ok)
    empty = count == 0
    nan = torch.full_like(count, float("nan"))
    mean_conf = torch.where(empty, nan, total_conf / count.clamp_min(1))
    accuracy = torch.where(empty, nan, total_ok / count.clamp_min(1))
    return mean_conf, accuracy, count


def nll_from_target_probability(p_target: torch.Tensor) -> float:
    """Mean of -log p(target) in nats (probabilities clamped at 1e-12).

    Args:
        p_target: N probabilities of each sample's label.
    """
    return float(-torch.log(p_target.double().clamp_min(1e-12)).mean())


def brier_from_statistics(sum_sq: torch.Tensor, p_target: torch.Tensor) -> float:
    """Brier score sum_c (p_c - 1[c = target])^2 = sum_c p_c^2 - 2 p_target + 1, averaged.

    Args:
        sum_sq: N sums of squared class probabilities ([`squared_norm`][]).
        p_target: N probabilities of each sample's label ([`target_probability`][]).
    """
    return float((sum_sq - 2 * p_target + 1).mean())


def expected_calibration_error(probs: torch.Tensor, targets: torch.Tensor, bins: int = 15) -> float:
    """ECE with ``bins`` equal-width bins of the top-label probability (see above).

    Args:
        probs: N x C class probabilities (rows sum to 1).
        targets: N class indices (int64), the labels.
        bins: number of equal-width bins of the top-label probability over [0, 1].
    """
    return calibration_error(*top_label(probs, targets), bins)


def negative_log_likelihood(probs: torch.Tensor, targets: torch.Tensor) -> float:
    """Mean of -log p(target) in nats.

    Args:
        probs: N x C class probabilities (rows sum to 1).
        targets: N class indices (int64), the labels.
    """
    return nll_from_target_probability(target_probability(probs, targets))


def brier_score(probs: torch.Tensor, targets: torch.Tensor) -> float:
    """Mean over samples of sum_c (p_c - 1[c = target])^2 (in [0, 2]); no N x C one-hot.

    Args:
        probs: N x C class probabilities (rows sum to 1).
        targets: N class indices (int64), the labels.
    """
    return brier_from_statistics(squared_norm(probs), target_probability(probs, targets))


def accuracy(probs: torch.Tensor, targets: torch.Tensor) -> float:
    """Fraction of samples whose arg-max class equals the target.

    Args:
        probs: N x C class probabilities (rows sum to 1).
        targets: N class indices (int64), the labels.
    """
    return float((probs.argmax(dim=-1) == targets).double().mean())


def calibration_bin_gaps(top_prob: torch.Tensor, correct: torch.Tensor, bins: int = 15):
    """N x bins: sample i's correct_i - top_prob_i in the column of its bin of the top-label
    probability (equal-width bins over [0, 1], as [`calibration_error`][]), 0 elsewhere; the
    weighted form of ECE sums counts times these columns.

    Args:
        top_prob: N top-label probabilities.
        correct: N bools.
        bins: number of equal-width bins.

    Returns:
        N x bins float64.
    """
    conf = top_prob.double().flatten()
    edges = torch.linspace(0, 1, bins + 1, dtype=torch.float64)
    which = torch.bucketize(conf, edges[1:-1], right=False)
    per_bin = torch.zeros(conf.numel(), bins, dtype=torch.float64)
    per_bin[torch.arange(conf.numel()), which] = correct.double().flatten() - conf
    return per_bin


def weighted_calibration_error(
    top_prob: torch.Tensor, correct: torch.Tensor, weights: torch.Tensor, bins: int = 15
) -> torch.Tensor:
    """[`calibration_error`][] of B resamples at once, with its bins: sum over bins b of
    |sum_{i in b} W_i (correct_i - conf_i)| / sum_i W_i.

    Args:
        top_prob: N top-label probabilities.
        correct: N bools, whether each top label is right.
        weights: B x N float64 counts W[b, i] (how often sample i is in resample b).
        bins: number of equal-width bins of the top-label probability over [0, 1].

    Returns:
        B ECE values (fractions, float64).
    """
    return (weights @ calibration_bin_gaps(top_prob, correct, bins)).abs().sum(1) / weights.sum(1)
