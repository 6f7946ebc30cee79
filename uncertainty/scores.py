"""Confidence scores of single models and of ensembles (higher = more confident).

Definitions (C classes, logits z, softmax probabilities p):

- ``msp``: max_c p_c.
- ``entropy``: negative Shannon entropy, sum_c p_c log p_c (nats).
- ``max_logit``: max_c z_c.
- ``energy``: negative energy, logsumexp_c z_c.
- ``mutual_information``: negative ensemble disagreement, -(H(mean_m p_m) - mean_m H(p_m)),
  the mutual information between prediction and member (nats); 0 for a single model.

For an ensemble of members, ``msp`` and ``entropy`` are recomputed from the averaged member
probabilities, while ``max_logit`` and ``energy`` are the average of the members' scores. Every
other registered score (``window_cascades.uncertainty.score_registry``: GEN, the feature-based
detectors, a plugin's) follows its entry's ensemble rule: a score of probabilities is taken of
the averaged probabilities (``EnsembleState.probs_score``), any other is the mean of the
members' scores (``EnsembleState.score_sum``, standardised on the held-out split by the
caller for ``standardised_mean``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from window_cascades.uncertainty.score_registry import score_entry
from window_cascades.uncertainty.temperature import scale_probs


def check_score(score: str) -> str:
    """Return ``score`` if it is a registered confidence score, else raise a ValueError naming
    it (``window_cascades.uncertainty.score_registry``).

    Args:
        score: the score's name (``msp``, ``energy``, ``knn``, ...: any registered score).
    """
    score_entry(score)
    return score


def confidence_from_probs(probs: torch.Tensor, score: str) -> torch.Tensor:
    """Probability-based confidence (``msp``, ``entropy``, or a registered score of
    probabilities at its parameters' defaults) of N x C probabilities.

    Args:
        probs: N x C class probabilities (rows sum to 1).
        score: ``msp`` (the largest probability), ``entropy`` (the negative entropy, in nats)
            or another registered score of probabilities.
    """
    if score == "msp":
        return probs.max(dim=-1).values
    if score == "entropy":
        return torch.special.xlogy(probs, probs).sum(dim=-1)
    entry = score_entry(score)
    if entry.inputs != "probs":
        raise ValueError(f"score {score!r} is not computed from probabilities")
    return entry.fn(probs, **_defaults(entry, probs.shape[-1]))


def _defaults(entry, num_classes: int) -> dict:
    from window_cascades.uncertainty.score_registry import ScoreContext

    return entry.defaults(ScoreContext(num_classes))


def confidence_from_logits(logits: torch.Tensor, score: str) -> torch.Tensor:
    """Confidence of a single model's N x C logits for a registered score of probabilities or
    logits (its parameters at their defaults).

    Args:
        logits: N x C logits of one model.
        score: a registered score of probabilities or logits.
    """
    entry = score_entry(score)
    logits = logits.float()
    if score == "mutual_information":
        return torch.zeros(logits.shape[0])
    if score == "max_logit":
        return logits.max(dim=-1).values
    if score == "energy":
        return torch.logsumexp(logits, dim=-1)
    if entry.inputs == "logits":
        return entry.fn(logits, **_defaults(entry, logits.shape[-1]))
    if entry.inputs == "features":
        raise ValueError(f"score {score!r} is computed from features, not logits")
    return confidence_from_probs(logits.softmax(dim=-1), score)


ProbsScore = Callable[[torch.Tensor, int], torch.Tensor]
"""(averaged probabilities N x C, member count k) -> confidence: a score of probabilities at the
parameters chosen for the ensemble of k members."""


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
        score: the score the state was built for (None: every score of the original five).
        score_sum: N sum of the members' own scores, for a registered score combined by the
            mean of its members' scores (given per member to ``from_logits``, already
            standardised for ``standardised_mean``), else None.
        probs_score: for a registered score of probabilities with parameters, the function
            that scores the averaged probabilities at the parameters chosen for k members
            (None: the registered function at its defaults).
    """

    prob_sum: torch.Tensor
    max_logit_sum: torch.Tensor | None
    logsumexp_sum: torch.Tensor | None
    neg_entropy_sum: torch.Tensor | None
    count: int = 1
    temperatures: dict[int, float] = field(default_factory=dict)
    score: str | None = None
    score_sum: torch.Tensor | None = None
    probs_score: ProbsScore | None = None

    @classmethod
    def from_logits(
        cls,
        logits: torch.Tensor,
        temperatures: dict[int, float] | None = None,
        score: str | None = None,
        member_score: torch.Tensor | None = None,
        probs_score: ProbsScore | None = None,
    ) -> EnsembleState:
        """State of a single member from its N x C logits (tracking what ``score`` needs).

        Args:
            logits: the member's logits (temperature-scaled by the caller when fitted).
            temperatures: ensemble temperature per member count k >= 2.
            score: the registered score to track (None: ``max_logit``, ``energy`` and
                ``mutual_information``, which are built from these sums).
            member_score: the member's own score (N), for a score combined by the mean of its
                members' scores; None: computed from ``logits`` for a score of logits.
            probs_score: see ``probs_score``.
        """
        entry = score_entry(score) if score is not None else None
        logits = logits.float()
        probs = logits.softmax(dim=-1)
        need = {score} if score else {"max_logit", "energy", "mutual_information"}
        if (
            entry is not None
            and member_score is None
            and entry.inputs == "logits"
            and score not in ("max_logit", "energy")
        ):
            member_score = entry.fn(logits, **_defaults(entry, logits.shape[-1]))
        if entry is not None and entry.inputs == "features" and member_score is None:
            raise ValueError(
                f"score {score!r} is computed from the members' features: give each member's "
                "score (member_score)"
            )
        return cls(
            prob_sum=probs,
            max_logit_sum=logits.max(dim=-1).values if "max_logit" in need else None,
            logsumexp_sum=torch.logsumexp(logits, dim=-1) if "energy" in need else None,
            neg_entropy_sum=(
                confidence_from_probs(probs, "entropy") if "mutual_information" in need else None
            ),
            temperatures=dict(temperatures or {}),
            score=score,
            score_sum=member_score,
            probs_score=probs_score,
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
            else EnsembleState.from_logits(member, score=self.score, probs_score=self.probs_score)
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
            plus(self.score_sum, other.score_sum),
            self.probs_score,
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
            pick(self.score_sum),
            self.probs_score,
        )

    @property
    def probs(self) -> torch.Tensor:
        """N x C averaged member probabilities (temperature-scaled if a T is set)."""
        probs = self.prob_sum if self.count == 1 else self.prob_sum / self.count
        return scale_probs(probs, self.temperatures.get(self.count, 1.0))

    def confidence(self, score: str) -> torch.Tensor:
        """Ensemble confidence for a registered score (see module docstring).

        Args:
            score: a registered score of probabilities or logits.
        """
        entry = score_entry(score)
        if self.score is not None and score != self.score and score not in ("msp", "entropy"):
            raise ValueError(f"this ensemble state tracks {self.score!r}, not {score!r}")
        if score == "mutual_information":
            # -(H(mean p) - mean H(p_m)) = (-H(mean p)) - mean(-H(p_m))
            mean = self.prob_sum / self.count
            mi = self.neg_entropy_sum / self.count - confidence_from_probs(mean, "entropy")
            return -mi.clamp_min(0)
        if entry.inputs == "probs":
            if self.probs_score is not None and score == self.score:
                return self.probs_score(self.probs, self.count)
            return confidence_from_probs(self.probs, score)
        if self.score_sum is not None and score == self.score:
            return self.score_sum / self.count
        if score == "max_logit":
            return self.max_logit_sum / self.count
        if score == "energy":
            return self.logsumexp_sum / self.count
        raise ValueError(f"this ensemble state holds no member scores of {score!r}")
