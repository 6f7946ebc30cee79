"""The shared preparation of an offline evaluation: every member's logits per dataset, and,
computed once per sweep, the held-out stage scores and every ensemble prefix's per-sample
outputs (``SampleOutputs``) on every evaluated dataset. ``window_cascades.cascade.offline``
evaluates policies on it. A registered score other than the original logit scores brings its
members' scores (``window_cascades.cascade.member_scores``: parameters chosen by the stated rule,
standardised on the held-out split) or, for a score of probabilities with parameters (GEN), the
parameters chosen per stage."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from window_cascades.cascade.member_scores import (
    MemberScores,
    ParameterChoice,
    probs_score_function,
    score_members,
    stage_probs_choices,
)
from window_cascades.cascade.sample_outputs import SampleOutputs
from window_cascades.cascade.stage_scores import (
    Temperatures,
    fit_temperatures,
    member_states,
    prefix_states,
    stage_confidences,
)
from window_cascades.uncertainty.scod import scod_mixture
from window_cascades.uncertainty.score_registry import ScoreEntry, score_entry
from window_cascades.uncertainty.scores import EnsembleState, ProbsScore
from window_cascades.vocabulary.roles import DatasetRoles


@dataclass
class EnsembleLogits:
    """Cached logits of every member on one dataset (same samples, same order)."""

    logits: list[torch.Tensor]
    targets: torch.Tensor

    @property
    def num_samples(self) -> int:
        return self.targets.numel()


def mixture_logits(
    data: dict[str, EnsembleLogits], roles: DatasetRoles, ratio: float = 1.0, seed: int = 0
) -> list[torch.Tensor]:
    """Per member, logits of the unlabelled test mixture: ID test + pooled OOD sets at ``ratio``."""
    return mixture_rows({name: d.logits for name, d in data.items()}, roles, ratio, seed)


def mixture_rows(
    per_member: dict[str, list[torch.Tensor]], roles: DatasetRoles, ratio: float, seed: int
) -> list[torch.Tensor]:
    """Per member, the rows (logits, or member scores) of the unlabelled test mixture: the ID
    test set and the pooled ``ood`` sets, subsampled to ``ratio`` OOD : ID with ``seed``."""
    id_name, oods = roles.id, roles.ood
    if not oods:
        raise ValueError("window_adjusted needs at least one dataset with role 'ood'")
    members = range(len(per_member[id_name]))
    pooled = [torch.cat([per_member[n][k] for n in oods]) for k in members]
    keep_id, keep_ood = scod_mixture(
        per_member[id_name][0].shape[0], pooled[0].shape[0], ratio, seed
    )
    return [
        torch.cat([z[keep_id], p[keep_ood]])
        for z, p in zip(per_member[id_name], pooled, strict=True)
    ]


@dataclass
class PreparedExperiment:
    """Everything a sweep shares: logits, held-out stage scores and per-sample outputs.

    Attributes:
        data: logits per dataset (in their stored float dtype); None when prepared from
            per-sample outputs alone ([`prepare_from_outputs`][]: no policy, score or
            diagnostic that reads logits is then available).
        roles: dataset -> role.
        stage_macs: MACs per member.
        score: the confidence score.
        temperatures: fitted temperatures or None.
        heldout_confidence: held-out scores of the ensembles of the first 1..M-1 members.
        heldout_correct: held-out correctness of the same ensembles.
        prefix_outputs: per evaluated dataset, the per-sample outputs of the ensembles of the
            first 1..M members.
        member_scores: the members' own scores (registered scores combined by their members'
            scores, other than ``max_logit`` and ``energy``), else None.
        probs_choices: per stage, the parameters of a score of probabilities with parameters
            (GEN), else None.
    """

    data: dict[str, EnsembleLogits] | None
    roles: DatasetRoles
    stage_macs: list[float]
    score: str
    temperatures: Temperatures | None
    heldout_confidence: list[torch.Tensor]
    heldout_correct: list[torch.Tensor]
    prefix_outputs: dict[str, list[SampleOutputs]]
    mixture_ratio: float = 1.0
    _mixture: dict = None
    member_scores: MemberScores | None = None
    probs_choices: list[ParameterChoice] | None = None
    targets: dict[str, torch.Tensor] | None = None

    def __post_init__(self):
        if self.targets is None:
            if self.data is None:
                raise ValueError("a prepared experiment needs its logits or its targets")
            self.targets = {name: d.targets for name, d in self.data.items()}

    @property
    def score_label(self) -> str:
        """The rows' ``score`` column: the score's name, with its pinned parameters if any."""
        return self.member_scores.label if self.member_scores is not None else self.score

    @property
    def probs_score(self) -> ProbsScore | None:
        """The stage-wise score of probabilities (GEN at each stage's parameters), or None."""
        if self.probs_choices is None:
            return None
        return probs_score_function(self.score, self.probs_choices)

    def mixture_confidence(self, seed: int) -> list[torch.Tensor]:
        """Stage scores on the unlabelled test mixture (ID + pooled OOD), cached per seed."""
        self._mixture = self._mixture or {}
        if seed not in self._mixture and self.data is None:
            self._mixture[seed] = self._mixture_from_outputs(seed)
        if seed not in self._mixture:
            mix = mixture_logits(self.data, self.roles, self.mixture_ratio, seed)
            scores = None
            if self.member_scores is not None:
                vectors = self.member_scores.vectors
                scores = mixture_rows(vectors, self.roles, self.mixture_ratio, seed)
            states = member_states(mix, self.temperatures, self.score, scores, self.probs_score)
            self._mixture[seed] = stage_confidences(states, self.score)[0]
        return self._mixture[seed]

    def _mixture_from_outputs(self, seed: int) -> list[torch.Tensor]:
        """The mixture's stage scores from the prefixes' outputs (the same float32 confidences
        as from its logits: every quantity is per sample)."""
        stages = len(self.stage_macs) - 1
        rows = {
            name: [o.confidence.float().unsqueeze(1) for o in self.prefix_outputs[name][:stages]]
            for name in (self.roles.id, *self.roles.ood)
        }
        mixed = mixture_rows(rows, self.roles, self.mixture_ratio, seed)
        return [m.squeeze(1) for m in mixed]


ROWS_PER_CHUNK = 16384  # samples whose N x C softmax statistics are held at once


def dataset_prefix_outputs(
    member_logits: list[torch.Tensor],
    targets: torch.Tensor,
    score: str,
    temperatures: Temperatures | None = None,
    rows: int = ROWS_PER_CHUNK,
    member_scores: list[torch.Tensor] | None = None,
    probs_score: ProbsScore | None = None,
) -> list[SampleOutputs]:
    """Per-sample outputs of the ensembles of the first 1..M members on one dataset, computed
    ``rows`` samples at a time: every quantity is per sample, so only ``rows`` x C softmax
    statistics per member are held at once (a 270,000 x 1,000 dataset needed 7 x its logits'
    size when all were held), and the results equal one pass over all samples.
    ``member_scores``: each member's own score of these samples (see
    ``PreparedExperiment``); ``probs_score``: the stage-wise score of probabilities."""
    n = targets.numel()

    def states(a: int, b: int) -> list[EnsembleState]:
        logits = [z[a:b] for z in member_logits]
        scores = None if member_scores is None else [s[a:b] for s in member_scores]
        return member_states(logits, temperatures, score, scores, probs_score)

    if n <= rows:
        return prefix_outputs(states(0, n), score, targets)
    parts = [
        prefix_outputs(states(a, a + rows), score, targets[a : a + rows]) for a in range(0, n, rows)
    ]
    return [SampleOutputs.concat([p[k] for p in parts]) for k in range(len(member_logits))]


def needs_member_scores(entry: ScoreEntry) -> bool:
    """Whether a score's ensemble is the mean of member scores computed outside the state:
    a feature score, or a score of logits with parameters or standardised (``max_logit`` and
    ``energy`` are summed by the state itself)."""
    return entry.needs_member_scores


def _stage_probs(
    data: dict[str, EnsembleLogits],
    roles: DatasetRoles,
    temperatures: Temperatures | None,
    score: str,
    selection: str,
    pinned: dict | None,
) -> list[ParameterChoice]:
    """The parameters of a score of probabilities per stage (``stage_probs_choices``)."""

    def prefix_probs(name: str) -> list[torch.Tensor]:
        states = member_states(data[name].logits, temperatures, "msp")
        return [s.probs for s in prefix_states(states)]

    held = prefix_probs(roles.heldout)
    per_set = [prefix_probs(name) for name in roles.ood_val]
    ood_val = [[probs[k] for probs in per_set] for k in range(len(held))]
    targets = data[roles.heldout].targets
    return stage_probs_choices(score, held, targets, ood_val, roles, selection, pinned)


def prepare_experiment(
    data: dict[str, EnsembleLogits],
    roles: DatasetRoles,
    stage_macs: list[float],
    score: str = "msp",
    temperature_scaling: bool = False,
    mixture_ratio: float = 1.0,
    member_scores: MemberScores | None = None,
    selection: str = "auto",
    pinned: dict | None = None,
) -> PreparedExperiment:
    """Compute what every policy setting shares (once per sweep), one dataset at a time.

    Args:
        data: every member's logits per dataset (every role; only the evaluated ones get
            outputs).
        roles: the datasets' roles.
        stage_macs: MACs per member.
        score: a registered score.
        temperature_scaling: fit temperatures on the held-out split first.
        mixture_ratio: OOD : ID ratio of the unlabelled test mixture.
        member_scores: the members' own scores (``window_cascades.cascade.member_scores``;
            required for a feature score, computed here for a score of logits).
        selection: how a score's parameters are chosen (``member_scores.SELECTIONS``).
        pinned: parameters of the score fixed by the user.
    """
    roles = DatasetRoles(roles)
    entry = score_entry(score)
    heldout = roles.heldout
    held = data[heldout]
    temperatures = fit_temperatures(held.logits, held.targets) if temperature_scaling else None
    if member_scores is None and needs_member_scores(entry):
        member_scores = score_members(
            score,
            {name: d.logits for name, d in data.items()},
            {name: d.targets for name, d in data.items()},
            roles,
            [f"m{k}" for k in range(len(held.logits))],
            None,
            selection,
            pinned,
        )
    probs_choices = None
    if entry.inputs == "probs" and entry.parameters:
        probs_choices = _stage_probs(data, roles, temperatures, score, selection, pinned)
    probs_score = probs_score_function(score, probs_choices) if probs_choices else None
    outputs = {}
    for name in roles.evaluated():
        d = data[name]
        vectors = member_scores.vectors[name] if member_scores is not None else None
        outputs[name] = dataset_prefix_outputs(
            d.logits, d.targets, score, temperatures, member_scores=vectors, probs_score=probs_score
        )
    # the held-out stage scores are the prefixes' outputs before the last member (the same
    # float32 confidences, stored as float64, and the same arg-max == target)
    confidence = [o.confidence.float() for o in outputs[heldout][:-1]]
    correct = [o.correct for o in outputs[heldout][:-1]]
    return PreparedExperiment(
        data,
        roles,
        stage_macs,
        score,
        temperatures,
        confidence,
        correct,
        outputs,
        mixture_ratio,
        member_scores=member_scores,
        probs_choices=probs_choices,
    )


def prefix_outputs(
    states: list[EnsembleState], score: str, targets: torch.Tensor
) -> list[SampleOutputs]:
    """Per-sample outputs of the ensembles of the first 1..M members (stage k exits)."""
    out = []
    for k, state in enumerate(prefix_states(states)):
        exit_stage = torch.full((targets.numel(),), k + 1, dtype=torch.long)
        conf = state.confidence(score)
        out.append(SampleOutputs.from_probs(state.probs.float(), conf, exit_stage, targets))
    return out


def prepare_from_outputs(
    outputs: dict[str, list[SampleOutputs]],
    targets: dict[str, torch.Tensor],
    roles: DatasetRoles,
    stage_macs: list[float],
    score: str,
    temperatures: Temperatures | None = None,
    mixture_ratio: float = 1.0,
) -> PreparedExperiment:
    """What a sweep shares, from every evaluated dataset's prefix outputs (e.g. read from the
    outputs cache, ``window_cascades.artifacts.outputs_cache``) instead of logits.

    Args:
        outputs: per evaluated dataset, the outputs of the ensembles of the first 1..M members
            (as [`dataset_prefix_outputs`][] computes them).
        targets: per evaluated dataset, its targets.
        roles: the datasets' roles.
        stage_macs: MACs per member.
        score: the confidence score the outputs were computed with (one the ensemble state
            computes itself: no member scores, no parameters chosen per stage).
        temperatures: the temperatures the outputs were computed with, or None.
        mixture_ratio: OOD : ID ratio of the unlabelled test mixture.
    """
    roles = DatasetRoles(roles)
    held = outputs[roles.heldout]
    return PreparedExperiment(
        None,
        roles,
        stage_macs,
        score,
        temperatures,
        [o.confidence.float() for o in held[:-1]],
        [o.correct for o in held[:-1]],
        outputs,
        mixture_ratio,
        targets=targets,
    )
