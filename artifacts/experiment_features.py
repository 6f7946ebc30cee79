"""An experiment's cached features, heads and training statistics, for feature scores.

Read beside the logits (``window_cascades.artifacts.experiment_logits``) only when a feature
score is asked: every member's features on every dataset (the ``train`` set's only to fit the
statistics), its final linear layer when a score or statistic reads it (checked to reproduce
the cached held-out logits), and its statistics of the training split, read from ``stats/`` or
fitted once and written there (``window_cascades.artifacts.score_statistics``).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import torch

from window_cascades.artifacts.cached_features import (
    check_head_reproduces_logits,
    load_cached_features,
    load_head,
)
from window_cascades.artifacts.cached_logits import GENERATION_KEY
from window_cascades.artifacts.member_meta import load_member_meta
from window_cascades.artifacts.score_statistics import MemberSource, member_statistics
from window_cascades.cascade.member_scores import MemberFeatures
from window_cascades.cascade.prepared_experiment import EnsembleLogits
from window_cascades.uncertainty.feature_statistics import MAX_BANK, TrainInputs
from window_cascades.uncertainty.score_registry import (
    ScoreContext,
    score_entry,
    statistic_entry,
    statistics_for,
)
from window_cascades.vocabulary.roles import DatasetRoles


def statistic_values(asked: list[tuple[str, Mapping]], context: ScoreContext) -> dict[str, tuple]:
    """Per parametrised statistic (ReAct's ``activations``), the values it is fitted at: its
    score parameter's grid and default for this data, and every pinned value.

    Args:
        asked: (score, pinned parameters) of every run of the sweep.
        context: the data's sizes.
    """
    values: dict[str, set] = {}
    for score, pinned in asked:
        for name in statistics_for([score]):
            by = statistic_entry(name).parametrised_by
            if by is None or by[0] != score:
                continue
            declared = score_entry(score).parameter(by[1])
            found = values.setdefault(name, set())
            if by[1] in pinned:
                found.add(declared.validate(pinned[by[1]], context))
            else:
                found |= set(declared.grid_for(context))
                found.add(declared.validate(declared.default_for(context), context))
    return {name: tuple(sorted(v)) for name, v in values.items()}


def load_member_features(
    logits_dir: str | Path,
    members: list[str],
    roles: DatasetRoles,
    data: Mapping[str, EnsembleLogits],
    asked: list[tuple[str, Mapping]],
) -> list[MemberFeatures]:
    """Every member's features, head and training statistics for the asked feature scores.

    Args:
        logits_dir: the cache's root.
        members: the member folders, in cascade order.
        roles: the datasets' roles (a ``train`` set is needed for statistics).
        data: the members' logits (rows and classes are checked against them).
        asked: (score, pinned parameters) of every run of the sweep.

    Raises:
        FileNotFoundError: a missing features or head file (the message says how to cache it).
        ValueError: features that do not fit their logits, or a head that does not reproduce
            the held-out logits.
    """
    scores = [s for s, _ in asked if score_entry(s).needs_features]
    names = statistics_for(scores)
    needs_head = any(score_entry(s).needs_head for s in scores) or any(
        statistic_entry(n).needs_head for n in names
    )
    out = []
    for k, member in enumerate(members):
        meta_path = Path(logits_dir) / member / "meta.json"
        meta = load_member_meta(logits_dir, member) if meta_path.is_file() else {}
        generation = meta.get(GENERATION_KEY)
        features = {
            name: load_cached_features(
                logits_dir, member, name, generation, data[name].logits[k].shape[0]
            )
            for name in roles
            if name != roles.train or names
        }
        head = load_head(logits_dir, member, generation) if needs_head else None
        if head is not None:
            held = roles.heldout
            where = f"member {member!r} ({Path(logits_dir) / member})"
            check_head_reproduces_logits(head, features[held], data[held].logits[k], where)
        stats, train_size = {}, None
        if names:
            train_features = features.pop(roles.train)
            train_size = min(train_features.shape[0], MAX_BANK)
            num_classes = data[roles.heldout].logits[k].shape[1]
            context = ScoreContext(num_classes, train_features.shape[1], train_size)
            train = TrainInputs(train_features, data[roles.train].targets, head, num_classes)
            source = MemberSource(
                Path(logits_dir), member, roles.train, generation, meta.get("checkpoint_sha256")
            )
            stats = member_statistics(source, names, train, statistic_values(asked, context))
        out.append(MemberFeatures(features, head, stats, train_size))
    return out


def feature_scores_asked(asked: list[tuple[str, Mapping]]) -> bool:
    """Whether any asked score reads the members' features."""
    return any(score_entry(s).needs_features for s, _ in asked)


def evaluated_logits(
    data: Mapping[str, EnsembleLogits], roles: DatasetRoles
) -> tuple[dict[str, list[torch.Tensor]], dict[str, torch.Tensor]]:
    """(logits, targets) of the datasets a score is computed on: every dataset but the
    training split (its statistics are fitted on it, nothing is scored on it)."""
    names = [n for n in data if n != roles.train]
    return {n: data[n].logits for n in names}, {n: data[n].targets for n in names}
