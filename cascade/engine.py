"""The cascade engine: one implementation of early exit for live members and cached logits.

``run_cascade`` asks a *stage source* for logits of member k on a subset of the samples. Online
(``CascadeModule``) the source runs member k on exactly those inputs, so later members only
process the samples that were passed on; offline the source indexes cached logits.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from cascade.policies import IntervalPolicy
from uncertainty.scores import EnsembleState

StageSource = Callable[[int, torch.Tensor], torch.Tensor]
"""(stage k, LongTensor of sample positions) -> logits of member k for those samples."""


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


def run_cascade(
    source: StageSource, num_samples: int, policy: IntervalPolicy, score: str
) -> CascadeResult:
    """Run ``policy`` over ``num_samples`` samples, calling members only where needed."""
    index = torch.arange(num_samples)
    logits = source(0, index)
    state = EnsembleState.from_logits(logits)
    probs = torch.empty(num_samples, logits.shape[-1], dtype=torch.float32)
    confidence = torch.empty(num_samples, dtype=torch.float64)
    exit_stage = torch.empty(num_samples, dtype=torch.long)
    for k in range(policy.num_stages):
        conf = state.confidence(score)
        if k == policy.num_stages - 1:
            passed = torch.zeros_like(conf, dtype=torch.bool)
        else:
            passed = policy.passes(k, conf)
        leaving = ~passed
        where = index[leaving]
        probs[where] = state.probs[leaving].to(probs.device, torch.float32)
        confidence[where] = conf[leaving].double()
        exit_stage[where] = k + 1
        if not bool(passed.any()):
            break
        index = index[passed]
        state = state.select(passed).add(source(k + 1, index))
    return CascadeResult(probs, confidence, exit_stage)
