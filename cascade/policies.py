"""Cascade policies as per-stage confidence intervals.

A cascade of M members has M - 1 decisions. At stage k (0-based) a sample whose confidence
(the score of the ensemble of the first k + 1 members) lies in ``[lower_k, upper_k]`` is passed
on to member k + 1; every other sample exits with the current prediction and score. Every
policy of the framework is such an interval per stage:

- ``single``: an empty interval (nothing is passed on; the first member alone);
- ``ensemble``: (-inf, inf) (everything reaches the last member; the full ensemble);
- ``single_threshold``: (-inf, t] (exit when confidence > t);
- ``window``: [Q(q - w), Q(q + w)] around the operating threshold tau (see calibration).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch

POLICIES: tuple[str, ...] = ("single", "ensemble", "single_threshold", "window")


def check_policies(names: list[str]) -> list[str]:
    """Validate a list of policy names (known, no repeats) and return it."""
    for name in names:
        if name not in POLICIES:
            raise ValueError(f"unknown policy {name!r}; expected one of {list(POLICIES)}")
    if len(set(names)) != len(names):
        raise ValueError(f"policies are listed twice: {names}")
    return list(names)


@dataclass
class IntervalPolicy:
    """A cascade policy: pass a sample on at stage k when lower_k <= confidence <= upper_k.

    Attributes:
        name: policy name (``single``, ``ensemble``, ``single_threshold``, ``window``).
        bounds: (M - 1) x 2 float64 tensor of [lower, upper] per stage; +-inf for open ends.
        setting: short description of the fitted setting, e.g. ``cov@5,w=0.1``.
        details: per-stage fitted quantities (tau, q, ...) for reports and window.json.
    """

    name: str
    bounds: torch.Tensor
    setting: str = ""
    details: list[dict] = field(default_factory=list)

    @property
    def num_stages(self) -> int:
        """Number of members the policy can use (M)."""
        return self.bounds.shape[0] + 1

    def passes(self, stage: int, confidence: torch.Tensor) -> torch.Tensor:
        """Boolean mask of the samples that stage ``stage`` (0-based) passes on."""
        lower, upper = self.bounds[stage].tolist()
        conf = confidence.double()
        return (conf >= lower) & (conf <= upper)

    def to_dict(self) -> dict:
        """JSON-safe description; infinite bounds are written as the strings "inf"/"-inf"."""

        def _num(x: float):
            return str(x) if math.isinf(x) else x

        return {
            "name": self.name,
            "setting": self.setting,
            "bounds": [[_num(lo), _num(hi)] for lo, hi in self.bounds.tolist()],
            "stages": self.details,
        }

    @classmethod
    def from_dict(cls, data: dict) -> IntervalPolicy:
        """Inverse of :meth:`to_dict`."""
        bounds = torch.tensor(
            [[float(lo), float(hi)] for lo, hi in data["bounds"]], dtype=torch.float64
        ).reshape(-1, 2)
        return cls(data["name"], bounds, data.get("setting", ""), list(data.get("stages", [])))


def single_policy(num_stages: int) -> IntervalPolicy:
    """The first member alone: nothing is passed on."""
    bounds = torch.tensor([[math.inf, -math.inf]] * (num_stages - 1), dtype=torch.float64)
    return IntervalPolicy("single", bounds.reshape(-1, 2))


def ensemble_policy(num_stages: int) -> IntervalPolicy:
    """The full ensemble: every sample reaches every member."""
    bounds = torch.tensor([[-math.inf, math.inf]] * (num_stages - 1), dtype=torch.float64)
    return IntervalPolicy("ensemble", bounds.reshape(-1, 2))
