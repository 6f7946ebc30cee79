"""Offline driver: the same policies and engine over cached logits (no model is run)."""

from __future__ import annotations

from pathlib import Path

import torch

from artifacts.cached_logits import load_cached_logits, load_member_meta
from cascade.calibration import fit_policies
from cascade.engine import run_cascade
from cascade.evaluation import MetricSettings, policy_rows
from cascade.policies import IntervalPolicy
from datamodules.specs import ROLES
from uncertainty.scores import EnsembleState


def load_ensemble_logits(
    logits_dir: str | Path, members: list[str], dataset: str
) -> tuple[list[torch.Tensor], torch.Tensor]:
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
    return [c.logits for c in loaded], loaded[0].targets


def evaluate_cached_logits(
    logits_dir: str | Path,
    members: list[str],
    roles: dict[str, str],
    policies: list[str],
    score: str = "msp",
    target: str = "cov@5",
    width: float = 0.1,
    pass_fraction: float = 0.2,
    settings: MetricSettings | None = None,
) -> tuple[list[dict], dict[str, IntervalPolicy]]:
    """Fit the policies on the held-out dataset and evaluate every dataset.

    Args:
        logits_dir: cache root (``<dir>/<member>/<dataset>.safetensors``).
        members: member folder names, in cascade order.
        roles: dataset name -> role; exactly one ``heldout`` and one ``id``.

    Returns:
        (tidy metric rows, fitted policies by name).
    """
    for name, role in roles.items():
        if role not in ROLES:
            raise ValueError(f"dataset {name!r}: role {role!r} is not one of {list(ROLES)}")
    heldout = [n for n, r in roles.items() if r == "heldout"]
    if len(heldout) != 1 or sum(r == "id" for r in roles.values()) != 1:
        raise ValueError("roles: expected exactly one 'heldout' and one 'id' dataset")
    stage_macs = [float(load_member_meta(logits_dir, m)["macs"]) for m in members]
    held_logits, held_targets = load_ensemble_logits(logits_dir, members, heldout[0])
    confidences, correct = [], []
    state = EnsembleState.from_logits(held_logits[0])
    for k in range(len(members) - 1):
        confidences.append(state.confidence(score))
        correct.append(state.probs.argmax(-1) == held_targets)
        state = state.add(held_logits[k + 1])
    fitted = fit_policies(
        policies, confidences, correct, target, width, pass_fraction, heldout_name=heldout[0]
    )
    data = {name: load_ensemble_logits(logits_dir, members, name) for name in roles}
    rows = []
    for policy in fitted.values():
        results = {
            name: run_cascade(lambda k, idx, lg=lg: lg[k][idx], lg[0].shape[0], policy, score)
            for name, (lg, _) in data.items()
        }
        targets = {name: t for name, (_, t) in data.items()}
        rows.extend(policy_rows(policy, score, results, targets, roles, stage_macs, settings))
    return rows, fitted
