"""Deploying a calibrated cascade: refuse one that cannot be applied, and decide a batch
(prediction, confidence, one outcome: accept, reject or OOD, exit stage) with real early exit.

The definitions are ``window_cascades.cascade.decisions`` (shared with the decisions on logits
held in memory, ``window_cascades.decide``); this module keeps the names the cascade module
uses."""

from __future__ import annotations

import torch

from window_cascades.cascade.decisions import check_deployable, decide_members
from window_cascades.cascade.fitted import FittedCascade

__all__ = ["check_deployable", "decisions"]


def decisions(
    members: torch.nn.ModuleList,
    fitted: FittedCascade,
    score: str,
    x: torch.Tensor,
    policy: str,
    sample_ids: torch.Tensor | None = None,
) -> dict[str, torch.Tensor]:
    """The decisions of a deployable cascade (see [`check_deployable`][]) on a batch ``x``
    ([`window_cascades.cascade.decisions.decide_members`][]).

    Args:
        members: the members' models, in cascade order.
        fitted: the calibrated cascade.
        score: the confidence score it was calibrated with.
        x: the batch, on the members' device.
        policy: a fitted policy's name.
        sample_ids: the samples' ids (default: their positions in ``x``).

    Returns:
        per sample ([`window_cascades.cascade.decisions.DECISION_FIELDS`][]): ``prediction``
        (class), ``confidence`` (the score at the exit stage), ``decision`` (one outcome:
        ``ood`` > ``reject`` > ``accept`` in precedence), ``accepted`` and ``ood`` (that
        outcome as flags, never both), ``exit_stage`` (members run).
    """
    return decide_members(members, fitted, score, x, policy, sample_ids)
