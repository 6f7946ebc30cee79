"""Cascade policies: which samples stage k passes on to member k + 1.

A cascade of M members has M - 1 decisions, at stages 1..M-1 (stages are numbered from 1: stage
1 runs member 1 on every sample). At stage k a policy looks at each sample's confidence (the
score of the ensemble of the first k members) and passes it on or lets it exit with the
current prediction and score. Interval policies pass a sample when
``lower_k <= confidence <= upper_k``:

- ``single``: an empty interval (nothing is passed on; the first member alone);
- ``ensemble``: (-inf, inf) (everything reaches the last member; the full ensemble);
- ``single_threshold``: (-inf, t] (exit when confidence > t);
- ``window``: the paper's window around the operating threshold tau (fitted at calibration);
- ``window_adjusted``: the same tau, window re-derived on an unlabelled test mixture.

``random`` (a sanity baseline) passes a fixed fraction of samples chosen by a hash of the
sample's dataset index, so online and offline runs pass the same samples.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch


def check_stage(stage: int, num_stages: int) -> None:
    """Refuse a stage a cascade of ``num_stages`` members does not decide at: stages are
    numbered from 1, and stage M passes nothing on (so a 0-based caller fails here, not later
    with the wrong row).

    Args:
        stage: the stage asked for, numbered from 1.
        num_stages: M, the number of members of the cascade.
    """
    if not 1 <= stage < num_stages:
        raise ValueError(
            f"stage {stage}: a cascade of {num_stages} members passes samples on at stages "
            f"1..{num_stages - 1} (stages are numbered from 1)"
        )


@dataclass
class IntervalPolicy:
    """A cascade policy: pass a sample on at stage k when lower_k <= confidence <= upper_k.

    Attributes:
        name: policy name (see ``window_cascades.cascade.policy_registry``).
        bounds: (M - 1) x 2 float64 tensor of [lower, upper] per stage (row k - 1 for stage k);
            +-inf for open ends.
        setting: short description of the fitted setting, e.g. ``cov@5,w=0.1``.
        details: per-stage fitted quantities (tau, q, ...) for reports and fitted_cascade.json.
    """

    name: str
    bounds: torch.Tensor
    setting: str = ""
    details: list[dict] = field(default_factory=list)

    @property
    def num_stages(self) -> int:
        """Number of members the policy can use (M)."""
        return self.bounds.shape[0] + 1

    def passes(
        self, stage: int, confidence: torch.Tensor, sample_ids: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Boolean mask of the samples that stage ``stage`` (1..M-1) passes on to member
        ``stage + 1``.

        Args:
            stage: the stage deciding, 1..M-1 (stage k has run members 1..k).
            confidence: N confidences of the ensemble of the first ``stage`` members.
            sample_ids: the samples' dataset indices (not read by interval policies).
        """
        check_stage(stage, self.num_stages)
        lower, upper = self.bounds[stage - 1].tolist()
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


def _uniform_hash(ids: torch.Tensor, seed: int, position: int) -> torch.Tensor:
    """A deterministic uniform number in [0, 1) per (sample id, seed, decision); 32-bit mixing.
    ``position`` is the decision's 0-based place, stage - 1 (the hash's inputs are fixed: a
    seed passes the same samples in every run that has used it)."""
    m = 2**32
    x = (ids.long() * 2654435761 + seed * 40503 + position * 97 + 12345) % m
    for _ in range(2):
        x = (((x >> 16) ^ x) * 0x45D9F3B) % m
    x = (x >> 16) ^ x
    return x.double() / m


@dataclass
class RandomPolicy:
    """Pass a fixed fraction of samples at every stage, chosen by a hash of the sample id.

    Attributes:
        num_stages: M.
        fraction: probability that a sample is passed on at each stage.
        seed: hash seed.
        name: the policy's name (``random``).
    """

    num_stages: int
    fraction: float
    seed: int = 0
    name: str = "random"

    @property
    def setting(self) -> str:
        """Short description of the setting, e.g. ``pass=0.2,seed=0``."""
        return f"pass={self.fraction:g},seed={self.seed}"

    def passes(
        self, stage: int, confidence: torch.Tensor, sample_ids: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Boolean mask of the samples that stage ``stage`` (1..M-1) passes on: those whose
        hash of (dataset index, seed, stage) falls below ``fraction``.

        Args:
            stage: the stage deciding, 1..M-1.
            confidence: N confidences (only their number is read).
            sample_ids: the samples' dataset indices, which the hash reads (default 0..N-1), so that
                online and offline runs pass the same samples.
        """
        check_stage(stage, self.num_stages)
        if sample_ids is None:
            raise ValueError("the random policy needs the samples' dataset indices")
        return _uniform_hash(sample_ids.cpu(), self.seed, stage - 1) < self.fraction

    def to_dict(self) -> dict:
        """JSON-safe description (the fraction and the seed)."""
        return {
            "name": self.name,
            "setting": self.setting,
            "num_stages": self.num_stages,
            "fraction": self.fraction,
            "seed": self.seed,
        }


CascadePolicy = IntervalPolicy | RandomPolicy


def policy_from_dict(data: dict) -> CascadePolicy:
    """Inverse of ``to_dict`` for every policy.

    Args:
        data: what a policy's ``to_dict`` wrote (``fitted_cascade.json``'s ``policies`` entries).
    """
    if data["name"] == "random":
        return RandomPolicy(int(data["num_stages"]), float(data["fraction"]), int(data["seed"]))
    bounds = torch.tensor(
        [[float(lo), float(hi)] for lo, hi in data["bounds"]], dtype=torch.float64
    ).reshape(-1, 2)
    return IntervalPolicy(
        data["name"], bounds, data.get("setting", ""), list(data.get("stages", []))
    )


def single_policy(num_stages: int) -> IntervalPolicy:
    """The first member alone: nothing is passed on.

    Args:
        num_stages: M, the number of members.
    """
    bounds = torch.tensor([[math.inf, -math.inf]] * (num_stages - 1), dtype=torch.float64)
    return IntervalPolicy("single", bounds.reshape(-1, 2))


def ensemble_policy(num_stages: int) -> IntervalPolicy:
    """The full ensemble: every sample reaches every member.

    Args:
        num_stages: M, the number of members.
    """
    bounds = torch.tensor([[-math.inf, math.inf]] * (num_stages - 1), dtype=torch.float64)
    return IntervalPolicy("ensemble", bounds.reshape(-1, 2))
