"""The built-in cascade policies, each one fit function plus one registry entry.

Window rule for stage k (1..M-1), on held-out confidences s (of the ensemble of the first k
members) and their correctness:

1. tau = the threshold of the target task (``cov@r``, ``risk@c`` or ``fpr@p``) on (s, correct);
2. q = the position of tau among the held-out scores, and the window = a band of quantiles of
   s of width 2w around q (``standard`` and ``paper`` definitions differ in the details, see
   ``window_cascades.uncertainty.definitions``).

``window_adjusted`` keeps tau but derives q and the window from the scores of an unlabelled
test mixture (ID + OOD), for deployment under distribution shift. ``single_threshold`` passes
the ``pass_fraction`` least confident held-out samples; ``random`` passes a random
``random_fraction`` (default 2w, the window's expected share).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from window_cascades.cascade.policies import (
    IntervalPolicy,
    RandomPolicy,
    ensemble_policy,
    single_policy,
)
from window_cascades.cascade.policy_parameters import CostGrid, PolicyParameter, parameter
from window_cascades.cascade.policy_registry import (
    COST_MATCHED,
    FIRST_MEMBER,
    FULL_ENSEMBLE,
    FitInputs,
    PolicySettings,
    check_scores,
    register_policy,
)
from window_cascades.uncertainty.definitions import get_definitions
from window_cascades.uncertainty.guarantees import GuaranteeError, certified_threshold
from window_cascades.uncertainty.selective import UnreachableTargetError
from window_cascades.uncertainty.targets import Target, parse_target, target_threshold


def check_width(width: float) -> float:
    """Validate a window half-width w in (0, 0.5].

    Args:
        width: The half-width w, in held-out quantiles.

    Returns:
        ``width`` as a float.

    Raises:
        ValueError: ``width`` is not a number in (0, 0.5].
    """
    if isinstance(width, bool) or not (isinstance(width, (int, float)) and 0 < width <= 0.5):
        raise ValueError(f"window width w must be in (0, 0.5], got {width!r}")
    return float(width)


def check_fraction(fraction: float, what: str) -> float:
    """Validate a pass fraction in (0, 1).

    Args:
        fraction: The share of samples passed on.
        what: The parameter as the error names it (e.g. ``"random pass fraction"``).

    Returns:
        ``fraction`` as a float.

    Raises:
        ValueError: ``fraction`` is not a number in (0, 1).
    """
    if isinstance(fraction, bool) or not (isinstance(fraction, (int, float)) and 0 < fraction < 1):
        raise ValueError(f"{what} must be in (0, 1), got {fraction!r}")
    return float(fraction)


def width_cost_grid(points: int, ensemble_cost: float) -> list[float]:
    """Cost-to-target's half-widths: 0.5 k / points for k = 1..points (w = 0.5 passes all).

    Args:
        points: How many half-widths.
        ensemble_cost: The full ensemble's cost (unused: the widths do not depend on it).

    Returns:
        The half-widths, increasing.
    """
    return [0.5 * k / points for k in range(1, points + 1)]


def fraction_cost_grid(points: int, ensemble_cost: float) -> list[float]:
    """Cost-to-target's pass fractions: k / (points + 1) for k = 1..points, inside (0, 1).

    Args:
        points: How many fractions.
        ensemble_cost: The full ensemble's cost (unused: the fractions do not depend on it).

    Returns:
        The pass fractions, increasing.
    """
    return [k / (points + 1) for k in range(1, points + 1)]


WIDTH = PolicyParameter(
    "width",
    0.1,
    "window half-width(s) w, in held-out quantiles, in (0, 0.5]",
    check=check_width,
    cost_grid=CostGrid(width_cost_grid),
)


@dataclass(frozen=True)
class WindowParameters:
    """``window`` and ``window_adjusted``: the band's half-width w.

    Args:
        width: The half-width w, in held-out quantiles, in (0, 0.5].
    """

    width: float = WIDTH.field()


@dataclass(frozen=True)
class SingleThresholdParameters:
    """``single_threshold``: the share of held-out samples it passes on.

    Args:
        pass_fraction: The share of least confident held-out samples passed on, in (0, 1).
    """

    pass_fraction: float = parameter(
        "pass_fraction",
        0.2,
        "fraction(s) of least confident held-out samples single_threshold passes on, in (0, 1)",
        check=lambda v: check_fraction(v, "single_threshold pass fraction"),
        cost_grid=CostGrid(fraction_cost_grid),
    )


@dataclass(frozen=True)
class RandomParameters:
    """``random``: the share it passes on (None: twice the window's half-width).

    Args:
        width: The window's half-width w, whose 2w is the default share.
        random_fraction: The share passed on, in (0, 1); None passes 2w.
    """

    width: float = WIDTH.field()
    random_fraction: float | None = parameter(
        "random_fraction",
        None,
        "fraction random passes on, in (0, 1) (default 2w)",
        check=lambda v: check_fraction(v, "random pass fraction"),
    )


def fit_window_stage(
    confidence: torch.Tensor,
    correct: torch.Tensor,
    target: Target,
    width: float,
    definitions="standard",
    window_scores: torch.Tensor | None = None,
    guarantee: float | None = None,
    guarantee_method: str = "ltt",
) -> dict:
    """Fit one stage's window: tau on (confidence, correct), the band on ``window_scores``.

    With ``guarantee`` (DELTA), tau is the certified threshold of
    [`window_cascades.uncertainty.guarantees.certified_threshold`][] and the result adds
    ``certified`` (the certified risk bound, or acceptance bound) and ``guarantee`` ({delta,
    method}).

    Args:
        confidence: The stage's held-out confidences, shape (N,).
        correct: Whether each held-out prediction is correct (bool), shape (N,).
        target: The target task and value whose threshold is tau (e.g. cov@5).
        width: The window's half-width w, in quantiles, in (0, 0.5].
        definitions: The quantile definitions, ``"standard"`` or ``"paper"``.
        window_scores: The scores the band's quantiles are taken on; None takes
            ``confidence`` (``window``), the test mixture's scores give ``window_adjusted``.
        guarantee: The risk level delta of a certified tau; None fits tau without one.
        guarantee_method: The certification method (e.g. ``"ltt"``).

    Returns:
        {tau, q, lower, upper[, certified, guarantee]}; lower/upper are None for an open end.
    """
    defs = get_definitions(definitions)
    conf = check_scores(confidence, "fitting the window")
    certified = None
    if guarantee is None:
        tau = target_threshold(conf, correct, target, defs)
    else:
        certified = certified_threshold(
            conf, correct, target.task, target.value, guarantee, guarantee_method
        )
        tau = certified.threshold
    band_scores = conf if window_scores is None else check_scores(window_scores, "test mixture")
    band = defs.window(band_scores, tau, width)
    open_end = {"lower": -math.inf, "upper": math.inf}
    out = {
        "tau": tau,
        "q": band["q"],
        **{k: None if band[k] == open_end[k] else band[k] for k in ("lower", "upper")},
    }
    if certified is not None:
        out["certified"] = certified.bound
        out["guarantee"] = {"delta": guarantee, "method": certified.method}
    return out


def interval_policy(name: str, stages: list[dict], setting: str) -> IntervalPolicy:
    """An interval policy from per-stage ``{lower, upper, ...}`` (None = open end).

    Args:
        name: The policy's name.
        stages: One dict per stage k = 1..M-1 with ``lower`` and ``upper``: a sample whose
            stage-k confidence lies inside them goes on to member k + 1.
        setting: The setting the results tables show (e.g. ``cov@5,w=0.1``).

    Returns:
        The policy.
    """
    rows = [
        [
            -math.inf if s["lower"] is None else s["lower"],
            math.inf if s["upper"] is None else s["upper"],
        ]
        for s in stages
    ]
    bounds = torch.tensor(rows, dtype=torch.float64).reshape(len(stages), 2)
    return IntervalPolicy(name, bounds, setting, stages)


@register_policy("single", "nothing: member 1 alone (cost 1)", default=True, reference=FIRST_MEMBER)
def fit_single(inputs: FitInputs, settings: PolicySettings) -> IntervalPolicy:
    """Member 1 alone on every sample: nothing to fit.

    Args:
        inputs: The held-out (and, for ``window_adjusted``, test mixture) confidences per stage.
        settings: The target and the policy parameters of the run.

    Returns:
        The policy that passes no sample on.
    """
    return single_policy(inputs.num_stages)


@register_policy(
    "ensemble",
    "everything: every member on every sample (cost M)",
    default=True,
    reference=FULL_ENSEMBLE,
)
def fit_ensemble(inputs: FitInputs, settings: PolicySettings) -> IntervalPolicy:
    """Every member on every sample: nothing to fit.

    Args:
        inputs: The held-out (and, for ``window_adjusted``, test mixture) confidences per stage.
        settings: The target and the policy parameters of the run.

    Returns:
        The policy that passes every sample on.
    """
    return ensemble_policy(inputs.num_stages)


MIN_SAMPLES = 10
"""Held-out samples a window needs beyond its operating point (see [`minimum_heldout`][])."""


def minimum_heldout(target: Target) -> int:
    """The smallest held-out split on which ``target``'s threshold is resolved.

    At least [`MIN_SAMPLES`][] held-out samples must lie beyond the target's operating point:
    errors at risk r for ``cov@r`` (N r >= 10), samples outside coverage c or ID acceptance p
    for ``risk@c`` / ``fpr@p`` (N (1 - c) >= 10). E.g. cov@5 needs 200, risk@80 50, fpr@95 200.

    Args:
        target: The target task and value.

    Returns:
        The number of held-out samples needed.
    """
    rate = target.value if target.task == "cov" else 1 - target.value
    return math.ceil(MIN_SAMPLES / rate - 1e-9) if rate > 0 else 1


def _fit_window(name: str, inputs: FitInputs, settings: PolicySettings) -> IntervalPolicy:
    target = parse_target(settings.target)
    n = inputs.stage_confidence[0].numel() if inputs.stage_confidence else 0
    need = minimum_heldout(target)
    if inputs.stage_confidence and n < need:  # (one member: nothing to fit)
        raise ValueError(
            f"held-out split {inputs.heldout_name!r} has {n} samples; the {name} policy for "
            f"target {target.name} needs at least {need} (so that {MIN_SAMPLES} samples lie "
            "beyond its operating point): hold out more data"
        )
    stages = []
    for k, conf in enumerate(inputs.stage_confidence):
        # the paper's code finds tau with stage-1 correctness at every stage
        correct = inputs.stage_correct[0 if settings.definitions == "paper" else k]
        band = None if name == "window" else inputs.mixture_confidence[k]
        try:
            fitted = fit_window_stage(
                conf,
                correct,
                target,
                settings.width,
                settings.definitions,
                band,
                settings.guarantee,
                settings.guarantee_method,
            )
        except (UnreachableTargetError, GuaranteeError) as err:
            raise type(err)(
                f"window target {target.name} on held-out split {inputs.heldout_name!r} "
                f"(stage {k + 1}): {err}"
            ) from None
        stages.append({**fitted, "target": target.name, "width": settings.width})
    setting = f"{target.name},w={settings.width:g}"
    if settings.definitions != "standard":
        setting += f",{settings.definitions}"
    if settings.guarantee is not None:
        setting += f",{settings.guarantee_method}@{settings.guarantee:g}"
    return interval_policy(name, stages, setting)


@register_policy(
    "window",
    "the paper's window: held-out quantiles [q - w, q + w] around the target's threshold tau",
    parameters=WindowParameters,
    sweep="width",
    default=True,
)
def fit_window(inputs: FitInputs, settings: PolicySettings) -> IntervalPolicy:
    """The window of each stage on its held-out confidences (the module's window rule).

    Args:
        inputs: The held-out (and, for ``window_adjusted``, test mixture) confidences per stage.
        settings: The target and the policy parameters of the run.

    Returns:
        The fitted window per stage.

    Raises:
        ValueError: The held-out split is smaller than [`minimum_heldout`][] asks.
        UnreachableTargetError: No threshold reaches the target on the held-out split.
        GuaranteeError: No threshold is certified at the asked risk level.
    """
    return _fit_window("window", inputs, settings)


@register_policy(
    "window_adjusted",
    "the same tau, with q and the band taken on the unlabelled test mixture (ID + OOD, 1:1)",
    parameters=WindowParameters,
    sweep="width",
    needs_mixture=True,
)
def fit_window_adjusted(inputs: FitInputs, settings: PolicySettings) -> IntervalPolicy:
    """The window's tau from the held-out split, its band from the unlabelled test mixture.

    Args:
        inputs: The held-out (and, for ``window_adjusted``, test mixture) confidences per stage.
        settings: The target and the policy parameters of the run.

    Returns:
        The fitted window per stage.

    Raises:
        ValueError: The held-out split is smaller than [`minimum_heldout`][] asks.
        UnreachableTargetError: No threshold reaches the target on the held-out split.
        GuaranteeError: No threshold is certified at the asked risk level.
    """
    return _fit_window("window_adjusted", inputs, settings)


@register_policy(
    "random",
    "a random `random_fraction` (default 2w) of samples, by a hash of the dataset index",
    parameters=RandomParameters,
    sweep="width",
    in_cost_to_target=False,  # its gain is proportional to its cost by construction
)
def fit_random(inputs: FitInputs, settings: PolicySettings) -> RandomPolicy:
    """A random share of samples passed on at every stage (the baseline for a window's share).

    Args:
        inputs: The held-out (and, for ``window_adjusted``, test mixture) confidences per stage.
        settings: The target and the policy parameters of the run.

    Returns:
        The policy passing ``random_fraction`` (or 2w, at most 1) of samples on.
    """
    fraction = settings.random_fraction or 2 * settings.width
    return RandomPolicy(inputs.num_stages, min(fraction, 1.0), settings.seed)


@register_policy(
    "single_threshold",
    "the least confident `pass_fraction` of held-out scores (exit when confidence > t)",
    parameters=SingleThresholdParameters,
    sweep="pass_fraction",
    default=True,
    reference=COST_MATCHED,
)
def fit_single_threshold(inputs: FitInputs, settings: PolicySettings) -> IntervalPolicy:
    """Pass on every sample below the ``pass_fraction`` quantile of each stage's confidences.

    Args:
        inputs: The held-out (and, for ``window_adjusted``, test mixture) confidences per stage.
        settings: The target and the policy parameters of the run.

    Returns:
        The fitted threshold per stage (an interval open below).
    """
    stages = [
        {"lower": None, "upper": float(torch.quantile(c.double(), settings.pass_fraction))}
        for c in inputs.stage_confidence
    ]
    return interval_policy("single_threshold", stages, f"pass={settings.pass_fraction:g}")
