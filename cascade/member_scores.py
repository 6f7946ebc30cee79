"""Per-member scores of a registered score: its parameters chosen by the stated rule, each
member's score on every dataset, and the held-out standardisation its ensemble rule asks for.

Parameters are never chosen on a test set. ``choose_parameters`` reads only the held-out
split and the ``ood_val`` sets; the rule (``--score-selection``):

- ``auto`` (default): ``ood_val`` when a dataset has that role, else ``heldout``;
- ``heldout``: the grid point with the lowest AURC of the member's own score and prediction on
  the held-out split (labels only, no OOD data);
- ``ood_val``: the grid point with the highest AUROC of the held-out split (ID) against the
  pooled ``ood_val`` sets (OpenOOD's rule);
- ``default``: the declared defaults.

Ties (within 1e-12) go to the declared default, then to the earlier grid point. A parameter
pinned by the user (``--score-param knn.k=10``) is not searched. A score of probabilities (GEN)
is chosen the same way for each stage, on the averaged probabilities of the first k members; any
other score once per member (``score_members``), so every member order of a sweep reuses it.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import torch

from window_cascades.uncertainty.feature_scores import LinearHead, MemberInputs
from window_cascades.uncertainty.ood_detection import auroc
from window_cascades.uncertainty.score_registry import ScoreContext, ScoreEntry, score_entry
from window_cascades.uncertainty.selective import aurc
from window_cascades.vocabulary.roles import DatasetRoles

SELECTIONS: tuple[str, ...] = ("auto", "heldout", "ood_val", "default")
"""The parameter-selection rules (``--score-selection``)."""

ROWS = 16384
"""Samples scored at once."""

TIE = 1e-12


@dataclass
class MemberFeatures:
    """What a feature score reads of one member besides its logits.

    Attributes:
        features: dataset name -> N x D features (rows in the logits' order).
        head: the final linear layer, or None.
        statistics: fitted statistics of the training split by name.
        train_size: samples of the training split (KNN's bank), or None.
    """

    features: dict[str, torch.Tensor]
    head: LinearHead | None = None
    statistics: dict[str, dict[str, torch.Tensor]] = field(default_factory=dict)
    train_size: int | None = None


@dataclass
class ParameterChoice:
    """The parameters chosen for one member (or one stage) and why.

    Attributes:
        params: the values used.
        rule: ``heldout`` (lowest held-out AURC), ``ood_val`` (highest AUROC against the
            ``ood_val`` sets), ``default`` or ``pinned`` (nothing searched).
        criterion: ``aurc`` or ``auroc`` (None: nothing searched).
        grid: every grid point tried with its criterion value.
        heldout_mean, heldout_std: the standardisation (``standardised_mean`` scores only).
    """

    params: dict[str, Any]
    rule: str
    criterion: str | None = None
    grid: list[dict] = field(default_factory=list)
    heldout_mean: float | None = None
    heldout_std: float | None = None

    def to_dict(self) -> dict:
        out = {"params": dict(self.params), "rule": self.rule}
        if self.criterion:
            out["criterion"] = self.criterion
            out["grid"] = self.grid
        if self.heldout_std is not None:
            out["heldout_mean"], out["heldout_std"] = self.heldout_mean, self.heldout_std
        return out


def score_label(score: str, pinned: Mapping[str, Any] | None) -> str:
    """The ``score`` column of a run: the name, with the pinned parameters when any
    (``knn(k=10)``)."""
    if not pinned:
        return score
    return f"{score}(" + ",".join(f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}"
                                  for k, v in pinned.items()) + ")"  # fmt: skip


def candidate_grid(
    entry: ScoreEntry, context: ScoreContext, pinned: Mapping[str, Any]
) -> list[dict[str, Any]]:
    """Every combination of the parameters' grids for this data (pinned ones fixed)."""
    axes = []
    for p in entry.parameters:
        if p.name in pinned:
            axes.append((p.validate(pinned[p.name], context),))
        else:
            axes.append(p.grid_for(context) or (p.validate(p.default_for(context), context),))
    names = [p.name for p in entry.parameters]
    return [dict(zip(names, values, strict=True)) for values in itertools.product(*axes)]


def resolve_selection(selection: str, roles: DatasetRoles) -> str:
    """The rule actually applied: ``auto`` is ``ood_val`` with such sets, else ``heldout``.

    Raises:
        ValueError: an unknown rule, or ``ood_val`` without a dataset of that role.
    """
    if selection not in SELECTIONS:
        raise ValueError(f"--score-selection {selection!r}: expected one of {list(SELECTIONS)}")
    has = bool(roles.ood_val)
    if selection == "auto":
        return "ood_val" if has else "heldout"
    if selection == "ood_val" and not has:
        raise ValueError(
            "--score-selection ood_val needs a dataset with role 'ood_val' (--ood-val NAME, or "
            "role: ood_val in the data config)"
        )
    return selection


def choose_parameters(
    entry: ScoreEntry,
    context: ScoreContext,
    pinned: Mapping[str, Any],
    rule: str,
    scores_of: Callable[[dict, str], torch.Tensor],
    heldout_correct: torch.Tensor,
    ood_val: list[str],
    heldout: str,
) -> ParameterChoice:
    """Choose one parameter point by ``rule`` (``resolve_selection``'s result).

    Args:
        entry: the score.
        context: the data's sizes (for the grid and the checks).
        pinned: parameters fixed by the user.
        rule: ``heldout``, ``ood_val`` or ``default``.
        scores_of: ``(params, dataset) -> N confidences``; asked only for ``heldout`` and the
            ``ood_val`` datasets.
        heldout_correct: whether the scored prediction is right, per held-out sample.
        ood_val: the ``ood_val`` dataset names.
        heldout: the held-out dataset's name.
    """
    defaults = {**entry.defaults(context), **{k: v for k, v in pinned.items()}}
    defaults = {p.name: p.validate(defaults[p.name], context) for p in entry.parameters}
    if not entry.parameters:
        return ParameterChoice({}, "default")
    if len(pinned) == len(entry.parameters):
        return ParameterChoice(defaults, "pinned")
    grid = candidate_grid(entry, context, pinned)
    if rule == "default" or len(grid) <= 1:
        return ParameterChoice(defaults, "default")
    table = []
    for params in grid:
        held = scores_of(params, heldout)
        if rule == "ood_val":
            pooled = torch.cat([scores_of(params, name) for name in ood_val])
            value = auroc(held, pooled)
        else:
            value = aurc(held, heldout_correct)
        table.append({"params": params, "value": value})
    sign = -1.0 if rule == "ood_val" else 1.0  # minimise AURC, maximise AUROC
    best = min(sign * t["value"] for t in table)
    tied = [t["params"] for t in table if sign * t["value"] <= best + TIE]
    chosen = defaults if defaults in tied else tied[0]
    return ParameterChoice(chosen, rule, "auroc" if rule == "ood_val" else "aurc", table)


def member_score_rows(
    entry: ScoreEntry,
    logits: torch.Tensor,
    features: torch.Tensor | None,
    member: MemberFeatures | None,
    params: Mapping[str, Any],
    where: str,
) -> torch.Tensor:
    """One member's score on one dataset (N, float64), ``ROWS`` samples at a time.

    Raises:
        ValueError: NaN/Inf scores (``where`` names the member and dataset).
    """
    parts = []
    for a in range(0, logits.shape[0], ROWS):
        z = logits[a : a + ROWS]
        if entry.inputs == "features":
            f = features[a : a + ROWS] if features is not None else None
            stats = member.statistics if member is not None else {}
            inputs = MemberInputs(z, f, member.head if member is not None else None)
            parts.append(entry.fn(inputs, stats, **params))
        elif entry.inputs == "logits":
            parts.append(entry.fn(z.float(), **params))
        else:
            parts.append(entry.fn(z.float().softmax(dim=-1), **params))
    out = torch.cat(parts).double() if parts else torch.zeros(0, dtype=torch.float64)
    if not torch.isfinite(out).all():
        raise ValueError(f"{where}: the {entry.name} scores contain NaN or Inf")
    return out


@dataclass
class MemberScores:
    """A score's per-member values on every dataset, and how they were obtained.

    Attributes:
        score: the registered score.
        label: the ``score`` column (``score_label``).
        vectors: dataset -> per member N confidences (standardised on the held-out split for a
            ``standardised_mean`` score).
        choices: per member, the parameters chosen and the standardisation.
        members: the members' names.
    """

    score: str
    label: str
    vectors: dict[str, list[torch.Tensor]]
    choices: list[ParameterChoice]
    members: list[str]

    def subset(self, picked: list[int]) -> MemberScores:
        """The same scores for the members at ``picked`` (a cascade order)."""
        return MemberScores(
            self.score,
            self.label,
            {name: [v[i] for i in picked] for name, v in self.vectors.items()},
            [self.choices[i] for i in picked],
            [self.members[i] for i in picked],
        )

    def summary(self) -> dict:
        """Per member, the rule, the parameters and the standardisation (``summary.json``)."""
        return {m: c.to_dict() for m, c in zip(self.members, self.choices, strict=True)}


def score_members(
    score: str,
    logits: Mapping[str, list[torch.Tensor]],
    targets: Mapping[str, torch.Tensor],
    roles: DatasetRoles,
    members: list[str],
    features: list[MemberFeatures] | None = None,
    selection: str = "auto",
    pinned: Mapping[str, Any] | None = None,
) -> MemberScores:
    """Every member's score on every dataset of ``logits``, at parameters chosen per member
    (see the module docstring), standardised on the held-out split when the score's ensemble
    rule is ``standardised_mean``.

    Args:
        score: a registered score whose ensemble rule is not ``probs`` (those are chosen per
            stage, ``stage_probs_choices``).
        logits: dataset -> one N x C tensor per member.
        targets: dataset -> N labels (-1 unlabelled).
        roles: the datasets' roles.
        members: the members' names (messages, summary).
        features: per member, its features, head and statistics (feature scores).
        selection: one of ``SELECTIONS``.
        pinned: parameters fixed by the user.

    Raises:
        ValueError: a feature score without features, or a held-out standard deviation of 0.
    """
    entry, pinned = score_entry(score), dict(pinned or {})
    rule = resolve_selection(selection, roles)
    heldout, ood_val = roles.heldout, roles.ood_val
    if entry.needs_features and features is None:
        raise ValueError(f"score {score!r} reads the members' features; none were loaded")
    vectors = {name: [] for name in logits}
    choices = []
    for k, member in enumerate(members):
        mf = features[k] if features is not None else None
        num_features = None
        if mf is not None and heldout in mf.features:
            num_features = mf.features[heldout].shape[1]
        train_size = mf.train_size if mf is not None else None
        context = ScoreContext(logits[heldout][k].shape[1], num_features, train_size)
        scores_of = _scorer(entry, logits, k, mf, member)
        correct = logits[heldout][k].argmax(dim=-1) == targets[heldout]
        choice = choose_parameters(
            entry, context, pinned, rule, scores_of, correct, ood_val, heldout
        )
        shift, spread = _standardisation(entry, scores_of(choice.params, heldout), member, heldout)
        if entry.ensemble == "standardised_mean":
            choice.heldout_mean, choice.heldout_std = shift, spread
        for name in logits:
            vectors[name].append((scores_of(choice.params, name) - shift) / spread)
        choices.append(choice)
    return MemberScores(score, score_label(score, pinned), vectors, choices, list(members))


def _scorer(
    entry: ScoreEntry,
    logits: Mapping[str, list[torch.Tensor]],
    k: int,
    member: MemberFeatures | None,
    name: str,
) -> Callable[[dict, str], torch.Tensor]:
    """``(params, dataset) -> scores`` of member ``k``, each computed once."""
    cache: dict[tuple, torch.Tensor] = {}

    def scores_of(params: dict, dataset: str) -> torch.Tensor:
        key = (tuple(sorted(params.items())), dataset)
        if key not in cache:
            f = member.features.get(dataset) if member is not None else None
            where = f"member {name!r} on {dataset!r}"
            cache[key] = member_score_rows(entry, logits[dataset][k], f, member, params, where)
        return cache[key]

    return scores_of


def _standardisation(
    entry: ScoreEntry, heldout_scores: torch.Tensor, member: str, heldout: str
) -> tuple[float, float]:
    """(mean, standard deviation) of a ``standardised_mean`` score on the held-out split;
    (0, 1) for any other rule."""
    if entry.ensemble != "standardised_mean":
        return 0.0, 1.0
    shift, spread = float(heldout_scores.mean()), float(heldout_scores.std(correction=0))
    if not spread > 1e-12 * max(1.0, abs(shift)):  # equal up to rounding
        raise ValueError(
            f"member {member!r}: its {entry.name} scores on the held-out split {heldout!r} are "
            "all equal; they cannot be standardised (a constant score ranks nothing)"
        )
    return shift, spread


def stage_probs_choices(
    score: str,
    heldout_probs: list[torch.Tensor],
    heldout_targets: torch.Tensor,
    ood_val_probs: list[list[torch.Tensor]],
    roles: DatasetRoles,
    selection: str = "auto",
    pinned: Mapping[str, Any] | None = None,
) -> list[ParameterChoice]:
    """The parameters of a score of probabilities (GEN) for each stage k = 1..M, chosen on the
    averaged probabilities of the first k members by the rule (see the module docstring).

    Args:
        score: a registered score with ensemble rule ``probs``.
        heldout_probs: per k, the held-out averaged probabilities of the first k members.
        heldout_targets: the held-out labels.
        ood_val_probs: per k, the averaged probabilities on each ``ood_val`` set.
        roles: the datasets' roles.
        selection: one of ``SELECTIONS``.
        pinned: parameters fixed by the user.
    """
    entry, pinned = score_entry(score), dict(pinned or {})
    rule = resolve_selection(selection, roles)
    names = roles.ood_val
    choices = []
    for k, probs in enumerate(heldout_probs):
        context = ScoreContext(probs.shape[1])
        sets = {roles.heldout: probs, **dict(zip(names, ood_val_probs[k], strict=True))}

        def scores_of(params, name, sets=sets):
            return entry.fn(sets[name], **params).double()

        correct = probs.argmax(dim=-1) == heldout_targets
        choices.append(
            choose_parameters(
                entry, context, pinned, rule, scores_of, correct, names, roles.heldout
            )
        )
    return choices


def probs_score_function(score: str, choices: list[ParameterChoice]):
    """(averaged probabilities, k) -> confidence at the parameters chosen for k members."""
    fn = score_entry(score).fn
    params = [dict(c.params) for c in choices]

    def probs_score(probs: torch.Tensor, count: int) -> torch.Tensor:
        return fn(probs, **params[count - 1])

    return probs_score
