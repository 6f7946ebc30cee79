"""Per-stage scores of an ensemble's prefixes, and optional temperature scaling.

Stage k (0-based) of a cascade looks at the ensemble of the first k + 1 members. The window
calibration needs, on the held-out split, that ensemble's confidence and correctness for
k = 0..M-2; the adjusted window needs the confidences on an unlabelled test mixture.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from uncertainty.scores import EnsembleState
from uncertainty.temperature import fit_probs_temperature, fit_temperature


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
        """Member k's logits divided by its temperature."""
        return logits / self.members[k]

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
    state = EnsembleState.from_logits(member_logits[0] / members[0])
    ensembles = {}
    for k in range(1, len(member_logits)):
        state = state.add(member_logits[k] / members[k])
        ensembles[k + 1] = fit_probs_temperature(state.prob_sum / state.count, targets)
    return Temperatures(members, ensembles)


def prefix_states(
    member_logits: list[torch.Tensor], temperatures: Temperatures | None = None
) -> list[EnsembleState]:
    """Ensemble states of the first 1, 2, ..., M members."""
    scaled = [
        z if temperatures is None else temperatures.scale(k, z) for k, z in enumerate(member_logits)
    ]
    temps = temperatures.ensembles if temperatures else {}
    states = [EnsembleState.from_logits(scaled[0], temps)]
    for z in scaled[1:]:
        states.append(states[-1].add(z))
    return states


def stage_confidences(
    member_logits: list[torch.Tensor],
    score: str,
    targets: torch.Tensor | None = None,
    temperatures: Temperatures | None = None,
) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """(confidences, correctness) of the ensembles of the first 1..M-1 members.

    Correctness is empty when ``targets`` is None (unlabelled data).
    """
    states = prefix_states(member_logits, temperatures)[:-1]
    confidences = [s.confidence(score) for s in states]
    correct = [] if targets is None else [s.probs.argmax(-1) == targets for s in states]
    return confidences, correct
