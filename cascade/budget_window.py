"""``budget_window``: the pass-interval that buys the most uncertainty for a compute budget.

For a budget B (expected cost per sample in units of the first member's MACs, the unit of the
``cost`` column), stage k passes on the samples whose stage-k confidence lies in an interval
[lower_k, upper_k], chosen on the held-out split to optimise the target of the cascade's
output there (``cov@R``: largest coverage at selective risk <= R; ``risk@C``: lowest risk at
coverage C), or its AUGRC (``budget_objective="augrc"``), subject to the expected held-out cost
being <= B (``budget_window_adjusted``: the expected cost on the unlabelled test mixture of ID
and OOD samples, as ``window_adjusted`` derives its band there, for deployment under shift).

The search is exact over a quantile grid
(``window_cascades.cascade.interval_search.best_interval``).

Which rule: by default (``budget_select="cv"``) ``budget_window`` does not trust the search
blindly. The search and the paper's window at the same cost (half-width w = max_pass / 2) are
both cross-fitted on the held-out split, and the search replaces the window only when it beats
it in >= 90% of paired bootstrap resamples (``window_cascades.cascade.budget_selection``); the
fitted policy's ``selection`` record says which rule was chosen and why. On 2,000 held-out samples
the plain search overfits (it lost to the window on notMNIST); on 10,000 it holds. ``search`` forces
the plain search, ``window`` the window, ``coarse`` the search on a ~N / 100-point grid.
``budget_window_adjusted`` is always the plain search (its cost is counted on the mixture).

M > 2: stage by stage in cascade order; the budget above 1 is split over the M - 1 transitions
in proportion to their MACs (each transition may pass the same fraction), and stage k's
interval is chosen with the earlier stages fixed and the samples it passes exiting at stage
k + 1. This gives up the joint optimum over all stages (a later stage cannot take budget that
an earlier stage leaves unused).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from window_cascades.cascade.interval_search import best_interval
from window_cascades.cascade.policies import IntervalPolicy
from window_cascades.cascade.policy_parameters import PolicyParameter, parameter
from window_cascades.cascade.policy_registry import FitInputs, PolicySettings, register_policy
from window_cascades.uncertainty.targets import parse_target


def check_budget(budget: float, stage_macs: list[float] | None, grid: int, n: int) -> float:
    """The budget's full-ensemble bound, or a clear error naming the bad value."""
    if grid < 2:
        raise ValueError(f"budget_window grid must be >= 2 quantile points, got {grid}")
    if n < grid:
        raise ValueError(
            f"budget_window grid of {grid} quantile points is too fine for a held-out split of "
            f"{n} samples: use --budget-grid <= {n} or hold out more data"
        )
    full = sum(stage_macs) / stage_macs[0] if stage_macs else math.inf
    if not 1 <= budget <= full + 1e-9:
        raise ValueError(
            f"budget {budget:g} is outside [1, {full:g}]: 1 is the first member alone, "
            f"{full:g} the full ensemble (in units of the first member's MACs)"
        )
    return full


def _check_budget_value(budget: float) -> float:
    if isinstance(budget, bool) or not (
        isinstance(budget, (int, float)) and budget >= 1 and math.isfinite(budget)
    ):
        raise ValueError(f"budget must be >= 1 (the first member alone) and finite, got {budget}")
    return float(budget)


def _check_grid(grid: int) -> int:
    if isinstance(grid, bool) or not (isinstance(grid, int) and grid >= 2):
        raise ValueError(f"budget grid must be an integer >= 2, got {grid!r}")
    return grid


BUDGET = PolicyParameter(
    "budget",
    1.2,
    "budget_window's expected cost(s) per sample, in first-member MACs, in [1, M]",
    check=_check_budget_value,
)
BUDGET_GRID = PolicyParameter(
    "budget_grid", 200, "budget_window's quantile grid (>= 2 points)", int, _check_grid
)
BUDGET_OBJECTIVE = PolicyParameter(
    "budget_objective",
    "target",
    "what budget_window optimises on held-out: the target (cov@R, risk@C) or AUGRC",
    str,
    choices=("target", "augrc"),
)


@dataclass(frozen=True)
class BudgetWindowAdjustedParameters:
    """``budget_window_adjusted``: the budget and the search."""

    budget: float = BUDGET.field()
    budget_grid: int = BUDGET_GRID.field()
    budget_objective: str = BUDGET_OBJECTIVE.field()


@dataclass(frozen=True)
class BudgetWindowParameters(BudgetWindowAdjustedParameters):
    """``budget_window``: the budget, the search and how its rule is chosen."""

    budget_select: str = parameter(
        "budget_select",
        "cv",
        "how budget_window picks its rule: cv (the window unless the search beats it "
        "cross-fitted on held-out), search, coarse or window",
        str,
        choices=("cv", "search", "coarse", "window"),
    )


@register_policy(
    "budget_window",
    "the held-out quantile interval per stage that optimises the target at expected cost <= budget",
    parameters=BudgetWindowParameters,
    sweep="budget",
)
def fit_budget_window(inputs: FitInputs, settings: PolicySettings) -> IntervalPolicy:
    if settings.budget_select == "search" or not inputs.stage_confidence:
        return _fit("budget_window", inputs, settings, on_mixture=False)
    return _fit_selected(inputs, settings)


@register_policy(
    "budget_window_adjusted",
    "budget_window with the expected cost counted on the unlabelled test mixture (ID + OOD)",
    parameters=BudgetWindowAdjustedParameters,
    sweep="budget",
    needs_mixture=True,
)
def fit_budget_window_adjusted(inputs: FitInputs, settings: PolicySettings) -> IntervalPolicy:
    return _fit("budget_window_adjusted", inputs, settings, on_mixture=True)


def _budget_objective(name: str, settings: PolicySettings) -> tuple[str, float]:
    """(task, value) the budget search optimises, or a clear error for an OOD target."""
    target = parse_target(settings.target)
    if settings.budget_objective == "augrc":
        return ("augrc", 0.0)
    if target.task == "fpr":
        raise ValueError(
            f"{name} cannot optimise {target.name} on the held-out split (it has no OOD "
            "samples); use a cov@R or risk@C target, or --budget-objective augrc"
        )
    return (target.task, target.value)


def _max_pass(budget: float, macs: list[float]) -> float:
    """The budget above 1, split over the transitions in proportion to their MACs: the
    largest fraction of all samples each transition may pass."""
    return (budget - 1) / (sum(macs[1:]) / macs[0])


def _fit_selected(inputs: FitInputs, settings: PolicySettings) -> IntervalPolicy:
    """budget_window with its rule chosen on held-out
    (``window_cascades.cascade.budget_selection``)."""
    from window_cascades.cascade.budget_selection import (
        SelectedIntervalPolicy,
        coarse_grid,
        select_budget_rule,
        window_at_budget,
    )

    name, macs = "budget_window", inputs.stage_macs
    if macs is None:
        raise ValueError(f"{name} needs the members' MACs (FitInputs.stage_macs)")
    n = inputs.stage_confidence[0].numel()
    check_budget(settings.budget, macs, settings.budget_grid, n)
    objective, max_pass = _budget_objective(name, settings), _max_pass(settings.budget, macs)
    coarse = settings.replace(budget_grid=coarse_grid(n, settings.budget_grid))
    candidates = {
        "window": lambda i: window_at_budget(i, settings, max_pass),
        "search": lambda i: _fit(name, i, settings, on_mixture=False),
        "coarse": lambda i: _fit(name, i, coarse, on_mixture=False),
    }
    if settings.budget_select == "cv":  # the coarse grid is not a candidate (BENCHMARKS.md)
        pair = {k: candidates[k] for k in ("window", "search")}
        chosen, record = select_budget_rule(inputs, settings, pair, objective)
    else:
        chosen = settings.budget_select
        record = {"chosen": chosen, "reason": f"--budget-select {chosen}"}
    policy = candidates[chosen](inputs)
    extra = {"rule": chosen, "budget": settings.budget, "objective": objective[0]}
    details = [{**d, **extra} for d in policy.details]
    target_name = parse_target(settings.target).name if objective[0] != "augrc" else "augrc"
    setting = f"{target_name},B={settings.budget:g}"
    return SelectedIntervalPolicy(name, policy.bounds, setting, details, record)


def _fit(name: str, inputs: FitInputs, settings: PolicySettings, on_mixture: bool):
    if not inputs.stage_confidence:  # one member: nothing to pass
        return IntervalPolicy(name, torch.empty(0, 2), f"B={settings.budget:g}", [])
    macs = inputs.stage_macs
    if macs is None:
        raise ValueError(f"{name} needs the members' MACs (FitInputs.stage_macs)")
    n = inputs.stage_confidence[0].numel()
    check_budget(settings.budget, macs, settings.budget_grid, n)
    target = parse_target(settings.target)
    objective = _budget_objective(name, settings)
    max_pass = _max_pass(settings.budget, macs)
    conf, wrong = inputs.stage_confidence, [~c.bool() for c in inputs.stage_correct]
    out_conf, out_wrong = conf[0].double().clone(), wrong[0].clone()
    reached = torch.ones(n, dtype=torch.bool)
    mixture = inputs.mixture_confidence if on_mixture else None
    mix_reached = None if mixture is None else torch.ones(mixture[0].numel(), dtype=torch.bool)
    final_conf, final_wrong = inputs.final_confidence, ~inputs.final_correct.bool()
    stages, bounds = [], []
    for k in range(len(conf)):
        next_conf = conf[k + 1] if k + 1 < len(conf) else final_conf
        next_wrong = wrong[k + 1] if k + 1 < len(conf) else final_wrong
        cost = None if mixture is None else mixture[k][mix_reached]
        fit = best_interval(
            conf[k],
            reached,
            out_conf,
            out_wrong,
            next_conf.double(),
            next_wrong,
            max_pass,
            objective,
            settings.budget_grid,
            cost,
            None if mixture is None else mix_reached.numel(),
        )
        low, high = fit["lower"], fit["upper"]
        passed = reached & (conf[k] >= low) & (conf[k] <= high)
        if mixture is not None:
            mix_reached = mix_reached & (mixture[k] >= low) & (mixture[k] <= high)
        bounds.append([low, high])
        out_conf = torch.where(passed, next_conf.double(), out_conf)
        out_wrong = torch.where(passed, next_wrong, out_wrong)
        reached = passed
        stages.append(
            {
                **fit,
                "lower": None if math.isinf(low) else low,  # JSON-safe; the bounds say it exactly
                "upper": None if math.isinf(high) else high,
                "passes_nothing": fit["pass_fraction"] == 0,
                "budget": settings.budget,
                "objective": objective[0],
            }
        )
    target_name = target.name if objective[0] != "augrc" else "augrc"
    bounds_t = torch.tensor(bounds, dtype=torch.float64).reshape(len(stages), 2)
    setting = f"{target_name},B={settings.budget:g}"
    return IntervalPolicy(name, bounds_t, setting, stages)
