"""A policy with a parameter of its own, declared in this one file (as a user adds one): it
passes on the least confident ``top_share`` of the held-out scores, swept by ``top_share``, a
cost knob whose cost grid cost-to-target tries (CONTRIBUTING.md, "Add a policy")."""

from dataclasses import dataclass

import torch

from window_cascades import register_policy
from window_cascades.cascade.builtin_policies import interval_policy
from window_cascades.cascade.policy_parameters import CostGrid, parameter
from window_cascades.cascade.policy_registry import FitInputs, PolicySettings


def check_share(value: float) -> float:
    if not 0 < value < 1:
        raise ValueError(f"top_share must be in (0, 1), got {value!r}")
    return float(value)


def share_grid(points: int, ensemble_cost: float) -> list[float]:
    return [k / (points + 1) for k in range(1, points + 1)]  # shares in (0, 1), cheapest first


@dataclass(frozen=True)
class LowestShareParameters:
    top_share: float = parameter(
        "top_share",
        0.25,
        "share of held-out samples lowest_share passes on",
        check=check_share,
        cost_grid=CostGrid(share_grid),
    )


@register_policy(
    "lowest_share",
    "the least confident `top_share` of held-out scores",
    parameters=LowestShareParameters,
    sweep="top_share",
)
def fit_lowest_share(inputs: FitInputs, settings: PolicySettings):
    stages = [
        {"lower": None, "upper": float(torch.quantile(c.double(), settings.top_share))}
        for c in inputs.stage_confidence
    ]
    return interval_policy("lowest_share", stages, f"share={settings.top_share:g}")
