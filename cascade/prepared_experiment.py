"""The shared preparation of an offline evaluation: every member's logits per dataset, and,
computed once per sweep, the held-out stage scores and every ensemble prefix's per-sample
outputs (``SampleOutputs``) on every dataset. ``window_cascades.cascade.offline`` evaluates policies
on it."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from window_cascades.cascade.sample_outputs import SampleOutputs
from window_cascades.cascade.stage_scores import (
    Temperatures,
    fit_temperatures,
    member_states,
    prefix_states,
    stage_confidences,
)
from window_cascades.uncertainty.scod import scod_mixture
from window_cascades.uncertainty.scores import EnsembleState, check_score
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
    id_name, oods = roles.id, roles.ood
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


@dataclass
class PreparedExperiment:
    """Everything a sweep shares: logits, held-out stage scores and per-sample outputs.

    Attributes:
        data: logits per dataset (in their stored float dtype).
        roles: dataset -> role.
        stage_macs: MACs per member.
        score: the confidence score.
        temperatures: fitted temperatures or None.
        heldout_confidence: held-out scores of the ensembles of the first 1..M-1 members.
        heldout_correct: held-out correctness of the same ensembles.
        prefix_outputs: per dataset, the per-sample outputs of the ensembles of the first
            1..M members.
    """

    data: dict[str, EnsembleLogits]
    roles: DatasetRoles
    stage_macs: list[float]
    score: str
    temperatures: Temperatures | None
    heldout_confidence: list[torch.Tensor]
    heldout_correct: list[torch.Tensor]
    prefix_outputs: dict[str, list[SampleOutputs]]
    mixture_ratio: float = 1.0
    _mixture: dict = None

    def mixture_confidence(self, seed: int) -> list[torch.Tensor]:
        """Stage scores on the unlabelled test mixture (ID + pooled OOD), cached per seed."""
        self._mixture = self._mixture or {}
        if seed not in self._mixture:
            mix = mixture_logits(self.data, self.roles, self.mixture_ratio, seed)
            self._mixture[seed] = stage_confidences(mix, self.score, None, self.temperatures)[0]
        return self._mixture[seed]


ROWS_PER_CHUNK = 16384  # samples whose N x C softmax statistics are held at once


def dataset_prefix_outputs(
    member_logits: list[torch.Tensor],
    targets: torch.Tensor,
    score: str,
    temperatures: Temperatures | None = None,
    rows: int = ROWS_PER_CHUNK,
) -> list[SampleOutputs]:
    """Per-sample outputs of the ensembles of the first 1..M members on one dataset, computed
    ``rows`` samples at a time: every quantity is per sample, so only ``rows`` x C softmax
    statistics per member are held at once (a 270,000 x 1,000 dataset needed 7 x its logits'
    size when all were held), and the results equal one pass over all samples."""
    n = targets.numel()
    if n <= rows:
        return prefix_outputs(member_states(member_logits, temperatures, score), score, targets)
    parts = [
        prefix_outputs(
            member_states([z[a : a + rows] for z in member_logits], temperatures, score),
            score,
            targets[a : a + rows],
        )
        for a in range(0, n, rows)
    ]
    return [SampleOutputs.concat([p[k] for p in parts]) for k in range(len(member_logits))]


def prepare_experiment(
    data: dict[str, EnsembleLogits],
    roles: DatasetRoles,
    stage_macs: list[float],
    score: str = "msp",
    temperature_scaling: bool = False,
    mixture_ratio: float = 1.0,
) -> PreparedExperiment:
    """Compute what every policy setting shares (once per sweep), one dataset at a time."""
    roles = DatasetRoles(roles)
    check_score(score)
    heldout = roles.heldout
    held = data[heldout]
    temperatures = fit_temperatures(held.logits, held.targets) if temperature_scaling else None
    outputs = {
        name: dataset_prefix_outputs(d.logits, d.targets, score, temperatures)
        for name, d in data.items()
    }
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
