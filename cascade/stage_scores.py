"""Per-stage scores of an ensemble's prefixes, and optional temperature scaling.

Stage k of a cascade (numbered from 1) looks at the ensemble of the first k members. Fitting
the policies needs, on the held-out split, that ensemble's confidence and correctness for the
stages 1..M-1; the adjusted window needs the confidences on an unlabelled test mixture.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from window_cascades.uncertainty.scores import EnsembleState, ProbsScore
from window_cascades.uncertainty.temperature import fit_probs_temperature, fit_temperature


@dataclass
class Temperatures:
    """Fitted temperatures: one per member (on logits), one per ensemble size k >= 2.

    Attributes:
        members: T_m for member m; logits become z / T_m.
        ensembles: T_k for the ensemble of the first k members; averaged probabilities p
            become softmax(log p / T_k).
    """

    members: list[float]
    ensembles: dict[int, float] = field(default_factory=dict)

    def scale(self, k: int, logits: torch.Tensor) -> torch.Tensor:
        """The logits of member k + 1 (``k``: its 0-based place) divided by its temperature
        (in float32 at least: logits kept in float16 are not divided in float16)."""
        return logits.float() / self.members[k]

    def to_dict(self) -> dict:
        return {
            "members": self.members,
            "ensembles": {str(k): t for k, t in self.ensembles.items()},
        }

    @classmethod
    def from_dict(cls, data: dict) -> Temperatures:
        return cls(list(data["members"]), {int(k): float(t) for k, t in data["ensembles"].items()})


def fit_temperatures(member_logits: list[torch.Tensor], targets: torch.Tensor) -> Temperatures:
    """Fit every member's temperature, then each ensemble prefix's, on held-out data."""
    members = [fit_temperature(z, targets) for z in member_logits]
    state = EnsembleState.from_logits(member_logits[0].float() / members[0])
    ensembles = {}
    for k in range(1, len(member_logits)):
        state = state.add(member_logits[k].float() / members[k])
        ensembles[k + 1] = fit_probs_temperature(state.prob_sum / state.count, targets)
    return Temperatures(members, ensembles)


def member_states(
    member_logits: list[torch.Tensor],
    temperatures: Temperatures | None = None,
    score: str | None = None,
    member_scores: list[torch.Tensor] | None = None,
    probs_score: ProbsScore | None = None,
) -> list[EnsembleState]:
    """One-member states (softmax statistics) of every member, temperature-scaled if given.

    ``member_scores``: each member's own score of the samples, for a registered score combined
    by its members' scores (``EnsembleState.score_sum``); ``probs_score``: the stage-wise score
    of probabilities (``EnsembleState.probs_score``)."""
    temps = temperatures.ensembles if temperatures else None
    return [
        EnsembleState.from_logits(
            z if temperatures is None else temperatures.scale(k, z),
            temps,
            score,
            None if member_scores is None else member_scores[k],
            probs_score,
        )
        for k, z in enumerate(member_logits)
    ]


def prefix_states(states: list[EnsembleState]) -> list[EnsembleState]:
    """Ensemble states of the first 1, 2, ..., M members, from one-member states."""
    prefixes = [states[0]]
    for state in states[1:]:
        prefixes.append(prefixes[-1].add(state))
    return prefixes


def stage_confidences(
    member_logits: list[torch.Tensor] | list[EnsembleState],
    score: str,
    targets: torch.Tensor | None = None,
    temperatures: Temperatures | None = None,
    include_final: bool = False,
) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """(confidences, correctness) of the ensembles of the first 1..M-1 members (1..M with
    ``include_final``).

    Takes the members' logits, or their one-member states (then ``temperatures`` must already
    be applied). Correctness is empty when ``targets`` is None (unlabelled data).
    """
    if isinstance(member_logits[0], EnsembleState):
        states = list(member_logits)
    else:
        states = member_states(member_logits, temperatures, score)
    prefixes = prefix_states(states)
    prefixes = prefixes if include_final else prefixes[:-1]
    confidences = [s.confidence(score) for s in prefixes]
    correct = [] if targets is None else [s.probs.argmax(-1) == targets for s in prefixes]
    return confidences, correct
