"""An experiment's cached logits: every member on every dataset, checked for consistency.

Reads the layout of ``window_cascades.artifacts.cached_logits`` for a list of members (cascade
order) and a [`window_cascades.vocabulary.roles.DatasetRoles`][], and returns the in-memory form
the offline driver (``window_cascades.cascade.offline``) evaluates.
"""

from __future__ import annotations

from pathlib import Path

import torch

from window_cascades.artifacts.cached_logits import (
    GENERATION_KEY,
    find_logits_file,
    load_cached_logits,
)
from window_cascades.artifacts.member_meta import load_member_meta
from window_cascades.cascade.field_checks import FieldError
from window_cascades.cascade.metric_registry import MetricSettings
from window_cascades.cascade.offline import EnsembleLogits, evaluate_experiment
from window_cascades.cascade.policy_registry import PolicySettings
from window_cascades.vocabulary.roles import LABELLED_ROLES, DatasetRoles


def load_ensemble_logits(
    logits_dir: str | Path,
    members: list[str],
    dataset: str,
    generations: dict[str, str | None] | None = None,
    num_classes: dict[str, int] | None = None,
) -> EnsembleLogits:
    """Per-member logits of one dataset and its targets, checked for consistency.

    ``generations``: each member's caching run from its ``meta.json``, for the members that
    have one (None: it names none); a file of another run is refused, see
    [`window_cascades.artifacts.cached_logits.load_cached_logits`][]. ``num_classes``: each
    member's class count from its ``meta.json``, which the logits' columns must match.
    """
    generations, num_classes = generations or {}, num_classes or {}
    loaded = [
        load_cached_logits(logits_dir, m, dataset, generations.get(m), m in generations)
        for m in members
    ]
    check_members_agree(
        logits_dir,
        dataset,
        members,
        [find_logits_file(logits_dir, m, dataset) for m in members],
        [c.logits.shape[1] for c in loaded],
        [c.targets for c in loaded],
        num_classes,
    )
    return EnsembleLogits([c.logits for c in loaded], loaded[0].targets)


def check_members_agree(
    logits_dir: str | Path,
    dataset: str,
    members: list[str],
    files: list[Path],
    classes: list[int],
    targets: list[torch.Tensor],
    num_classes: dict[str, int],
) -> None:
    """Refuse members whose logits of one dataset disagree: a class count other than their
    ``meta.json``'s, different class counts, or different targets (other samples).

    Args:
        logits_dir: the logits folder.
        dataset: the dataset's name.
        members: the members, in cascade order.
        files: each member's logits file.
        classes: each member's class count in its file.
        targets: each member's targets.
        num_classes: each member's class count from its ``meta.json`` (members without one
            absent).
    """
    for m, f, c in zip(members, files, classes, strict=True):
        if m in num_classes and c != num_classes[m]:
            raise FieldError(
                f"{Path(logits_dir) / m / 'meta.json'}: field 'num_classes' is {num_classes[m]}, "
                f"but {f} holds logits of {c} classes; the meta.json is not of these logits "
                "(cache this member's logits again)"
            )
    counts = dict(zip(members, classes, strict=True))
    if len(set(counts.values())) != 1:
        raise ValueError(f"dataset {dataset!r}: members have different class counts {counts}")
    for m, t in zip(members[1:], targets[1:], strict=True):
        if not torch.equal(t, targets[0]):
            raise ValueError(
                f"dataset {dataset!r}: targets of member {m!r} differ from {members[0]!r}; "
                "the cached logits were not made on the same samples"
            )


MEMBER_UNITS = "member evaluations (no MACs given: every member counts 1)"
"""The unit of the cost when no member has MACs: every member counts 1."""


def member_macs(
    logits_dir: str | Path, members: list[str], macs: dict[str, float] | None = None
) -> tuple[list[float], str]:
    """Each member's MACs per sample: ``macs`` (e.g. from ``--macs m0=0.39e9``) first, then
    its ``meta.json``; with neither for any member, every member counts 1.

    Returns:
        (MACs per member, the unit: ``"MACs"`` or [`MEMBER_UNITS`][]).

    Raises:
        ValueError: ``macs`` names an unknown member or a value that is not > 0, or only some
            members have MACs (the costs would mix units).
    """
    macs = dict(macs or {})
    unknown = sorted(set(macs) - set(members))
    if unknown:
        raise ValueError(f"--macs names unknown member(s) {unknown}; the members are {members}")
    for name, value in macs.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
            raise ValueError(f"--macs {name}={value!r}: MACs must be a positive number")
    found = {}
    for m in members:
        if m in macs:
            found[m] = float(macs[m])
        elif (Path(logits_dir) / m / "meta.json").is_file():
            found[m] = float(load_member_meta(logits_dir, m)["macs"])
    if not found:
        return [1.0] * len(members), MEMBER_UNITS
    missing = [m for m in members if m not in found]
    if missing:
        raise ValueError(
            f"no MACs for member(s) {missing} (no meta.json, not in --macs) while others have "
            "them; give --macs for every member, e.g. --macs "
            + " ".join(f"{m}=1e9" for m in missing)
        )
    return [found[m] for m in members], "MACs"


def load_experiment(
    logits_dir: str | Path,
    members: list[str],
    roles: DatasetRoles,
    macs: dict[str, float] | None = None,
) -> tuple[dict[str, EnsembleLogits], list[float]]:
    """All datasets' logits and the members' MACs (``macs``, else meta.json, else 1 each: see
    [`member_macs`][])."""
    roles = DatasetRoles(roles)
    if not members:
        raise ValueError("at least one member is needed")
    repeated = sorted({m for m in members if members.count(m) > 1})
    if repeated:
        raise ValueError(
            f"member(s) {repeated} given twice: an ensemble of a model with itself is the single "
            "model at a higher cost; give distinct members"
        )
    for m in members:
        if not (Path(logits_dir) / m).is_dir():
            raise FileNotFoundError(f"member folder not found: {Path(logits_dir) / m}")
    metas = {
        m: load_member_meta(logits_dir, m)
        for m in members
        if (Path(logits_dir) / m / "meta.json").is_file()
    }
    classes = {m: meta["num_classes"] for m, meta in metas.items()}
    if len(set(classes.values())) > 1:
        raise ValueError(f"members have different class counts in meta.json: {classes}")
    stage_macs, _ = member_macs(logits_dir, members, macs)
    generations = {m: meta.get(GENERATION_KEY) for m, meta in metas.items()}
    data = {
        name: load_ensemble_logits(logits_dir, members, name, generations, classes)
        for name in roles
    }
    check_labelled(data, roles)
    check_distinct_members(data[roles.heldout].logits, members)
    return data, stage_macs


def check_labelled(data: dict[str, EnsembleLogits], roles: DatasetRoles) -> None:
    """Refuse a dataset with unlabelled samples (target -1) in a labelled role."""
    for name, role in roles.items():
        if role in LABELLED_ROLES:
            unlabelled = int((data[name].targets < 0).sum())
            if unlabelled:
                raise ValueError(
                    f"dataset {name!r} has role {role!r} but {unlabelled} of its "
                    f"{data[name].num_samples} samples are unlabelled (target -1); labelled roles "
                    "(heldout, id, shift) need every target: give an unlabelled set as --ood"
                )


def check_distinct_members(heldout_logits: list[torch.Tensor], members: list[str]) -> None:
    """Refuse two members whose held-out logits are identical (the same model twice)."""
    for i in range(len(members)):
        for j in range(i + 1, len(members)):
            if torch.equal(heldout_logits[i], heldout_logits[j]):
                raise ValueError(
                    f"members {members[i]!r} and {members[j]!r} have identical held-out logits "
                    "(the same model twice?): their ensemble is the single model at a higher "
                    "cost; give distinct members"
                )


def evaluate_cached_logits(
    logits_dir: str | Path,
    members: list[str],
    roles: DatasetRoles,
    policies: list[str],
    score: str = "msp",
    policy_settings: PolicySettings | None = None,
    metric_settings: MetricSettings | None = None,
    temperature_scaling: bool = False,
) -> tuple[list[dict], dict]:
    """Load the cached logits and evaluate (see
    [`window_cascades.cascade.offline.evaluate_experiment`][])."""
    data, stage_macs = load_experiment(logits_dir, members, roles)
    rows, fitted, _ = evaluate_experiment(
        data,
        DatasetRoles(roles),
        stage_macs,
        policies,
        score,
        policy_settings,
        metric_settings,
        temperature_scaling,
    )
    return rows, fitted
