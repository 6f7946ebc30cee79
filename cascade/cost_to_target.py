"""Cost to reach a share of the ensemble's gain: the cheapest setting of a policy family that
keeps a given share of what the full ensemble adds over member 1, chosen on the held-out split.

For a target such as ``cov@5`` let ``v(single)``, ``v(ensemble)`` and ``v(p)`` be the target's
value (higher is better: coverage at risk <= R, or minus the risk at coverage C) of member 1
alone, of the full ensemble and of the cascade under policy ``p``, on the held-out split. The
**gain share** of ``p`` is ``(v(p) - v(single)) / (v(ensemble) - v(single))``: 0 for member 1,
1 for the ensemble. Its **cost** is the expected MACs per sample of the cascade in units of
member 1 (the ``cost`` column): 1 for member 1 alone, ``sum(MACs) / MACs[0]`` for the ensemble.

Every policy family with a cost knob takes part: its registry ``sweep`` names a parameter that
declares a cost grid (``window_cascades.cascade.policy_parameters.CostGrid``; e.g. the window's
half-width, a pass fraction, a compute budget). It is fitted at [`GRID_POINTS`][] knob values
of that grid; for each asked share the setting with the smallest held-out cost among those that
reach it is kept, named ``<family>@gain<percent>`` (e.g. ``window@gain75``, its ``setting`` the
fitted one). The caller evaluates that setting on every test set like any fitted policy, so what
the held-out cost buys on test comes with its bootstrap interval. Left out: a family without a
swept cost knob, one fitted on the unlabelled test mixture (``needs_mixture``: its cost is
counted there, not on held-out) and one registered with ``in_cost_to_target=False`` (e.g. a
random policy, whose gain is proportional to its cost by construction). An OOD target
(``fpr@P``) has no held-out gain (the held-out split has no OOD samples): nothing is fitted for
it.

Cost to compute: ``GRID_POINTS`` fits per family (a grid declared with ``stop_when_reached``
stops at the first value that reaches every share), each followed by one pass of the cascade
over the held-out split.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch

from window_cascades.cascade.engine import exit_stages
from window_cascades.cascade.output_objective import cascade_output, output_value
from window_cascades.cascade.policy_parameters import PolicyParameter, declared_parameters
from window_cascades.cascade.policy_registry import FitInputs, PolicySettings, policy_entry
from window_cascades.uncertainty.targets import parse_target
from window_cascades.vocabulary.checks import check_gain_shares  # noqa: F401  (its home before)

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


def cost_knob(name: str) -> PolicyParameter | None:
    """The parameter cost-to-target varies for ``name``'s family, or None when the family takes
    no part (see the module docstring): its swept parameter, when that declares a cost grid."""
    entry = policy_entry(name)
    if entry.sweep is None or entry.needs_mixture or not entry.in_cost_to_target:
        return None
    knob = next(p for p in entry.parameters if p.name == entry.sweep)
    return knob if knob.cost_grid is not None else None


def has_cost_knob(name: str) -> bool:
    """Whether ``name``'s family takes part: a cost knob, fitted on the held-out split."""
    return cost_knob(name) is not None


def knob_values(knob: str, stage_macs: list[float], points: int = GRID_POINTS) -> list[float]:
    """The values of the declared parameter ``knob`` tried, in increasing cost: its cost grid
    at ``points`` points for a cascade of members costing ``stage_macs``.

    Raises:
        ValueError: ``knob`` is not a declared parameter with a cost grid.
    """
    declared = declared_parameters().get(knob)
    if declared is None or declared.cost_grid is None:
        raise ValueError(f"no cost grid for the knob {knob!r}")
    return list(declared.cost_grid.values(points, sum(stage_macs) / stage_macs[0]))


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
        knob: the parameter varied (the family's swept parameter, declared with a cost grid).
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
    declared = cost_knob(name)
    if target.task == "fpr" or declared is None or not inputs.stage_confidence:
        return []
    entry, knob = policy_entry(name), declared.name
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
        if declared.cost_grid.stop_when_reached and share >= max(shares):
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
