"""Offline driver: the same policies and engine over cached logits (no model is run).

Loading is separate from evaluating, so a sweep over widths, targets or definitions reads the
logits once. Per member and dataset the softmax statistics are computed once and shared by
every policy (the engine accepts them in place of logits).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from artifacts.cached_logits import load_cached_logits, load_member_meta
from cascade.calibration import PolicySettings, fit_policies
from cascade.engine import run_cascade
from cascade.evaluation import MetricSettings, policy_rows
from cascade.policies import CascadePolicy
from cascade.stage_scores import Temperatures, fit_temperatures, stage_confidences
from datamodules.specs import ROLES
from uncertainty.scod import scod_mixture
from uncertainty.scores import EnsembleState


@dataclass
class EnsembleLogits:
    """Cached logits of every member on one dataset (same samples, same order)."""

    logits: list[torch.Tensor]
    targets: torch.Tensor

    @property
    def num_samples(self) -> int:
        return self.targets.numel()


def check_roles(roles: dict[str, str]) -> None:
    """Roles must be known, with exactly one ``heldout`` and one ``id`` dataset."""
    for name, role in roles.items():
        if role not in ROLES:
            raise ValueError(f"dataset {name!r}: role {role!r} is not one of {list(ROLES)}")
    for role in ("heldout", "id"):
        count = sum(r == role for r in roles.values())
        if count != 1:
            raise ValueError(f"roles: expected exactly one {role!r} dataset, found {count}")


def load_ensemble_logits(
    logits_dir: str | Path, members: list[str], dataset: str
) -> EnsembleLogits:
    """Per-member logits of one dataset and its targets, checked for consistency."""
    loaded = [load_cached_logits(logits_dir, m, dataset) for m in members]
    classes = {m: c.logits.shape[1] for m, c in zip(members, loaded, strict=True)}
    if len(set(classes.values())) != 1:
        raise ValueError(f"dataset {dataset!r}: members have different class counts {classes}")
    for m, c in zip(members[1:], loaded[1:], strict=True):
        if not torch.equal(c.targets, loaded[0].targets):
            raise ValueError(
                f"dataset {dataset!r}: targets of member {m!r} differ from {members[0]!r}; "
                "the cached logits were not made on the same samples"
            )
    return EnsembleLogits([c.logits for c in loaded], loaded[0].targets)


def load_experiment(
    logits_dir: str | Path, members: list[str], roles: dict[str, str]
) -> tuple[dict[str, EnsembleLogits], list[float]]:
    """All datasets' logits and the members' MACs (from meta.json)."""
    check_roles(roles)
    if not members:
        raise ValueError("at least one member is needed")
    metas = [load_member_meta(logits_dir, m) for m in members]
    classes = {m: meta["num_classes"] for m, meta in zip(members, metas, strict=True)}
    if len(set(classes.values())) != 1:
        raise ValueError(f"members have different class counts in meta.json: {classes}")
    data = {name: load_ensemble_logits(logits_dir, members, name) for name in roles}
    return data, [float(meta["macs"]) for meta in metas]


def test_mixture_logits(
    data: dict[str, EnsembleLogits], roles: dict[str, str], ratio: float = 1.0, seed: int = 0
) -> list[torch.Tensor]:
    """Per member, logits of the unlabelled test mixture: ID test + pooled OOD sets at ``ratio``."""
    id_name = next(n for n, r in roles.items() if r == "id")
    oods = [n for n, r in roles.items() if r == "ood"]
    if not oods:
        raise ValueError("window_adjusted needs at least one dataset with role 'ood'")
    pooled = [
        torch.cat([data[n].logits[k] for n in oods]) for k in range(len(data[id_name].logits))
    ]
    keep_id, keep_ood = scod_mixture(data[id_name].num_samples, pooled[0].shape[0], ratio, seed)
    return [
        torch.cat([z[keep_id], p[keep_ood]])
        for z, p in zip(data[id_name].logits, pooled, strict=True)
    ]


def _member_states(
    logits: list[torch.Tensor], temperatures: Temperatures | None
) -> list[EnsembleState]:
    return [
        EnsembleState.from_logits(
            z if temperatures is None else temperatures.scale(k, z),
            temperatures.ensembles if temperatures else None,
        )
        for k, z in enumerate(logits)
    ]


def evaluate_experiment(
    data: dict[str, EnsembleLogits],
    roles: dict[str, str],
    stage_macs: list[float],
    policies: list[str],
    score: str = "msp",
    policy_settings: PolicySettings | None = None,
    metric_settings: MetricSettings | None = None,
    temperature_scaling: bool = False,
) -> tuple[list[dict], dict[str, CascadePolicy], Temperatures | None]:
    """Fit the policies on the held-out dataset and evaluate every dataset.

    Returns:
        (tidy metric rows, fitted policies by name, fitted temperatures or None).
    """
    check_roles(roles)
    policy_settings = policy_settings or PolicySettings()
    heldout = next(n for n, r in roles.items() if r == "heldout")
    held = data[heldout]
    temperatures = fit_temperatures(held.logits, held.targets) if temperature_scaling else None
    confidences, correct = stage_confidences(held.logits, score, held.targets, temperatures)
    mixture = None
    if "window_adjusted" in policies:
        mix = test_mixture_logits(data, roles, seed=policy_settings.seed)
        mixture, _ = stage_confidences(mix, score, None, temperatures)
    fitted = fit_policies(
        policies, confidences, correct, policy_settings, mixture, heldout_name=heldout
    )
    states = {name: _member_states(d.logits, temperatures) for name, d in data.items()}
    rows = []
    for policy in fitted.values():
        results = {
            name: run_cascade(
                lambda k, idx, st=states[name]: st[k].select(idx),
                d.num_samples,
                policy,
                score,
            )
            for name, d in data.items()
        }
        targets = {name: d.targets for name, d in data.items()}
        rows.extend(
            policy_rows(policy, score, results, targets, roles, stage_macs, metric_settings)
        )
    return rows, fitted, temperatures


def evaluate_cached_logits(
    logits_dir: str | Path,
    members: list[str],
    roles: dict[str, str],
    policies: list[str],
    score: str = "msp",
    policy_settings: PolicySettings | None = None,
    metric_settings: MetricSettings | None = None,
    temperature_scaling: bool = False,
) -> tuple[list[dict], dict[str, CascadePolicy]]:
    """Load the cached logits and evaluate (see :func:`evaluate_experiment`)."""
    data, stage_macs = load_experiment(logits_dir, members, roles)
    rows, fitted, _ = evaluate_experiment(
        data,
        roles,
        stage_macs,
        policies,
        score,
        policy_settings,
        metric_settings,
        temperature_scaling,
    )
    return rows, fitted
