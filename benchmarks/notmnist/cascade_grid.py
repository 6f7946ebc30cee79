"""Many cascades of cached members under one policy plan, with one bootstrap: a benchmark grid.

A grid is a list of cascades, each a model label (e.g. ``resnet18`` or
``resnet10t>resnet34``) and a member order; every cascade is evaluated offline with every
entry of the plan (score, policies, policy settings), and every row is tagged with ``model``
and ``members``. All cascades share one ``window_cascades.cascade.bootstrap.Bootstrap``, so
intervals and paired differences come from the same resamples of each dataset.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from window_cascades.artifacts.experiment_logits import load_experiment
from window_cascades.cascade.bootstrap import Bootstrap
from window_cascades.cascade.metric_registry import MetricSettings
from window_cascades.cascade.offline import EnsembleLogits, evaluate_policies, prepare_experiment
from window_cascades.cascade.orders import order_label
from window_cascades.cascade.policy_registry import PolicySettings
from window_cascades.cascade.progress import progress
from window_cascades.uncertainty.guarantees import GuaranteeError
from window_cascades.uncertainty.selective import UnreachableTargetError
from window_cascades.vocabulary.roles import DatasetRoles


@dataclass(frozen=True)
class PlanEntry:
    """Policies evaluated together: their score, names and settings."""

    score: str
    policies: tuple[str, ...]
    settings: PolicySettings


@dataclass(frozen=True)
class GridCascade:
    """One cascade of the grid: a model label and its members in cascade order."""

    model: str
    members: tuple[str, ...]


def size_orders(members_by_size: dict[str, list[str]]) -> list[GridCascade]:
    """Every ordered pair of members of each size (with 2 members, both orders)."""
    return [
        GridCascade(size, pair)
        for size, names in members_by_size.items()
        for pair in itertools.permutations(names, 2)
    ]


def growing_pairs(members_by_size: dict[str, list[str]]) -> list[GridCascade]:
    """Heterogeneous cascades: each smaller size's member followed by each larger size's member
    of the same seed position (sizes in the given order, smallest first)."""
    sizes = list(members_by_size)
    out = []
    for i, small in enumerate(sizes):
        for large in sizes[i + 1 :]:
            for a, b in zip(members_by_size[small], members_by_size[large], strict=False):
                out.append(GridCascade(f"{small}>{large}", (a, b)))
    return out


def evaluate_grid(
    logits_dir: str | Path,
    cascades: Sequence[GridCascade],
    roles: DatasetRoles,
    plan: Sequence[PlanEntry],
    metric_settings: MetricSettings,
    bootstrap: Bootstrap,
    skipped: Callable[[GridCascade, PlanEntry, Exception], None] | None = None,
) -> tuple[list[dict], dict]:
    """Evaluate every cascade with every plan entry.

    Args:
        logits_dir: the folder of the members' cached logits (one sub-folder per member).
        cascades: the cascades to evaluate: each a model label and its members in order.
        roles: the datasets' roles.
        plan: the policies to fit, each with its target, score and parameters.
        metric_settings: the operating points to report.
        bootstrap: the resamples of the intervals (``num`` 0: none).
        skipped: called with (cascade, entry, error) when an entry cannot be fitted (a target
            unreachable or not certifiable on the held-out split); None raises.

    Returns:
        (rows with ``model`` and ``members``, {(members label, policy, setting, score): fitted
        policy}), the rows annotated with their intervals when ``bootstrap.num`` > 0.
    """
    members = sorted({m for c in cascades for m in c.members})
    data, member_cost = load_experiment(logits_dir, members, roles)
    cost = dict(zip(members, member_cost, strict=True))
    rows, fitted = [], {}
    for cascade in progress(cascades, "evaluating cascades", len(cascades), unit="cascade"):
        index = [members.index(m) for m in cascade.members]
        subset = {
            name: EnsembleLogits([d.logits[i] for i in index], d.targets)
            for name, d in data.items()
        }
        label = order_label(cascade.members)
        bootstrap.members = label
        prepared: dict = {}
        for entry in plan:
            if entry.score not in prepared:
                macs = [cost[m] for m in cascade.members]
                prepared[entry.score] = prepare_experiment(subset, roles, macs, entry.score)
            try:
                part, policies = evaluate_policies(
                    prepared[entry.score],
                    list(entry.policies),
                    entry.settings,
                    metric_settings,
                    None,
                    bootstrap,
                )
            except (UnreachableTargetError, GuaranteeError) as err:
                if skipped is None:
                    raise
                skipped(cascade, entry, err)
                continue
            rows += [{"model": cascade.model, "members": label, **r} for r in part]
            for p in policies.values():
                fitted[label, p.name, p.setting, entry.score] = p
    if bootstrap.num:
        rows = bootstrap.annotate(rows)
    return rows, fitted
