"""The cascade engine: one implementation of early exit for live members and cached logits.

``run_cascade`` asks a *stage source* for logits of member k on a subset of the samples. Online
(``CascadeModule``) the source runs member k on exactly those inputs, so later members only
process the samples that were passed on; offline the source indexes cached logits.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from window_cascades.cascade.policies import CascadePolicy
from window_cascades.cascade.stage_scores import Temperatures
from window_cascades.uncertainty.scores import EnsembleState

StageSource = Callable[[int, torch.Tensor], "torch.Tensor | EnsembleState"]
"""(k, LongTensor of sample positions) -> the logits of member k + 1 (``k``: its 0-based place
in the cascade) for those samples, or its one-member ``EnsembleState`` (precomputed softmax
statistics, as the offline driver passes)."""


@dataclass
class CascadeResult:
    """Per-sample outputs of a cascade.

    Attributes:
        probs: N x C probabilities of the ensemble of the members each sample reached.
        confidence: N confidence (of the policy's score) at the exit stage.
        exit_stage: N int64, 1-based number of members that processed the sample.
    """

    probs: torch.Tensor
    confidence: torch.Tensor
    exit_stage: torch.Tensor


def stage_passes(
    policy: CascadePolicy, k: int, confidence: torch.Tensor, sample_ids: torch.Tensor
) -> torch.Tensor:
    """Which samples the (k + 1)-th stage passes on (k counts from 0, as the members' list
    does; the policy's stage number is k + 1): its decision on their confidence (the ensemble
    of the first k + 1 members), none at the last stage. Every
    way of running a cascade (``run_cascade``, the streaming cascade, a served cascade's
    scheduler) decides with it.

    Returns:
        a boolean mask on ``confidence``'s device.
    """
    if k == policy.num_stages - 1:
        return torch.zeros_like(confidence, dtype=torch.bool)
    return policy.passes(k + 1, confidence, sample_ids).to(confidence.device)


def run_cascade(
    source: StageSource,
    num_samples: int,
    policy: CascadePolicy,
    score: str,
    sample_ids: torch.Tensor | None = None,
    temperatures: Temperatures | None = None,
) -> CascadeResult:
    """Run ``policy`` over ``num_samples`` samples, calling members only where needed.

    ``sample_ids`` are the samples' dataset indices (default 0..N-1); only the random policy
    uses them, so that online batches and offline arrays pass the same samples.
    ``temperatures`` (optional) scale member logits and ensemble probabilities.
    """
    if temperatures is not None:
        raw = source
        source = lambda k, idx: temperatures.scale(k, raw(k, idx))  # noqa: E731
    index = torch.arange(num_samples)
    ids = torch.arange(num_samples) if sample_ids is None else sample_ids.cpu().long()
    first = source(0, index)
    state = (
        first
        if isinstance(first, EnsembleState)
        else EnsembleState.from_logits(
            first, temperatures.ensembles if temperatures else None, score
        )
    )
    probs = torch.empty(num_samples, state.prob_sum.shape[-1], dtype=torch.float32)
    confidence = torch.empty(num_samples, dtype=torch.float64)
    exit_stage = torch.empty(num_samples, dtype=torch.long)
    for k in range(policy.num_stages):
        conf = state.confidence(score)
        passed = stage_passes(policy, k, conf, ids[index])
        leaving = ~passed
        if index.numel() == num_samples and bool(leaving.all()):  # everyone exits here
            return CascadeResult(
                state.probs.float(), conf.double(), torch.full((num_samples,), k + 1)
            )
        where = index[leaving]
        probs[where] = state.probs[leaving].to(probs.device, torch.float32)
        confidence[where] = conf[leaving].double()
        exit_stage[where] = k + 1
        if not bool(passed.any()):
            break
        index = index[passed]
        state = state.select(passed).add(source(k + 1, index))
    return CascadeResult(probs, confidence, exit_stage)


def exit_stages(
    stage_confidence: list[torch.Tensor],
    policy: CascadePolicy,
    sample_ids: torch.Tensor | None = None,
) -> torch.Tensor:
    """The exit stage (1-based) of every sample when every stage's confidence is already known
    (cached logits): the decisions of [`run_cascade`][], with no member or state in the loop.

    Args:
        stage_confidence: per stage in order (entry k: stage k + 1), the confidence (N) of the
            ensemble of the first k + 1 members (the last one is not needed: nothing passes on from
            stage M).
        policy: the fitted policy that decides at every stage.
        sample_ids: the samples' dataset indices (read by the random policy); default 0..N-1.
    """
    n = stage_confidence[0].numel()
    ids = torch.arange(n) if sample_ids is None else sample_ids.cpu().long()
    exit_stage = torch.full((n,), policy.num_stages, dtype=torch.long)
    index = torch.arange(n)
    for k in range(policy.num_stages - 1):
        passed = policy.passes(k + 1, stage_confidence[k][index], ids[index])
        exit_stage[index[~passed]] = k + 1
        index = index[passed]
        if index.numel() == 0:
            break
    return exit_stage
