"""Selective classification: tie-aware risk-coverage curves and their summaries.

A selective classifier accepts the samples whose confidence is >= a threshold t. With N
samples, coverage(t) = |{conf >= t}| / N and selective risk(t) = errors among the accepted /
number accepted. Curves are tie-aware: there is one point per distinct confidence value, at the
coverage reached when every sample with that confidence is accepted, so the result does not
depend on the order of tied samples.

The weighted forms (B bootstrap resamples at once) are the methods of
[`window_cascades.uncertainty.weighted_curve.CountCurve`][] and [`weighted_oracle_aurc`][]
below.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


class UnreachableTargetError(ValueError):
    """Raised when no threshold reaches the requested selective risk."""


@dataclass(frozen=True)
class RiskCoverageCurve:
    """Points of a tie-aware risk-coverage curve, ordered by increasing coverage.

    Attributes:
        coverage: fraction of samples accepted at each point, in (0, 1].
        risk: selective risk (error fraction among accepted samples) at each point.
        threshold: the confidence threshold of each point (accept confidence >= threshold).
        count: number of samples accepted at each point.
    """

    coverage: torch.Tensor
    risk: torch.Tensor
    threshold: torch.Tensor
    count: torch.Tensor


def risk_coverage_curve(confidence: torch.Tensor, correct: torch.Tensor) -> RiskCoverageCurve:
    """Tie-aware risk-coverage curve of ``confidence`` (N) against ``correct`` (N, bool).

    Args:
        confidence: N confidence scores of the predictions (higher is more confident).
        correct: N bools, whether each prediction is correct.
    """
    if confidence.numel() == 0:
        raise ValueError("risk_coverage_curve needs at least one sample")
    conf = confidence.detach().double().flatten()
    order = torch.argsort(conf, descending=True, stable=True)
    conf_sorted = conf[order]
    errors = (~correct.flatten().bool())[order].double()
    cum_errors = torch.cumsum(errors, dim=0)
    # last index of every group of equal confidence
    last = torch.ones_like(conf_sorted, dtype=torch.bool)
    last[:-1] = conf_sorted[1:] != conf_sorted[:-1]
    idx = torch.nonzero(last).flatten()
    count = idx + 1
    n = conf.numel()
    return RiskCoverageCurve(
        coverage=count.double() / n,
        risk=cum_errors[idx] / count.double(),
        threshold=conf_sorted[idx],
        count=count,
    )


def aurc(confidence: torch.Tensor, correct: torch.Tensor) -> float:
    """Area under the risk-coverage curve.

    Trapezoid rule over the tie-aware points, with the curve extended flat from its first point
    down to coverage 0 so that AURC is the integral over the whole of [0, 1] (a constant score
    gives AURC = overall error rate).

    Args:
        confidence: N confidence scores of the predictions (higher is more confident).
        correct: N bools, whether each prediction is correct.
    """
    curve = risk_coverage_curve(confidence, correct)
    cov = torch.cat([curve.coverage.new_zeros(1), curve.coverage])
    risk = torch.cat([curve.risk[:1], curve.risk])
    return float(torch.trapezoid(risk, cov))


def generalized_risk_area(confidence: torch.Tensor, loss: torch.Tensor) -> float:
    """Area under the tie-aware generalized risk-coverage curve of per-sample ``loss``.

    The generalized risk at a threshold is the summed loss of the accepted samples divided by
    *all* N samples (Traub et al., NeurIPS 2024); it is 0 at coverage 0 and the mean loss at
    coverage 1. Points at the distinct confidence values, joined linearly (the expected curve
    when tied samples are accepted in random order), from (0, 0).

    Args:
        confidence: N confidence scores of the predictions (higher is more confident).
        loss: N non-negative losses, one per sample (1 for a misclassified sample in AUGRC).
    """
    if confidence.numel() == 0:
        raise ValueError("generalized_risk_area needs at least one sample")
    conf = confidence.detach().double().flatten()
    order = torch.argsort(conf, descending=True, stable=True)
    conf_sorted = conf[order]
    cum_loss = torch.cumsum(loss.flatten().double()[order], dim=0)
    last = torch.ones_like(conf_sorted, dtype=torch.bool)
    last[:-1] = conf_sorted[1:] != conf_sorted[:-1]
    idx = torch.nonzero(last).flatten()
    n = conf.numel()
    cov = torch.cat([conf.new_zeros(1), (idx + 1).double() / n])
    grisk = torch.cat([conf.new_zeros(1), cum_loss[idx] / n])
    return float(torch.trapezoid(grisk, cov))


def augrc(confidence: torch.Tensor, correct: torch.Tensor) -> float:
    """AUGRC: area under the generalized risk-coverage curve, where the generalized risk at
    coverage c is the fraction of all samples that are accepted and misclassified (Traub et
    al., NeurIPS 2024). Tie-aware; 0 for a perfect classifier, error_rate / 2 for a constant
    score.

    Args:
        confidence: N confidence scores of the predictions (higher is more confident).
        correct: N bools, whether each prediction is correct.
    """
    return generalized_risk_area(confidence, ~correct.flatten().bool())


def oracle_confidence(correct: torch.Tensor) -> torch.Tensor:
    """Distinct confidences that rank every correct sample above every error (the oracle).

    Args:
        correct: N bools, whether each prediction is correct.
    """
    correct = correct.flatten().bool()
    rank = torch.arange(correct.numel(), dtype=torch.float64)
    return rank + correct.double() * correct.numel()


def excess_aurc(confidence: torch.Tensor, correct: torch.Tensor, aurc_fn=None) -> float:
    """e-AURC: AURC minus the AURC of the oracle ranking with the same errors (Geifman et al.,
    ICLR 2019); 0 for a perfect ranking. ``aurc_fn``: the AURC to use (default [`aurc`][]).

    Args:
        confidence: N confidence scores of the predictions (higher is more confident).
        correct: N bools, whether each prediction is correct.
        aurc_fn: the AURC to use, ``(confidence, correct) -> float``; None: [`aurc`][] (the `paper`
            definitions pass theirs).
    """
    aurc_fn = aurc_fn or aurc
    return aurc_fn(confidence, correct) - aurc_fn(oracle_confidence(correct), correct)


def coverage_at_risk(
    confidence: torch.Tensor, correct: torch.Tensor, max_risk: float
) -> tuple[float, float]:
    """cov@r: the largest coverage whose selective risk is <= ``max_risk``.

    Args:
        confidence: N confidence scores of the predictions (higher is more confident).
        correct: N bools, whether each prediction is correct.
        max_risk: the selective risk r, a fraction in (0, 1) (0.05 for cov@5).

    Returns:
        (coverage, threshold): the coverage and the confidence threshold that achieves it.

    Raises:
        UnreachableTargetError: when every point's risk exceeds ``max_risk``; the message gives
            the lowest reachable risk.
    """
    curve = risk_coverage_curve(confidence, correct)
    ok = curve.risk <= max_risk + 1e-12
    if not bool(ok.any()):
        best = int(torch.argmin(curve.risk))
        raise UnreachableTargetError(
            f"no threshold reaches selective risk <= {max_risk:g}; the lowest reachable risk is "
            f"{float(curve.risk[best]):.4f} (at coverage {float(curve.coverage[best]):.4f})"
        )
    j = int(torch.nonzero(ok).flatten()[-1])
    return float(curve.coverage[j]), float(curve.threshold[j])


def risk_at_coverage(
    confidence: torch.Tensor, correct: torch.Tensor, min_coverage: float
) -> tuple[float, float]:
    """risk@c: the risk at the first curve point (most confident first) with coverage >= c.

    Args:
        confidence: N confidence scores of the predictions (higher is more confident).
        correct: N bools, whether each prediction is correct.
        min_coverage: the coverage c, a fraction in (0, 1] (0.8 for risk@80).

    Returns:
        (risk, threshold): that point's selective risk and confidence threshold.
    """
    curve = risk_coverage_curve(confidence, correct)
    j = int(torch.nonzero(curve.coverage >= min_coverage - 1e-12).flatten()[0])
    return float(curve.risk[j]), float(curve.threshold[j])


EULER_GAMMA = 0.5772156649015329


def oracle_aurc_from_counts(count: torch.Tensor, correct: torch.Tensor) -> torch.Tensor:
    """AURC of the oracle ranking (every correct sample first, all distinct) of samples of
    ``count`` predictions of which ``correct`` are correct, in closed form.

    The per-sample curve has risk max(0, k - K) / k at coverage k / n (k = 1..n; n = count,
    K = correct), extended flat to coverage 0, so its trapezoid area is
    (S + [K = 0] / 2 - (n - K) / (2 n)) / n with S = sum_k risk_k = (n - K) - K (H_n - H_K),
    H the harmonic numbers (H_x = digamma(x + 1) + Euler's gamma): O(1) per resample instead of
    an n-point curve.

    Args:
        count: B sample counts n (float64, > 0).
        correct: B counts K of correct samples.

    Returns:
        B AURC values (float64).
    """
    n, good = count.double(), correct.double()
    harmonic = torch.special.digamma(n + 1) - torch.special.digamma(good + 1)
    total_risk = torch.where(good < n, (n - good) - good * harmonic, torch.zeros_like(n))
    first = (good == 0).double() / 2  # the flat extension: risk 1 from coverage 0 when K = 0
    return (total_risk + first - (n - good) / (2 * n)) / n


def weighted_oracle_aurc(correct: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """AURC of the oracle ranking (every correct sample first, all distinct) of B resamples.

    With n = sum_i W[b, i] samples of which C_b correct, the per-sample curve has risk
    max(0, k - C_b) / k at coverage k / n (k = 1..n), extended flat to 0: the AURC of
    [`oracle_confidence`][] on each resample ([`oracle_aurc_from_counts`][]).

    Args:
        correct: N bools, whether each sample's prediction is correct.
        weights: B x N float64 counts W[b, i] (how often sample i is in resample b).

    Returns:
        B AURC values (float64).
    """
    return oracle_aurc_from_counts(weights.sum(1), weights @ correct.double().flatten())
