"""Confidence scores of single models and of ensembles (higher = more confident).

Definitions (C classes, logits z, softmax probabilities p):

- ``msp``: max_c p_c.
- ``entropy``: negative Shannon entropy, sum_c p_c log p_c (nats).
- ``max_logit``: max_c z_c.
- ``energy``: negative energy, logsumexp_c z_c.

For an ensemble of members, ``msp`` and ``entropy`` are recomputed from the averaged member
probabilities, while ``max_logit`` and ``energy`` are the average of the members' scores.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

SCORES: tuple[str, ...] = ("msp", "entropy", "max_logit", "energy")


def check_score(score: str) -> str:
    """Return ``score`` if it is a known confidence score, else raise a ValueError naming it."""
    if score not in SCORES:
        raise ValueError(f"unknown confidence score {score!r}; expected one of {list(SCORES)}")
    return score


def confidence_from_probs(probs: torch.Tensor, score: str) -> torch.Tensor:
    """Probability-based confidence (``msp`` or ``entropy``) of N x C probabilities."""
    if score == "msp":
        return probs.max(dim=-1).values
    if score == "entropy":
        return torch.special.xlogy(probs, probs).sum(dim=-1)
    raise ValueError(f"score {score!r} is not computed from probabilities")


def confidence_from_logits(logits: torch.Tensor, score: str) -> torch.Tensor:
    """Confidence of a single model's N x C logits for one of :data:`SCORES`."""
    check_score(score)
    logits = logits.float()
    if score == "max_logit":
        return logits.max(dim=-1).values
    if score == "energy":
        return torch.logsumexp(logits, dim=-1)
    return confidence_from_probs(logits.softmax(dim=-1), score)


@dataclass
class EnsembleState:
    """Running sums over the members seen so far for a set of samples.

    Attributes:
        prob_sum: N x C sum of member softmax probabilities.
        max_logit_sum: N sum of member max logits.
        logsumexp_sum: N sum of member logsumexp of logits.
        count: number of members added.
    """

    prob_sum: torch.Tensor
    max_logit_sum: torch.Tensor
    logsumexp_sum: torch.Tensor
    count: int = 1

    @classmethod
    def from_logits(cls, logits: torch.Tensor) -> EnsembleState:
        """State of a single member from its N x C logits."""
        logits = logits.float()
        return cls(
            prob_sum=logits.softmax(dim=-1),
            max_logit_sum=logits.max(dim=-1).values,
            logsumexp_sum=torch.logsumexp(logits, dim=-1),
        )

    def add(self, logits: torch.Tensor) -> EnsembleState:
        """State after adding one more member's logits for the same samples."""
        other = EnsembleState.from_logits(logits)
        return EnsembleState(
            self.prob_sum + other.prob_sum,
            self.max_logit_sum + other.max_logit_sum,
            self.logsumexp_sum + other.logsumexp_sum,
            self.count + 1,
        )

    def select(self, index: torch.Tensor) -> EnsembleState:
        """State of a subset of the samples (boolean mask or integer index)."""
        return EnsembleState(
            self.prob_sum[index], self.max_logit_sum[index], self.logsumexp_sum[index], self.count
        )

    @property
    def probs(self) -> torch.Tensor:
        """N x C averaged member probabilities."""
        return self.prob_sum / self.count

    def confidence(self, score: str) -> torch.Tensor:
        """Ensemble confidence for one of :data:`SCORES` (see module docstring)."""
        check_score(score)
        if score == "max_logit":
            return self.max_logit_sum / self.count
        if score == "energy":
            return self.logsumexp_sum / self.count
        return confidence_from_probs(self.probs, score)
