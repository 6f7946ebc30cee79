"""The two sets of metric and window definitions: ``standard`` (default) and ``paper``.

``standard`` follows docs/concepts/method.md (tie-aware curves; see
``window_cascades.uncertainty.selective``); ``paper`` reproduces the reference code's choices (see
``window_cascades.uncertainty.paper_definitions``). Everything that depends on the choice goes
through a [`Definitions`][] object, so the window rule and the metrics always agree.

Standard window: q = F(tau), the empirical CDF of held-out scores at tau; the window is the
band of quantile width 2w centred on q, shifted to stay inside [0, 1]: [q - w, q + w], or
[0, 2w] when q < w, or [1 - 2w, 1] when q > 1 - w. Bounds are linear-interpolated quantiles,
and an end at quantile 0 or 1 is open (-inf / +inf). So about 2w of ID samples are always
passed on (cost about 1 + 2w members for M = 2), w = 0.5 is the full ensemble and w -> 0 the
single model.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from window_cascades.uncertainty import paper_definitions as paper
from window_cascades.uncertainty.names import DEFINITION_NAMES  # noqa: E402, F401  (re-exported)
from window_cascades.uncertainty.ood_detection import fpr_at_threshold, id_acceptance_threshold
from window_cascades.uncertainty.selective import (
    UnreachableTargetError,
    aurc,
    coverage_at_risk,
    risk_at_coverage,
)


def window_clamp(q: float, width: float) -> str | None:
    """Which end of [0, 1] the band [q - w, q + w] around tau's held-out quantile q crosses:
    ``"low"`` (q < w: the standard window becomes the least confident 2w of held-out scores,
    the samples a single threshold at pass fraction 2w passes on; the paper's is cut to
    [0, q + w]), ``"high"`` (q > 1 - w: the most confident 2w, or [q - w, 1]), or None (the
    band lies inside and is centred on tau).

    Args:
        q: tau's quantile among the held-out scores, in [0, 1].
        width: the window's half-width w, in (0, 0.5].

    Returns:
        ``"low"``, ``"high"`` or None.
    """
    if q - width < 0:
        return "low"
    if q + width > 1:
        return "high"
    return None


def standard_window(confidence: torch.Tensor, tau: float, width: float) -> dict:
    """q, and the shifted band of quantile width 2w around it (see module docstring).

    Args:
        confidence: N held-out stage-1 confidences.
        tau: the operating threshold on the same scale.
        width: the window's half-width w in quantiles, in (0, 0.5].
    """
    conf = confidence.double().flatten()
    q = float((conf <= tau).double().mean())
    lo_q, hi_q = q - width, q + width
    clamp = window_clamp(q, width)
    if clamp == "low":
        lo_q, hi_q = 0.0, 2 * width
    elif clamp == "high":
        lo_q, hi_q = 1 - 2 * width, 1.0
    lower = float("-inf") if lo_q <= 0 else float(torch.quantile(conf, lo_q))
    upper = float("inf") if hi_q >= 1 else float(torch.quantile(conf, hi_q))
    return {"q": q, "lower": lower, "upper": upper}


@dataclass(frozen=True)
class Definitions:
    """One consistent set of definitions.

    Attributes:
        name: ``standard`` or ``paper``.
        aurc: (confidence, correct) -> AURC.
        coverage_at_risk: (confidence, correct, r) -> (coverage, threshold).
        risk_at_coverage: (confidence, correct, c) -> (risk, threshold).
        fpr_threshold: (ID confidence, p) -> threshold accepting a fraction p of ID.
        window: (held-out confidence, tau, w) -> {q, lower, upper}.
    """

    name: str
    aurc: Callable
    coverage_at_risk: Callable
    risk_at_coverage: Callable
    fpr_threshold: Callable
    window: Callable

    def fpr(self, id_conf: torch.Tensor, ood_conf: torch.Tensor, tpr: float) -> float:
        """Fraction of OOD samples accepted at the threshold accepting ``tpr`` of ID.

        Args:
            id_conf: N_id confidences of the in-distribution samples.
            ood_conf: N_ood confidences of the OOD samples.
            tpr: the fraction of ID samples to accept, in (0, 1].
        """
        if ood_conf.numel() == 0:
            raise ValueError("fpr needs at least one OOD sample")
        return fpr_at_threshold(ood_conf, self.fpr_threshold(id_conf, tpr))

    def coverage_at_risk_or_zero(
        self, confidence: torch.Tensor, correct: torch.Tensor, max_risk: float
    ) -> float:
        """cov@r as reported: the coverage, or 0 when no coverage keeps the risk that low.

        Args:
            confidence: N confidence scores (higher is more confident).
            correct: N bools, whether each prediction is correct.
            max_risk: the selective risk r, a fraction in (0, 1).
        """
        try:
            return self.coverage_at_risk(confidence, correct, max_risk)[0]
        except UnreachableTargetError:
            return 0.0


DEFINITIONS: dict[str, Definitions] = {
    "standard": Definitions(
        "standard",
        aurc,
        coverage_at_risk,
        risk_at_coverage,
        id_acceptance_threshold,
        standard_window,
    ),
    "paper": Definitions(
        "paper",
        paper.paper_aurc,
        paper.paper_coverage_at_risk,
        paper.paper_risk_at_coverage,
        paper.paper_fpr_threshold,
        paper.paper_window,
    ),
}


def get_definitions(name: str | Definitions) -> Definitions:
    """The named definitions (``standard`` or ``paper``), with a clear error otherwise.

    Args:
        name: ``standard`` or ``paper``, or a ``Definitions`` object (returned as it is).
    """
    if isinstance(name, Definitions):
        return name
    if name not in DEFINITIONS:
        raise ValueError(f"unknown definitions {name!r}; expected one of {list(DEFINITIONS)}")
    return DEFINITIONS[name]
