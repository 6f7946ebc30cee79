"""Cost to reach a share of the ensemble's gain: the cheapest setting of a policy family that
keeps a given share of what the full ensemble adds over member 1, chosen on the held-out split.

For a target such as ``cov@5`` let ``v(single)``, ``v(ensemble)`` and ``v(p)`` be the target's
value (higher is better: coverage at risk <= R, or minus the risk at coverage C) of member 1
alone, of the full ensemble and of the cascade under policy ``p``, on the held-out split. The
**gain share** of ``p`` is ``(v(p) - v(single)) / (v(ensemble) - v(single))``: 0 for member 1,
1 for the ensemble. Its **cost** is the expected MACs per sample of the cascade in units of
member 1 (the ``cost`` column): 1 for member 1 alone, ``sum(MACs) / MACs[0]`` for the ensemble.

Every policy family with a cost knob (its registry ``sweep``: the window's half-width ``width``,
``single_threshold``'s ``pass_fraction``, ``budget_window``'s ``budget``) is fitted at
[`GRID_POINTS`][] knob values; for each asked share the setting with the smallest held-out
cost among those that reach it is kept, named ``<family>@gain<percent>`` (e.g.
``window@gain75``, its ``setting`` the fitted one). The caller evaluates that setting on every
test set like any fitted policy, so what the held-out cost buys on test comes with its
bootstrap interval. Families fitted on the unlabelled test mixture (``needs_mixture``: their cost is
counted there, not on held-out) and ``random`` (its gain is proportional to its cost by
construction) are left out. An OOD target (``fpr@P``) has no held-out gain (the held-out split
has no OOD samples): nothing is fitted for it.

Cost to compute: ``GRID_POINTS`` fits per family (``budget_window``: its scan stops at the first
budget that reaches every share), each followed by one pass of the cascade over the held-out
split.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch

from window_cascades.cascade.budget_selection import cascade_output, output_value
from window_cascades.cascade.engine import exit_stages
from window_cascades.cascade.policy_registry import FitInputs, PolicySettings, policy_entry
from window_cascades.uncertainty.targets import parse_target

GAIN_SHARES = (0.5, 0.75, 0.9)
GRID_POINTS = 10
"""Knob values fitted per policy family: cost steps of about 0.1 for two equal members."""
GAIN_MARK = "@gain"  # the rows' policy: "<family>@gain<percent>", e.g. window@gain75


def gain_policy_name(family: str, share: float) -> str:
    """The ``policy`` of a cost-to-target row, e.g. ``window@gain75`` (its ``setting`` is the
    fitted setting, e.g. ``cov@5,w=0.075``)."""
    return f"{family}{GAIN_MARK}{round(share * 100):d}"


def is_cost_to_target(policy: str) -> bool:
    """Whether a row's ``policy`` is a cost-to-target setting (kept out of the key tables)."""
    return GAIN_MARK in policy


def check_gain_shares(shares: list[float]) -> list[float]:
    """Validate the asked shares of the ensemble's gain: fractions in (0, 1], no repeats."""
    for share in shares:
        if isinstance(share, bool) or not (isinstance(share, (int, float)) and 0 < share <= 1):
            raise ValueError(
                f"--gain-shares {share!r}: a share of the ensemble's gain is a fraction in "
                "(0, 1] (0.75 = 75%)"
            )
    if len(set(shares)) != len(shares):
        raise ValueError(f"--gain-shares lists a share twice: {shares}")
    return sorted(float(s) for s in shares)


def has_cost_knob(name: str) -> bool:
    """Whether ``name``'s family takes part: a cost knob, fitted on the held-out split."""
    entry = policy_entry(name)
    return entry.sweep is not None and not entry.needs_mixture and name != "random"


def knob_values(knob: str, stage_macs: list[float], points: int = GRID_POINTS) -> list[float]:
    """The knob values tried, in increasing cost: half-widths 0.5 k / points; pass fractions
    k / (points + 1); budgets 1 + (ensemble cost - 1) k / points, for k = 1..points."""
    if knob == "width":
        return [0.5 * k / points for k in range(1, points + 1)]
    if knob == "pass_fraction":
        return [k / (points + 1) for k in range(1, points + 1)]
    if knob == "budget":
        total = sum(stage_macs) / stage_macs[0]
        return [1 + (total - 1) * k / points for k in range(1, points + 1)]
    raise ValueError(f"no cost grid for the knob {knob!r}")


def heldout_cost(inputs: FitInputs, policy, stage_macs: list[float]) -> float:
    """Expected MACs per held-out sample under ``policy``, in units of member 1's MACs."""
    conf = [*inputs.stage_confidence, inputs.final_confidence]
    exits = exit_stages(conf, policy)
    cumulative = torch.tensor(stage_macs, dtype=torch.float64).cumsum(0) / stage_macs[0]
    return float(cumulative[exits - 1].mean())


@dataclass
class CostToTarget:
    """The cheapest setting of one family that reaches one share of the gain on held-out.

    Attributes:
        policy: the family (a registered policy name).
        share: the asked share of the ensemble's held-out gain, in (0, 1].
        knob: the settings field varied (``width``, ``pass_fraction``, ``budget``).
        value: the knob's value chosen, None when no tried value reaches the share.
        heldout_cost: its expected cost per held-out sample (member-1 units), or None.
        heldout_share: the share it reaches on held-out, or None.
        fitted: the fitted policy (named [`gain_policy_name`][]), or None.
    """

    policy: str
    share: float
    knob: str
    value: float | None = None
    heldout_cost: float | None = None
    heldout_share: float | None = None
    fitted: object | None = None


def cost_to_target(
    name: str,
    inputs: FitInputs,
    settings: PolicySettings,
    shares: list[float] = GAIN_SHARES,
    points: int = GRID_POINTS,
) -> list[CostToTarget]:
    """For each share, the cheapest of ``points`` settings of family ``name`` that reaches it
    on the held-out split (see the module docstring); [] for an OOD target or a family without
    a held-out cost knob, and unreached entries (``value`` None) when the ensemble does not
    beat member 1 on held-out or no setting gets there."""
    target = parse_target(settings.target)
    if target.task == "fpr" or not has_cost_knob(name) or not inputs.stage_confidence:
        return []
    entry = policy_entry(name)
    knob = entry.sweep
    macs = list(inputs.stage_macs or [1.0] * inputs.num_stages)
    objective = (target.task, target.value)
    first = output_value(inputs.stage_confidence[0], ~inputs.stage_correct[0].bool(), objective)
    full = output_value(inputs.final_confidence, ~inputs.final_correct.bool(), objective)
    gain = float(full - first)
    found = [CostToTarget(name, share, knob) for share in shares]
    if not gain > 0:
        return found
    tried = []  # (cost, share, value, fitted)
    for value in knob_values(knob, macs, points):
        try:
            fitted = entry.fit(inputs, settings.replace(**{knob: value}))
        except ValueError:  # e.g. a half-width too narrow for the held-out split's size
            continue
        conf, wrong = cascade_output(inputs, fitted)
        share = float(output_value(conf, wrong, objective) - first) / gain
        tried.append((heldout_cost(inputs, fitted, macs), share, value, fitted))
        if knob == "budget" and share >= max(shares):  # each budget fit is costly: stop
            break
    for entry_found in found:
        reaching = [t for t in tried if t[1] >= entry_found.share - 1e-12]
        if not reaching:
            continue
        cost, share, value, fitted = min(reaching, key=lambda t: (t[0], t[2]))
        marked = replace(fitted, name=gain_policy_name(name, entry_found.share))
        entry_found.value, entry_found.heldout_cost, entry_found.heldout_share = value, cost, share
        entry_found.fitted = marked
    return found
