"""Fitting cascade policies on a held-out split (the paper's window rule).

Window rule for stage k, on held-out confidences s (of the ensemble of the first k + 1
members) and their correctness:

1. tau = the threshold of the target task (``cov@r``, ``risk@c`` or ``fpr@p``) on (s, correct);
2. q = F(tau), the empirical CDF of s at tau (fraction of held-out scores <= tau);
3. window = [Q(q - w), Q(q + w)] with Q the linear-interpolated quantile function of s; where
   q - w <= 0 (q + w >= 1) the lower (upper) end is open, so that a window reaching the end of
   the held-out range also covers test scores beyond it.

About 2w of in-distribution samples fall in the window, so the expected cost is about
(1 + 2w) member-costs for M = 2.
"""

from __future__ import annotations

import math

import torch

from cascade.policies import IntervalPolicy, check_policies, ensemble_policy, single_policy
from uncertainty.selective import UnreachableTargetError
from uncertainty.targets import Target, parse_target, target_threshold


def check_width(width: float) -> float:
    """Validate a window half-width w in (0, 0.5]."""
    if not (isinstance(width, (int, float)) and 0 < width <= 0.5):
        raise ValueError(f"window width w must be in (0, 0.5], got {width!r}")
    return float(width)


def check_pass_fraction(fraction: float) -> float:
    """Validate the single-threshold pass fraction in (0, 1)."""
    if not (isinstance(fraction, (int, float)) and 0 < fraction < 1):
        raise ValueError(f"single_threshold pass fraction must be in (0, 1), got {fraction!r}")
    return float(fraction)


def _check_heldout(confidence: torch.Tensor, what: str) -> torch.Tensor:
    if confidence.numel() == 0:
        raise ValueError(f"{what}: the held-out split is empty; the policies cannot be fitted")
    if not torch.isfinite(confidence).all():
        raise ValueError(f"{what}: held-out confidences contain NaN or Inf")
    return confidence.double().flatten()


def fit_window_stage(
    confidence: torch.Tensor, correct: torch.Tensor, target: Target, width: float
) -> dict:
    """Fit one stage's window; returns tau, q, lower and upper (None for an open end)."""
    conf = _check_heldout(confidence, "window calibration")
    tau = target_threshold(conf, correct, target)
    q = float((conf <= tau).double().mean())
    lo_q, hi_q = q - width, q + width
    lower = None if lo_q <= 0 else float(torch.quantile(conf, lo_q))
    upper = None if hi_q >= 1 else float(torch.quantile(conf, hi_q))
    return {"tau": tau, "q": q, "lower": lower, "upper": upper}


def fit_threshold_stage(confidence: torch.Tensor, pass_fraction: float) -> dict:
    """Single threshold t = Q(pass_fraction): samples with confidence <= t are passed on."""
    conf = _check_heldout(confidence, "single_threshold calibration")
    return {"threshold": float(torch.quantile(conf, pass_fraction))}


def fit_policies(
    names: list[str],
    stage_confidence: list[torch.Tensor],
    stage_correct: list[torch.Tensor],
    target: str = "cov@5",
    width: float = 0.1,
    pass_fraction: float = 0.2,
    heldout_name: str = "heldout",
) -> dict[str, IntervalPolicy]:
    """Fit every named policy for a cascade of ``len(stage_confidence) + 1`` members.

    Args:
        names: policy names (see :data:`cascade.policies.POLICIES`).
        stage_confidence: for k = 0..M-2, held-out confidences of the ensemble of the first
            k + 1 members (N each).
        stage_correct: matching correctness of that ensemble's prediction (N each, bool).
        target: operating target of the window, e.g. ``cov@5``, ``risk@80``, ``fpr@95``.
        width: window half-width w in quantiles, in (0, 0.5].
        pass_fraction: fraction of least confident held-out samples the single-threshold
            policy passes on.
        heldout_name: name of the held-out dataset, used in error messages.
    """
    check_policies(names)
    parsed = parse_target(target)
    width = check_width(width)
    pass_fraction = check_pass_fraction(pass_fraction)
    m = len(stage_confidence) + 1
    policies: dict[str, IntervalPolicy] = {}
    for name in names:
        if name == "single":
            policies[name] = single_policy(m)
        elif name == "ensemble":
            policies[name] = ensemble_policy(m)
        elif name == "single_threshold":
            stages = [fit_threshold_stage(c, pass_fraction) for c in stage_confidence]
            bounds = [[-math.inf, s["threshold"]] for s in stages]
            policies[name] = IntervalPolicy(
                name, _bounds(bounds, m), f"pass={pass_fraction:g}", stages
            )
        else:
            stages = []
            for k, (c, ok) in enumerate(zip(stage_confidence, stage_correct, strict=True)):
                try:
                    stages.append(fit_window_stage(c, ok, parsed, width))
                except UnreachableTargetError as err:
                    raise UnreachableTargetError(
                        f"window target {parsed.name} on held-out split {heldout_name!r} "
                        f"(stage {k + 1}): {err}"
                    ) from None
            bounds = [
                [
                    -math.inf if s["lower"] is None else s["lower"],
                    math.inf if s["upper"] is None else s["upper"],
                ]
                for s in stages
            ]
            for s in stages:
                s.update(target=parsed.name, width=width)
            policies[name] = IntervalPolicy(
                name, _bounds(bounds, m), f"{parsed.name},w={width:g}", stages
            )
    return policies


def _bounds(rows: list[list[float]], m: int) -> torch.Tensor:
    return torch.tensor(rows, dtype=torch.float64).reshape(m - 1, 2)
