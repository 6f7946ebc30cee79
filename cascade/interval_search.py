"""The interval search behind ``budget_window``: the pass interval of one stage that optimises
the cascade output's target at a bounded pass fraction.

Exact over a quantile grid: the interval ends are taken from ``grid + 1`` held-out quantiles
of the stage's confidence (the outer ones open), every pair is scored, and the output's
acceptance threshold is searched over ``2 * grid`` quantiles of the output confidences. The
search is vectorised through prefix sums: with the samples ordered by stage confidence, the
accepted count and errors at a threshold t for the pass set (lo, hi] are
``base(t) + D(t, hi) - D(t, lo)``, so all grid^2 intervals x 2 grid thresholds cost
O(grid^3 + grid N) instead of re-running the cascade per pair. Pure tensor functions.
"""

from __future__ import annotations

import math

import torch


def _thresholds(conf: torch.Tensor, count: int) -> torch.Tensor:
    """Candidate acceptance thresholds, most confident first, ending at -inf (accept all)."""
    q = torch.quantile(conf, torch.linspace(1, 0, count, dtype=torch.float64))
    return torch.cat([torch.unique(q).flip(0), q.new_tensor([-math.inf])])


def _objective(count, errors, n: int, task: str, value: float, thresholds) -> torch.Tensor:
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
) -> dict:
    """The interval of ``stage_conf`` over the ``eligible`` samples that optimises the
    objective of the output (``base_*`` for samples not passed, ``next_*`` for those passed)
    with at most ``max_pass`` of all samples passed. With ``cost_conf`` (the stage scores of
    the unlabelled test mixture's samples that reach this stage, out of ``cost_total``), the
    pass fraction is counted on the mixture instead.

    Returns:
        {lower, upper (floats, +-inf for open ends; both +inf when nothing is passed),
        pass_fraction, value (the held-out objective)}.
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
    value = _objective(count, errors, n, *objective, thresholds)
    # the best value; among equals (held-out cannot tell them apart) the widest interval:
    # the budget is there to be used
    key = value + 1e-12 * passed.double() / max(n, 1)
    best = int(torch.argmax(key))
    lower, upper = float(bounds[i[best]]), float(bounds[j[best]])
    if int(passed[best]) == 0:
        lower = upper = math.inf  # an empty interval of any grid pair means: pass nothing
    return {
        "lower": lower,
        "upper": upper,
        "pass_fraction": float(share[best]),
        "value": float(value[best]),
    }
