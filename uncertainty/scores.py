"""Confidence scores of single models and of ensembles (higher = more confident).

Definitions (C classes, logits z, softmax probabilities p):

- ``msp``: max_c p_c.
- ``entropy``: negative Shannon entropy, sum_c p_c log p_c (nats).
- ``max_logit``: max_c z_c.
- ``energy``: negative energy, logsumexp_c z_c.
- ``mutual_information``: negative ensemble disagreement, -(H(mean_m p_m) - mean_m H(p_m)),
  the mutual information between prediction and member (nats); 0 for a single model.

For an ensemble of members, ``msp`` and ``entropy`` are recomputed from the averaged member
probabilities, while ``max_logit`` and ``energy`` are the average of the members' scores.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from window_cascades.uncertainty.names import SCORES  # noqa: E402, F401  (re-exported)
from window_cascades.uncertainty.temperature import scale_probs


def check_score(score: str) -> str:
    """Return ``score`` if it is a known confidence score, else raise a ValueError naming it.

    Args:
        score: the score's name (``msp``, ``entropy``, ``max_logit``, ``energy``,
            ``mutual_information``).
    """
    if score not in SCORES:
        raise ValueError(f"unknown confidence score {score!r}; expected one of {list(SCORES)}")
    return score


def confidence_from_probs(probs: torch.Tensor, score: str) -> torch.Tensor:
    """Probability-based confidence (``msp`` or ``entropy``) of N x C probabilities.

    Args:
        probs: N x C class probabilities (rows sum to 1).
        score: ``msp`` (the largest probability) or ``entropy`` (the negative entropy, in nats).
    """
    if score == "msp":
        return probs.max(dim=-1).values
    if score == "entropy":
        return torch.special.xlogy(probs, probs).sum(dim=-1)
    raise ValueError(f"score {score!r} is not computed from probabilities")


def confidence_from_logits(logits: torch.Tensor, score: str) -> torch.Tensor:
    """Confidence of a single model's N x C logits for one of [`SCORES`][].

    Args:
        logits: N x C logits of one model.
        score: one of [`SCORES`][].
    """
    check_score(score)
    logits = logits.float()
    if score == "mutual_information":
        return torch.zeros(logits.shape[0])
    if score == "max_logit":
        return logits.max(dim=-1).values
    if score == "energy":
        return torch.logsumexp(logits, dim=-1)
    return confidence_from_probs(logits.softmax(dim=-1), score)


@dataclass
class EnsembleState:
    """Running sums over the members seen so far for a set of samples.

    Per-sample sums that the chosen score does not need are left as None (``score`` given to
    [`from_logits`][]), which saves a pass over N x C values per member.

    Attributes:
        prob_sum: N x C sum of member softmax probabilities.
        max_logit_sum: N sum of member max logits (or None).
        logsumexp_sum: N sum of member logsumexp of logits (or None).
        neg_entropy_sum: N sum of member negative entropies in nats (or None).
        count: number of members added.
        temperatures: optional ensemble temperature per member count k >= 2, applied to the
            averaged probabilities (``probs``, and so ``msp`` and ``entropy``).
        score: the score the state was built for (None: every score).
    """

    prob_sum: torch.Tensor
    max_logit_sum: torch.Tensor | None
    logsumexp_sum: torch.Tensor | None
    neg_entropy_sum: torch.Tensor | None
    count: int = 1
    temperatures: dict[int, float] = field(default_factory=dict)
    score: str | None = None

    @classmethod
    def from_logits(
        cls,
        logits: torch.Tensor,
        temperatures: dict[int, float] | None = None,
        score: str | None = None,
    ) -> EnsembleState:
        """State of a single member from its N x C logits (tracking what ``score`` needs).

        Args:
            logits: the member's N x C logits.
            temperatures: ensemble size k -> the temperature of the averaged probabilities of k
                members (k >= 2); None: no temperature scaling.
            score: the score the state will be asked for (only its sums are kept); None: every
                score.
        """
        if score is not None:
            check_score(score)
        logits = logits.float()
        probs = logits.softmax(dim=-1)
        need = {score} if score else {"max_logit", "energy", "mutual_information"}
        return cls(
            prob_sum=probs,
            max_logit_sum=logits.max(dim=-1).values if "max_logit" in need else None,
            logsumexp_sum=torch.logsumexp(logits, dim=-1) if "energy" in need else None,
            neg_entropy_sum=(
                confidence_from_probs(probs, "entropy") if "mutual_information" in need else None
            ),
            temperatures=dict(temperatures or {}),
            score=score,
        )

    def add(self, member: torch.Tensor | EnsembleState) -> EnsembleState:
        """State after adding one more member (its logits, or its one-member state).

        Args:
            member: the next member's N x C logits, or its one-member state (with its temperature
                applied).
        """
        other = (
            member
            if isinstance(member, EnsembleState)
            else EnsembleState.from_logits(member, score=self.score)
        )

        def plus(a, b):
            return None if a is None or b is None else a + b

        return EnsembleState(
            self.prob_sum + other.prob_sum,
            plus(self.max_logit_sum, other.max_logit_sum),
            plus(self.logsumexp_sum, other.logsumexp_sum),
            plus(self.neg_entropy_sum, other.neg_entropy_sum),
            self.count + 1,
            self.temperatures,
            self.score,
        )

    def select(self, index: torch.Tensor) -> EnsembleState:
        """State of a subset of the samples (boolean mask or integer index).

        Args:
            index: a boolean mask of N, or integer indices, of the samples to keep.
        """

        def pick(a):
            return None if a is None else a[index]

        return EnsembleState(
            self.prob_sum[index],
            pick(self.max_logit_sum),
            pick(self.logsumexp_sum),
            pick(self.neg_entropy_sum),
            self.count,
            self.temperatures,
            self.score,
        )

    @property
    def probs(self) -> torch.Tensor:
        """N x C averaged member probabilities (temperature-scaled if a T is set)."""
        probs = self.prob_sum if self.count == 1 else self.prob_sum / self.count
        return scale_probs(probs, self.temperatures.get(self.count, 1.0))

    def confidence(self, score: str) -> torch.Tensor:
        """Ensemble confidence for one of [`SCORES`][] (see module docstring).

        Args:
            score: one of [`SCORES`][].
        """
        check_score(score)
        if self.score is not None and score != self.score and score not in ("msp", "entropy"):
            raise ValueError(f"this ensemble state tracks {self.score!r}, not {score!r}")
        if score == "max_logit":
            return self.max_logit_sum / self.count
        if score == "energy":
            return self.logsumexp_sum / self.count
        if score == "mutual_information":
            # -(H(mean p) - mean H(p_m)) = (-H(mean p)) - mean(-H(p_m))
            mean = self.prob_sum / self.count
            mi = self.neg_entropy_sum / self.count - confidence_from_probs(mean, "entropy")
            return -mi.clamp_min(0)
        return confidence_from_probs(self.probs, score)
