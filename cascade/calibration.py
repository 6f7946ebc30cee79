"""Fitting cascade policies on a held-out split (the paper's window rule and baselines).

Window rule for stage k, on held-out confidences s (of the ensemble of the first k + 1
members) and their correctness:

1. tau = the threshold of the target task (``cov@r``, ``risk@c`` or ``fpr@p``) on (s, correct);
2. q = the position of tau among the held-out scores, and the window = a band of quantiles of
   s of width 2w around q (``standard`` and ``paper`` definitions differ in the details, see
   ``uncertainty.definitions``).

``window_adjusted`` keeps tau but derives q and the window from the scores of an unlabelled
test mixture (ID + OOD), for deployment under distribution shift. ``single_threshold`` passes
the ``pass_fraction`` least confident held-out samples; ``random`` passes a random
``random_fraction`` (default 2w, the window's expected share).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from cascade.policies import (
    CascadePolicy,
    IntervalPolicy,
    RandomPolicy,
    check_policies,
    ensemble_policy,
    single_policy,
)
from uncertainty.definitions import get_definitions
from uncertainty.selective import UnreachableTargetError
from uncertainty.targets import Target, parse_target, target_threshold


def check_width(width: float) -> float:
    """Validate a window half-width w in (0, 0.5]."""
    if not (isinstance(width, (int, float)) and 0 < width <= 0.5):
        raise ValueError(f"window width w must be in (0, 0.5], got {width!r}")
    return float(width)


def check_fraction(fraction: float, what: str) -> float:
    """Validate a pass fraction in (0, 1)."""
    if not (isinstance(fraction, (int, float)) and 0 < fraction < 1):
        raise ValueError(f"{what} must be in (0, 1), got {fraction!r}")
    return float(fraction)


@dataclass
class PolicySettings:
    """How the policies are fitted.

    Attributes:
        target: operating target of the window, e.g. ``cov@5``, ``risk@80``, ``fpr@95``.
        width: window half-width w in quantiles, in (0, 0.5].
        pass_fraction: fraction of least confident samples ``single_threshold`` passes on.
        random_fraction: fraction ``random`` passes on (None: 2w).
        seed: seed of the random policy.
        definitions: ``standard`` or ``paper``.
    """

    target: str = "cov@5"
    width: float = 0.1
    pass_fraction: float = 0.2
    random_fraction: float | None = None
    seed: int = 0
    definitions: str = "standard"

    def __post_init__(self):
        parse_target(self.target)
        check_width(self.width)
        check_fraction(self.pass_fraction, "single_threshold pass fraction")
        if self.random_fraction is not None:
            check_fraction(self.random_fraction, "random pass fraction")
        get_definitions(self.definitions)


def _check_scores(confidence: torch.Tensor, what: str) -> torch.Tensor:
    if confidence.numel() == 0:
        raise ValueError(f"{what}: the held-out split is empty; the policies cannot be fitted")
    if not torch.isfinite(confidence).all():
        raise ValueError(f"{what}: confidences contain NaN or Inf")
    return confidence.double().flatten()


def fit_window_stage(
    confidence: torch.Tensor,
    correct: torch.Tensor,
    target: Target,
    width: float,
    definitions="standard",
    window_scores: torch.Tensor | None = None,
) -> dict:
    """Fit one stage's window: tau on (confidence, correct), the band on ``window_scores``.

    Returns:
        {tau, q, lower, upper}; lower/upper are None for an open end.
    """
    defs = get_definitions(definitions)
    conf = _check_scores(confidence, "window calibration")
    tau = target_threshold(conf, correct, target, defs)
    band_scores = conf if window_scores is None else _check_scores(window_scores, "test mixture")
    band = defs.window(band_scores, tau, width)
    open_end = {"lower": -math.inf, "upper": math.inf}
    return {
        "tau": tau,
        "q": band["q"],
        **{k: None if band[k] == open_end[k] else band[k] for k in ("lower", "upper")},
    }


def _bounds_of(stages: list[dict]) -> torch.Tensor:
    rows = [
        [
            -math.inf if s["lower"] is None else s["lower"],
            math.inf if s["upper"] is None else s["upper"],
        ]
        for s in stages
    ]
    return torch.tensor(rows, dtype=torch.float64).reshape(len(stages), 2)


def fit_policies(
    names: list[str],
    stage_confidence: list[torch.Tensor],
    stage_correct: list[torch.Tensor],
    settings: PolicySettings | None = None,
    mixture_confidence: list[torch.Tensor] | None = None,
    heldout_name: str = "heldout",
) -> dict[str, CascadePolicy]:
    """Fit every named policy for a cascade of ``len(stage_confidence) + 1`` members.

    Args:
        names: policy names (see :data:`cascade.policies.POLICIES`).
        stage_confidence: for k = 0..M-2, held-out confidences of the ensemble of the first
            k + 1 members (N each).
        stage_correct: matching correctness of that ensemble's prediction (N each, bool).
        settings: target, width, fractions, seed and definitions.
        mixture_confidence: per stage, confidences on the unlabelled test mixture (needed by
            ``window_adjusted`` only).
        heldout_name: name of the held-out dataset, used in error messages.
    """
    check_policies(names)
    settings = settings or PolicySettings()
    target = parse_target(settings.target)
    m = len(stage_confidence) + 1
    for c in stage_confidence:
        _check_scores(c, f"held-out split {heldout_name!r}")
    policies: dict[str, CascadePolicy] = {}
    for name in names:
        if name == "single":
            policies[name] = single_policy(m)
        elif name == "ensemble":
            policies[name] = ensemble_policy(m)
        elif name == "random":
            fraction = settings.random_fraction or 2 * settings.width
            policies[name] = RandomPolicy(m, min(fraction, 1.0), settings.seed)
        elif name == "single_threshold":
            stages = [
                {"lower": None, "upper": float(torch.quantile(c.double(), settings.pass_fraction))}
                for c in stage_confidence
            ]
            policies[name] = IntervalPolicy(
                name, _bounds_of(stages), f"pass={settings.pass_fraction:g}", stages
            )
        else:
            if name == "window_adjusted" and mixture_confidence is None:
                raise ValueError("window_adjusted needs the scores of an unlabelled test mixture")
            stages = []
            for k, conf in enumerate(stage_confidence):
                # the paper's code finds tau with stage-1 correctness at every stage
                correct = stage_correct[0 if settings.definitions == "paper" else k]
                band = None if name == "window" else mixture_confidence[k]
                try:
                    stage = fit_window_stage(
                        conf, correct, target, settings.width, settings.definitions, band
                    )
                except UnreachableTargetError as err:
                    raise UnreachableTargetError(
                        f"window target {target.name} on held-out split {heldout_name!r} "
                        f"(stage {k + 1}): {err}"
                    ) from None
                stages.append({**stage, "target": target.name, "width": settings.width})
            setting = f"{target.name},w={settings.width:g}"
            if settings.definitions != "standard":
                setting += f",{settings.definitions}"
            policies[name] = IntervalPolicy(name, _bounds_of(stages), setting, stages)
    return policies
