"""The reference code's definitions (``--definitions paper``), to compare with the paper.

They differ from the standard ones (``window_cascades.uncertainty.selective``) as follows:

- curves have one point per sample (k = 1..N most confident accepted), not per distinct score;
- tau for ``cov@r`` is the threshold of the point whose risk is closest to r, searched only
  among points k > [`SKIP_POINTS`][] (the first points are skipped as unstable), and ``cov@r``
  reports that point's coverage;
- tau for ``risk@c`` is the threshold of the point whose coverage is closest to c, and
  ``risk@c`` reports that point's risk;
- tau for ``fpr@p`` is the p-th quantile of ID confidences from the top (linear
  interpolation), and ``fpr@p`` is the fraction of OOD samples with confidence >= tau;
- AURC is the trapezoid over the per-sample curve with (coverage 0, risk 0) prepended;
- the window centre q is the percentile rank of tau among held-out scores (mean of the strict
  and weak ranks), and the bounds are linear-interpolated quantiles at clamp(q -+ w, 0, 1); a
  sample passes when lower <= score <= upper.
"""

from __future__ import annotations

import torch

from window_cascades.uncertainty.selective import UnreachableTargetError

SKIP_POINTS = 500
"""The `paper` definitions skip this many first (most confident) curve points as unstable
when they pick the threshold of a cov@r target."""


def per_sample_curve(
    confidence: torch.Tensor, correct: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(coverage k/N, risk, threshold) for k = 1..N, most confident first (stable order).

    Args:
        confidence: N confidence scores (higher is more confident).
        correct: N bools, whether each prediction is correct.
    """
    conf = confidence.detach().double().flatten()
    order = torch.argsort(conf, descending=True, stable=True)
    errors = (~correct.flatten().bool())[order].double()
    k = torch.arange(1, conf.numel() + 1, dtype=torch.float64)
    return k / conf.numel(), torch.cumsum(errors, 0) / k, conf[order]


def paper_aurc(confidence: torch.Tensor, correct: torch.Tensor) -> float:
    """Trapezoid over the per-sample curve with (0, 0) prepended.

    Args:
        confidence: N confidence scores (higher is more confident).
        correct: N bools, whether each prediction is correct.
    """
    cov, risk, _ = per_sample_curve(confidence, correct)
    zero = cov.new_zeros(1)
    return float(torch.trapezoid(torch.cat([zero, risk]), torch.cat([zero, cov])))


def paper_coverage_at_risk(
    confidence: torch.Tensor, correct: torch.Tensor, max_risk: float
) -> tuple[float, float]:
    """(coverage, threshold) of the point k > 500 whose risk is closest to ``max_risk``.

    Args:
        confidence: N confidence scores (higher is more confident).
        correct: N bools, whether each prediction is correct.
        max_risk: the selective risk r, a fraction in (0, 1).
    """
    cov, risk, thr = per_sample_curve(confidence, correct)
    if cov.numel() <= SKIP_POINTS:
        raise UnreachableTargetError(
            f"paper definitions skip the first {SKIP_POINTS} curve points; {cov.numel()} "
            f"samples leave none (use more samples or --definitions standard)"
        )
    j = SKIP_POINTS + int(torch.argmin((risk[SKIP_POINTS:] - max_risk).abs()))
    return float(cov[j]), float(thr[j])


def paper_risk_at_coverage(
    confidence: torch.Tensor, correct: torch.Tensor, min_coverage: float
) -> tuple[float, float]:
    """(risk, threshold) of the point whose coverage is closest to ``min_coverage``.

    Args:
        confidence: N confidence scores (higher is more confident).
        correct: N bools, whether each prediction is correct.
        min_coverage: the coverage c, a fraction in (0, 1].
    """
    cov, risk, thr = per_sample_curve(confidence, correct)
    j = int(torch.argmin((cov - min_coverage).abs()))
    return float(risk[j]), float(thr[j])


def paper_fpr_threshold(id_conf: torch.Tensor, tpr: float) -> float:
    """The ``tpr``-th quantile of ID confidences from the top: Q_ID(1 - tpr), linear.

    Args:
        id_conf: N_id confidences of the in-distribution samples.
        tpr: the fraction of ID samples to accept, in (0, 1].
    """
    return float(torch.quantile(id_conf.double().flatten(), 1 - tpr))


def paper_percentile_rank(confidence: torch.Tensor, tau: float) -> float:
    """Mean of the strict and weak ranks of tau among ``confidence``, as a fraction.

    Args:
        confidence: N held-out stage-1 confidences.
        tau: the operating threshold on the same scale.
    """
    conf = confidence.double().flatten()
    return float(((conf < tau).double().mean() + (conf <= tau).double().mean()) / 2)


def paper_window(confidence: torch.Tensor, tau: float, width: float) -> dict:
    """q and the clamped linear-quantile bounds of the reference code's window.

    Args:
        confidence: N held-out stage-1 confidences.
        tau: the operating threshold on the same scale.
        width: the window's half-width w in quantiles, in (0, 0.5].
    """
    conf = confidence.double().flatten()
    q = paper_percentile_rank(conf, tau)
    lower = float(torch.quantile(conf, min(max(q - width, 0.0), 1.0)))
    upper = float(torch.quantile(conf, min(max(q + width, 0.0), 1.0)))
    return {"q": q, "lower": lower, "upper": upper}
