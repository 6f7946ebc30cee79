"""``budget_window``: the pass-interval that buys the most uncertainty for a compute budget.

The whole family lives here: its parameters and registry entries, the interval search and the
cross-fitted choice of its rule.

For a budget B (expected cost per sample in units of the first member's MACs, the unit of the
``cost`` column), stage k passes on the samples whose stage-k confidence lies in an interval
[lower_k, upper_k], chosen on the held-out split to optimise the target of the cascade's
output there (``cov@R``: largest coverage at selective risk <= R; ``risk@C``: lowest risk at
coverage C), or its AUGRC (``budget_objective="augrc"``), subject to the expected held-out cost
being <= B (``budget_window_adjusted``: the expected cost on the unlabelled test mixture of ID
and OOD samples, as ``window_adjusted`` derives its band there, for deployment under shift).

M > 2: stage by stage in cascade order; the budget above 1 is split over the M - 1 transitions
in proportion to their MACs (each transition may pass the same fraction), and stage k's
interval is chosen with the earlier stages fixed and the samples it passes exiting at stage
k + 1. This gives up the joint optimum over all stages (a later stage cannot take budget that
an earlier stage leaves unused).

**The interval search** ([`best_interval`][]) is exact over a quantile grid: the interval
ends are taken from ``grid + 1`` held-out quantiles of the stage's confidence (the outer ones
open), every pair is scored, and the output's acceptance threshold is searched over
``2 * grid`` quantiles of the output confidences. It is vectorised through prefix sums: with
the samples ordered by stage confidence, the accepted count and errors at a threshold t for
the pass set (lo, hi] are ``base(t) + D(t, hi) - D(t, lo)``, so all grid^2 intervals x 2 grid
thresholds cost O(grid^3 + grid N) instead of re-running the cascade per pair.

**Choosing the rule.** The search picks the best of ~20,000 intervals on the held-out split:
with 1,000-2,000 held-out samples that pick is tuned to the held-out noise and can lose to the
paper's target-anchored window on test; with 10,000 it holds and keeps more of the ensemble's
gain. By default (``budget_select="ose"``) each stage first smooths the held-out value over
the grid (each interval's value averaged over the intervals whose ends lie within
``OSE_SMOOTH`` (2.5%) of the grid of its own, [`smoothed_values`][]: cov@R of one interval
jumps with the few errors among the most confident samples, a neighbourhood's mean follows its
expected value), then takes, among the intervals whose smoothed value is within ``OSE_SE``
(0.5) bootstrap standard errors of the best, the one nearest the window at the same budget
([`best_interval`][]): the standard error shrinks as 1 / sqrt(n), so with many held-out samples
the rule is the smoothed search and with few it stays at or next to the window. It costs one
search and one window fit. Measured against the alternatives below in BENCHMARKS.md
("budget_window's default rule"): on ImageNet-shaped members at 1.2x with 10,000 held-out
samples it keeps about 64% of the ensemble's cov@5 gain (the plain search 58%, the best single
interval fitted on the test split itself 67%), and with 1,000-2,000 it did not fall below the
window by more than 0.001.

``budget_select="cv"`` (the default before) decides between the window and the search by a
cross-fitted test on the held-out split ([`select_budget_rule`][]); it kept the window in
nearly every case measured, giving up the search's gain where the data support it:

1. candidates, each a complete fitting rule at the same budget: ``window`` (the paper's band of
   half-width w = max_pass / 2 around the target's threshold, passing <= max_pass per stage),
   ``search`` (the plain search over the ``budget_grid``-point quantile grid) and ``coarse`` (the
   same search over a grid of [`coarse_grid`][] points, ~N / 100: fewer intervals to overfit);
2. each candidate is cross-fitted: the held-out split is cut into ``FOLDS`` folds (seeded), the
   rule fitted on all but one fold decides the samples of that fold, and the out-of-fold
   outputs of the whole split are scored with the fitting objective (cov@R, risk@C or AUGRC;
   ``window_cascades.cascade.output_objective``);
3. the window is the default; another candidate replaces it only when its cross-fitted value
   exceeds the window's in at least ``LEVEL`` (90%) of ``RESAMPLES`` paired bootstrap resamples
   of the held-out samples (among those that do, the best cross-fitted value wins);
4. the chosen rule is refitted on the whole held-out split.

The record (``selection`` in the fitted policy's ``to_dict``, hence ``summary.json`` and the
report) gives every candidate's cross-fitted value, the bootstrap probability of beating the
window, the choice and why. Cost: FOLDS + 1 fits of each search candidate and one bootstrap of
the pooled outputs (about 1 s on 10k held-out samples). ``ose`` records its standard errors, the
best and chosen values and the distance to the window per stage. ``search`` forces the plain search,
``window`` the window, ``coarse`` the search on the coarse grid. ``budget_window_adjusted`` is
always the plain search (its cost is counted on the mixture).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

import torch

from window_cascades.cascade.builtin_policies import fit_window
from window_cascades.cascade.output_objective import cascade_output, output_value
from window_cascades.cascade.policies import IntervalPolicy
from window_cascades.cascade.policy_parameters import CostGrid, PolicyParameter, parameter
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


def budget_cost_grid(points: int, ensemble_cost: float) -> list[float]:
    """Cost-to-target's budgets: 1 + (ensemble cost - 1) k / points for k = 1..points."""
    return [1 + (ensemble_cost - 1) * k / points for k in range(1, points + 1)]


BUDGET = PolicyParameter(
    "budget",
    1.2,
    "budget_window's expected cost(s) per sample, in first-member MACs, in [1, M]",
    check=_check_budget_value,
    cost_grid=CostGrid(budget_cost_grid, stop_when_reached=True),  # each budget fit is costly
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
        "ose",
        "how budget_window picks its rule: ose (among the intervals whose smoothed held-out "
        "value is within 0.5 standard errors of the best, the one nearest the window), cv "
        "(the window unless the search beats it cross-fitted on held-out), search, coarse or "
        "window",
        str,
        choices=("ose", "cv", "search", "coarse", "window"),
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
    if settings.budget_select == "ose":
        return _fit_near_window(inputs, settings)
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


def _budget_objective(settings: PolicySettings) -> tuple[str, float]:
    """(task, value) the budget search optimises: the target (``cov@R``, ``risk@C``), or AUGRC
    (``budget_objective="augrc"``, and for an OOD target ``fpr@P``, which has no value on the
    held-out split: it holds no OOD samples; the setting then reads ``augrc,B=...``)."""
    target = parse_target(settings.target)
    if settings.budget_objective == "augrc" or target.task == "fpr":
        return ("augrc", 0.0)
    return (target.task, target.value)


def _max_pass(budget: float, macs: list[float]) -> float:
    """The budget above 1, split over the transitions in proportion to their MACs: the
    largest fraction of all samples each transition may pass."""
    return (budget - 1) / (sum(macs[1:]) / macs[0])


OSE_SE = 0.5  # how many standard errors below the best smoothed held-out value "ose" may go
OSE_SMOOTH = 0.025  # "ose"'s smoothing: +- this fraction of the grid around each interval end


def _fit_near_window(inputs: FitInputs, settings: PolicySettings) -> IntervalPolicy:
    """budget_window with the one-standard-error rule (see "Choosing the rule" above)."""
    name, macs = "budget_window", inputs.stage_macs
    if macs is None:
        raise ValueError(f"{name} needs the members' MACs (FitInputs.stage_macs)")
    n = inputs.stage_confidence[0].numel()
    check_budget(settings.budget, macs, settings.budget_grid, n)
    try:
        window = window_at_budget(inputs, settings, _max_pass(settings.budget, macs))
    except ValueError as err:  # e.g. too few held-out samples for the target's threshold
        window, reason = None, f"the window could not be fitted ({err}): the plain search"
    else:
        reason = (
            f"among the intervals whose smoothed held-out value is within {OSE_SE:g} "
            "standard errors of the best, the one nearest the window"
        )
    policy = _fit(name, inputs, settings, on_mixture=False, toward=window)
    objective = _budget_objective(settings)[0]
    extra = {"rule": "ose", "budget": settings.budget, "objective": objective}
    details = [{**d, **extra} for d in policy.details]
    record = {"chosen": "ose", "reason": reason, "standard_errors": OSE_SE, "smoothing": OSE_SMOOTH}
    return SelectedIntervalPolicy(name, policy.bounds, policy.setting, details, record)


def _fit_selected(inputs: FitInputs, settings: PolicySettings) -> IntervalPolicy:
    """budget_window with its rule chosen on held-out (see "Choosing the rule" above)."""
    name, macs = "budget_window", inputs.stage_macs
    if macs is None:
        raise ValueError(f"{name} needs the members' MACs (FitInputs.stage_macs)")
    n = inputs.stage_confidence[0].numel()
    check_budget(settings.budget, macs, settings.budget_grid, n)
    objective, max_pass = _budget_objective(settings), _max_pass(settings.budget, macs)
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


def _fit(name: str, inputs: FitInputs, settings: PolicySettings, on_mixture: bool, toward=None):
    """The stage-by-stage search (``toward``: the window at the same budget, for "ose")."""
    if not inputs.stage_confidence:  # one member: nothing to pass
        return IntervalPolicy(name, torch.empty(0, 2), f"B={settings.budget:g}", [])
    macs = inputs.stage_macs
    if macs is None:
        raise ValueError(f"{name} needs the members' MACs (FitInputs.stage_macs)")
    n = inputs.stage_confidence[0].numel()
    check_budget(settings.budget, macs, settings.budget_grid, n)
    target, objective = parse_target(settings.target), _budget_objective(settings)
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
            None if toward is None else tuple(float(b) for b in toward.bounds[k]),
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


# The interval search


def _thresholds(conf: torch.Tensor, count: int) -> torch.Tensor:
    """Candidate acceptance thresholds, most confident first, ending at -inf (accept all)."""
    q = torch.quantile(conf, torch.linspace(1, 0, count, dtype=torch.float64))
    return torch.cat([torch.unique(q).flip(0), q.new_tensor([-math.inf])])


def _pass_set_values(count, errors, n: int, task: str, value: float, thresholds) -> torch.Tensor:
    """(T, P) accepted counts / errors per threshold and pass set -> a value per pass set
    (higher is better)."""
    count, errors = count.double(), errors.double()
    if task == "cov":
        feasible = errors <= value * count + 1e-9
        return torch.where(feasible, count, torch.zeros_like(count)).amax(0) / n
    if task == "risk":
        reach = count >= value * n - 1e-9  # thresholds descending: counts increase along T
        first = reach.double().argmax(0)
        c = count.gather(0, first[None]).squeeze(0)
        e = errors.gather(0, first[None]).squeeze(0)
        return -(e / c.clamp_min(1))
    # augrc: trapezoid of errors / n against count / n, from (0, 0)
    cov = torch.cat([count.new_zeros(1, count.shape[1]), count / n])
    grisk = torch.cat([count.new_zeros(1, count.shape[1]), errors / n])
    area = ((cov[1:] - cov[:-1]) * (grisk[1:] + grisk[:-1]) / 2).sum(0)
    return -area


def _prefix_sums(
    base_conf: torch.Tensor,
    base_wrong: torch.Tensor,
    next_conf: torch.Tensor,
    next_wrong: torch.Tensor,
    order: torch.Tensor,
    thresholds: torch.Tensor,
) -> tuple[torch.Tensor, ...]:
    """Per acceptance threshold (rows): the output's accepted count and errors when nothing is
    passed (``base``, (T,) each), and D: prefix sums, over the eligible samples in
    stage-confidence ``order``, of how passing each sample on changes them ((T, n + 1) each)."""
    acc_base = base_conf.double()[None, :] >= thresholds[:, None]  # (T, N)
    base_count = acc_base.sum(1)
    base_err = (acc_base & base_wrong[None, :]).sum(1)
    acc_next = next_conf[order].double()[None, :] >= thresholds[:, None]
    acc_here = acc_base[:, order]
    zero = torch.zeros(len(thresholds), 1, dtype=torch.long)
    d_count = torch.cat([zero, torch.cumsum(acc_next.long() - acc_here.long(), 1)], 1)
    wrong_next, wrong_here = next_wrong[order][None, :], base_wrong[order][None, :]
    d_err = torch.cat(
        [zero, torch.cumsum((acc_next & wrong_next).long() - (acc_here & wrong_here).long(), 1)],
        1,
    )
    return base_count, base_err, d_count, d_err


def best_interval(
    stage_conf: torch.Tensor,
    eligible: torch.Tensor,
    base_conf: torch.Tensor,
    base_wrong: torch.Tensor,
    next_conf: torch.Tensor,
    next_wrong: torch.Tensor,
    max_pass: float,
    objective: tuple[str, float],
    grid: int = 200,
    cost_conf: torch.Tensor | None = None,
    cost_total: int | None = None,
    toward: tuple[float, float] | None = None,
) -> dict:
    """The interval of ``stage_conf`` over the ``eligible`` samples that optimises the
    objective of the output (``base_*`` for samples not passed, ``next_*`` for those passed)
    with at most ``max_pass`` of all samples passed. With ``cost_conf`` (the stage scores of
    the unlabelled test mixture's samples that reach this stage, out of ``cost_total``), the
    pass fraction is counted on the mixture instead.

    With ``toward`` (the window's [lower, upper] on this stage), the "ose" rule: the values
    smoothed over the grid ([`smoothed_values`][]), then the choice of
    ``_nearest_to_window``. Only cov@R was measured (BENCHMARKS.md).

    Args:
        stage_conf: N stage confidences (the held-out split).
        eligible: N bools, the samples that reach this stage.
        base_conf: N output confidences when the sample is not passed.
        base_wrong: N bools, its errors then.
        next_conf: N output confidences when the sample is passed.
        next_wrong: N bools, its errors then.
        max_pass: the largest fraction of all N samples passed.
        objective: (task, value) as ``_budget_objective``.
        grid: quantile points of the interval ends.
        cost_conf: the mixture's stage scores (see above), or None.
        cost_total: the mixture's size.
        toward: the window's (lower, upper) for the one-standard-error rule, or None.

    Returns:
        {lower, upper (floats, +-inf for open ends; both +inf when nothing is passed),
        pass_fraction, value (the held-out objective)}; with ``toward`` also best_value (the
        best smoothed value), smoothed_value (the chosen interval's), standard_error and
        window_distance.
    """
    n = stage_conf.numel()
    idx = torch.nonzero(eligible).flatten()
    order = idx[torch.argsort(stage_conf[idx], stable=True)]
    s_sorted = stage_conf[order].double()
    qs = torch.quantile(s_sorted, torch.linspace(0, 1, grid + 1, dtype=torch.float64)[1:-1])
    bounds = torch.cat([qs.new_tensor([-math.inf]), qs, qs.new_tensor([math.inf])])
    lo = torch.searchsorted(s_sorted, bounds, right=False)  # first index with s >= bound
    hi = torch.searchsorted(s_sorted, bounds, right=True)  # past the last with s <= bound
    thresholds = _thresholds(torch.cat([base_conf, next_conf[idx]]).double(), 2 * grid)
    base_count, base_err, d_count, d_err = _prefix_sums(
        base_conf, base_wrong, next_conf, next_wrong, order, thresholds
    )
    i, j = torch.triu_indices(len(bounds), len(bounds))  # lower bound i <= upper bound j
    start, stop = lo[i], hi[j]
    valid = stop >= start
    passed = (stop - start).clamp_min(0)
    share = passed.double() / n
    if cost_conf is not None:  # the pass fraction on the test mixture
        c_sorted = cost_conf.double().sort().values
        c_lo = torch.searchsorted(c_sorted, bounds, right=False)
        c_hi = torch.searchsorted(c_sorted, bounds, right=True)
        share = (c_hi[j] - c_lo[i]).clamp_min(0).double() / max(cost_total or 1, 1)
    keep = valid & (share <= max_pass + 1e-9)
    i, j, start, stop, passed = i[keep], j[keep], start[keep], stop[keep], passed[keep]
    share = share[keep]
    count = base_count[:, None] + d_count[:, stop] - d_count[:, start]
    errors = base_err[:, None] + d_err[:, stop] - d_err[:, start]
    value = _pass_set_values(count, errors, n, *objective, thresholds)
    # the best value; among equals (held-out cannot tell them apart) the widest interval:
    # the budget is there to be used
    key = value + 1e-12 * passed.double() / max(n, 1)
    best = int(torch.argmax(key))
    extra, sample = {}, (stage_conf, eligible, base_conf, base_wrong, next_conf, next_wrong)
    if toward is not None:  # the smoothed search, then the nearest to the window within c SE
        pairs = (value, key, passed, i, j, start, stop)
        best, extra = _ose_choice(pairs, bounds, s_sorted, sample, objective, grid, toward)
    lower, upper = float(bounds[i[best]]), float(bounds[j[best]])
    if int(passed[best]) == 0:
        lower = upper = math.inf  # an empty interval of any grid pair means: pass nothing
    return {
        "lower": lower,
        "upper": upper,
        "pass_fraction": float(share[best]),
        "value": float(value[best]),
        **extra,
    }


def _ose_choice(pairs, bounds, s_sorted, sample, objective, grid: int, toward):
    """The "ose" rule's pick among the kept grid pairs of [`best_interval`][]: the values
    smoothed over the grid ([`smoothed_values`][]), the bootstrap standard error of the
    output of the best smoothed pair, then [`_nearest_to_window`][].

    Args:
        pairs: (value, key, passed, i, j, start, stop) of the kept pairs, as in
            ``best_interval``.
        bounds: the grid's interval ends (-inf, the quantiles, +inf).
        s_sorted: the eligible samples' stage confidences, ascending.
        sample: (stage_conf, eligible, base_conf, base_wrong, next_conf, next_wrong).
        objective: (task, value) as ``_budget_objective``.
        grid: quantile points of the interval ends.
        toward: the window's (lower, upper) confidence bounds.

    Returns:
        (the chosen pair's index, the record of ``_nearest_to_window`` with smoothed_value).
    """
    value, key, passed, i, j, start, stop = pairs
    smoothed = smoothed_values(value, i, j, len(bounds), max(1, round(OSE_SMOOTH * grid)))
    n = max(sample[0].numel(), 1)
    top = int(torch.argmax(smoothed + 1e-12 * passed.double() / n))  # ties: the wider interval
    error = _standard_error(*_pass_output(bounds[i[top]], bounds[j[top]], *sample), objective)
    best, extra = _nearest_to_window(smoothed, key, top, error, s_sorted, start, stop, toward)
    return best, {**extra, "smoothed_value": float(smoothed[best])}


def _nearest_to_window(value, key, top: int, error: float, s_sorted, start, stop, toward):
    """The choice of the "ose" rule among the kept grid pairs of [`best_interval`][]: among
    the pairs whose (smoothed, see [`smoothed_values`][]) value is within [`OSE_SE`][]
    standard errors (``error``, the bootstrap one of [`_standard_error`][], of the output of
    the pair ``top`` with the best smoothed value) of the best, the one nearest ``toward``,
    the distance being |start - start_w| + |stop - stop_w| in fractions of the eligible
    samples sorted by confidence (ties: the higher value, then the wider interval). The error
    shrinks as 1 / sqrt(n): with many held-out samples the rule is the smoothed search, with
    few it stays near the window. A binomial sqrt(v (1 - v) / n) would understate cov@R's
    spread, which moves with the few errors among the most confident samples (0.007 against
    0.07 on 1,500 samples at cov@2): the search's overfitted picks then pass the test.

    Args:
        value: the kept pairs' smoothed held-out values (higher is better).
        key: the same values with the tie-break towards wider intervals added.
        top: the index of the best smoothed value.
        error: the bootstrap standard error of the held-out value at ``top``.
        s_sorted: the eligible samples' stage confidences, ascending.
        start: per pair, the index in ``s_sorted`` of its first passed sample.
        stop: per pair, one past the index of its last passed sample.
        toward: the window's (lower, upper) confidence bounds.

    Returns:
        (the chosen pair's index, {best_value (the best smoothed value), standard_error,
        window_distance}).
    """
    near = value >= value[top] - OSE_SE * error - 1e-12
    n_e = max(s_sorted.numel(), 1)
    w_start = torch.searchsorted(s_sorted, s_sorted.new_tensor([toward[0]]), right=False)
    w_stop = torch.searchsorted(s_sorted, s_sorted.new_tensor([toward[1]]), right=True)
    if int(w_stop) > int(w_start):
        distance = ((start - w_start).abs() + (stop - w_stop).abs()).double() / n_e
    else:  # the window passes nothing: the distance is what an interval passes
        distance = (stop - start).clamp_min(0).double() / n_e
    distance = torch.where(near, distance, torch.full_like(distance, math.inf))
    nearest = distance <= distance.min() + 1e-12
    best = int(torch.argmax(torch.where(nearest, key, torch.full_like(key, -math.inf))))
    record = {
        "best_value": float(value[top]),
        "standard_error": error,
        "window_distance": float(distance[best]),
    }
    return best, record


def smoothed_values(value: torch.Tensor, i, j, size: int, half_width: int) -> torch.Tensor:
    """Each grid interval's held-out value averaged over the kept intervals whose ends lie
    within ``half_width`` grid steps of its own (a (2 h + 1)^2 box over the (lower, upper)
    grid): cov@R of one interval jumps with the few errors among the most confident samples,
    so the best raw value is partly the held-out draw's noise, while a neighbourhood's mean
    follows the interval's expected value. On ImageNet-shaped members (BENCHMARKS.md) the
    smoothed search's best kept 66% of the ensemble's cov@5 gain at 1.2x on 10,000 held-out
    samples, the raw best 58%.

    Args:
        value: (P,) the kept pairs' held-out values.
        i: (P,) each pair's lower-bound grid index.
        j: (P,) each pair's upper-bound grid index.
        size: the number of grid bounds (indices run over 0..size - 1).
        half_width: h, in grid steps (>= 1).

    Returns:
        (P,) the smoothed values, in the pairs' order.

    Example:
        >>> v = torch.tensor([0.0, 1.0, 0.0], dtype=torch.float64)
        >>> smoothed_values(v, torch.tensor([0, 0, 1]), torch.tensor([0, 1, 1]), 2, 1)
        tensor([0.3333, 0.3333, 0.3333], dtype=torch.float64)
    """
    grid = torch.zeros(size, size, dtype=torch.float64)
    kept = torch.zeros(size, size, dtype=torch.float64)
    grid[i, j], kept[i, j] = value.double(), 1.0
    box = torch.ones(1, 1, 2 * half_width + 1, 2 * half_width + 1, dtype=torch.float64)
    total = torch.nn.functional.conv2d(grid[None, None], box, padding=half_width)[0, 0]
    count = torch.nn.functional.conv2d(kept[None, None], box, padding=half_width)[0, 0]
    return (total / count.clamp_min(1))[i, j]


def _pass_output(low, high, stage_conf, eligible, base_conf, base_wrong, next_conf, next_wrong):
    """(confidence, wrong) of the output when the stage passes [low, high]."""
    passed = eligible & (stage_conf >= low) & (stage_conf <= high)
    return torch.where(passed, next_conf, base_conf), torch.where(passed, next_wrong, base_wrong)


def _standard_error(conf: torch.Tensor, wrong: torch.Tensor, objective: tuple[str, float]):
    """The bootstrap standard error of the held-out value of an output (confidence, wrong)
    under the objective (see [`best_interval`][])."""
    n = conf.numel()
    draws = torch.randint(n, (RESAMPLES, n), generator=torch.Generator().manual_seed(0))
    weights = torch.zeros(RESAMPLES, n, dtype=torch.float64)
    weights.scatter_add_(1, draws, torch.ones_like(draws, dtype=torch.float64))
    return float(output_value(conf, wrong, objective, weights).std())


# Choosing the rule


FOLDS = 5
RESAMPLES = 200
LEVEL = 0.9


def coarse_grid(n: int, grid: int) -> int:
    """The coarse candidate's grid: about one quantile point per 100 held-out samples, at
    least 10 and at most ``grid`` (e.g. 2,000 samples: 20 points, 10,000: 100)."""
    return max(10, min(grid, n // 100))


def subset_inputs(inputs: FitInputs, index: torch.Tensor) -> FitInputs:
    """The held-out samples ``index`` of ``inputs`` (no mixture: the plain rules ignore it)."""
    return replace(
        inputs,
        stage_confidence=[c[index] for c in inputs.stage_confidence],
        stage_correct=[c[index] for c in inputs.stage_correct],
        mixture_confidence=None,
        final_confidence=inputs.final_confidence[index],
        final_correct=inputs.final_correct[index],
    )


def cross_fitted_output(
    inputs: FitInputs, fit, folds: int, seed: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Out-of-fold cascade outputs of a fitting rule ``fit(FitInputs) -> policy``.

    Returns:
        (confidence, wrong, passed_stage1) per held-out sample, each decided by the rule fitted
        without the sample's fold.
    """
    n = inputs.stage_confidence[0].numel()
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    conf = torch.empty(n, dtype=torch.float64)
    wrong = torch.empty(n, dtype=torch.bool)
    for f in range(folds):
        held = perm[f::folds]
        train = torch.cat([perm[g::folds] for g in range(folds) if g != f])
        policy = fit(subset_inputs(inputs, train))
        conf[held], wrong[held] = cascade_output(subset_inputs(inputs, held), policy)
    return conf, wrong, perm


@dataclass
class SelectedIntervalPolicy(IntervalPolicy):
    """An [`IntervalPolicy`][] with the record of how its rule was chosen (``selection``)."""

    selection: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {**super().to_dict(), "selection": self.selection}


def select_budget_rule(
    inputs: FitInputs,
    settings: PolicySettings,
    candidates: dict,
    objective: tuple[str, float],
) -> tuple[str, dict]:
    """Choose among ``candidates`` (name -> ``fit(FitInputs) -> policy``; ``window`` the
    default) by cross-fitted held-out value; see the module docstring.

    Returns:
        (the chosen name, the record: {chosen, reason, folds, resamples, level,
        candidates: {name: {cv_value, p_beats_window} or {error}}}).
    """
    n = inputs.stage_confidence[0].numel()
    outputs, record = {}, {}
    for name, fit in candidates.items():
        try:
            conf, wrong, _ = cross_fitted_output(inputs, fit, FOLDS, settings.seed)
        except ValueError as err:  # e.g. a fold too small for the window's target
            record[name] = {"error": str(err)}
            continue
        outputs[name] = (conf, wrong)
        record[name] = {"cv_value": float(output_value(conf, wrong, objective))}
    if not outputs:
        raise ValueError("budget_window: no candidate rule could be cross-fitted: " + str(record))
    gen = torch.Generator().manual_seed(settings.seed)
    draws = torch.randint(n, (RESAMPLES, n), generator=gen)
    weights = torch.zeros(RESAMPLES, n, dtype=torch.float64)
    weights.scatter_add_(1, draws, torch.ones_like(draws, dtype=torch.float64))
    boot = {name: output_value(c, w, objective, weights) for name, (c, w) in outputs.items()}
    if "window" in outputs:
        better = []
        for name in outputs:
            if name == "window":
                continue
            p = float((boot[name] > boot["window"] + 1e-12).double().mean())
            record[name]["p_beats_window"] = p
            if p >= LEVEL:
                better.append(name)
        if better:
            chosen = max(better, key=lambda k: record[k]["cv_value"])
            reason = (
                f"{chosen}'s cross-fitted value beats the window's in "
                f"{record[chosen]['p_beats_window']:.0%} of {RESAMPLES} resamples "
                f"(>= {LEVEL:.0%})"
            )
        else:
            chosen = "window"
            reason = (
                f"no other rule beats the window's cross-fitted value in >= {LEVEL:.0%} of "
                f"{RESAMPLES} resamples of the {n} held-out samples"
            )
    else:
        chosen = max(outputs, key=lambda k: record[k]["cv_value"])
        reason = "the window could not be fitted; the best cross-fitted value of the others"
    return chosen, {
        "chosen": chosen,
        "reason": reason,
        "folds": FOLDS,
        "resamples": RESAMPLES,
        "level": LEVEL,
        "candidates": record,
    }


def window_at_budget(inputs: FitInputs, settings: PolicySettings, max_pass: float):
    """The paper's window at half-width w = max_pass / 2 (each stage passes <= max_pass)."""
    width = min(max(max_pass / 2, 1e-9), 0.5)
    return fit_window(inputs, settings.replace(width=width))
