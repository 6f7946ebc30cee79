"""Deploying a calibrated cascade: refuse one that cannot be applied, and decide a batch
(prediction, confidence, accept, OOD, exit stage) with real early exit."""

from __future__ import annotations

import torch

from window_cascades.cascade.engine import run_cascade
from window_cascades.cascade.fitted import FittedCascade
from window_cascades.cascade.member_runner import MemberRunner
from window_cascades.cascade.operating_point import decision_flags


def check_deployable(fitted: FittedCascade | None, policy: str) -> None:
    """Refuse an uncalibrated cascade, a policy it was not calibrated with, or a checkpoint
    without operating points (calibrated by an older version).

    Raises:
        ValueError: saying which and what to do.
    """
    if fitted is None:
        raise ValueError(
            "predict needs a calibrated cascade: give --ckpt_path of a cascade.ckpt written by "
            "a test run (this one was never calibrated)"
        )
    if policy not in fitted.policies:
        raise ValueError(
            f"policy {policy!r} was not fitted; the cascade has {sorted(fitted.policies)}"
        )
    if "operating_points" not in fitted.info:
        raise ValueError(
            "this cascade checkpoint has no operating points (calibrated by an older "
            "version): recalibrate it with a test run"
        )


def decisions(
    members: torch.nn.ModuleList,
    fitted: FittedCascade,
    score: str,
    x: torch.Tensor,
    policy: str,
    sample_ids: torch.Tensor | None = None,
) -> dict[str, torch.Tensor]:
    """The decisions of a deployable cascade (see :func:`check_deployable`) on a batch ``x``.

    Args:
        members: the members' models, in cascade order.
        fitted: the calibrated cascade.
        score: the confidence score it was calibrated with.
        x: the batch, on the members' device.
        policy: a fitted policy's name.
        sample_ids: the samples' ids (default: their positions in ``x``).

    Returns:
        per sample: ``prediction`` (class), ``confidence`` (the score at the exit stage),
        ``accepted`` (confidence >= the operating threshold fitted for the target on the
        policy's held-out output), ``ood`` (confidence < the threshold accepting ``ood_tpr`` of
        that output), ``exit_stage`` (members run).
    """
    point = fitted.info["operating_points"][policy]
    ids = torch.arange(x.shape[0]) if sample_ids is None else sample_ids
    runner = MemberRunner(members, x, [0] * len(members))
    result = run_cascade(
        runner, x.shape[0], fitted.policies[policy], score, ids, fitted.temperatures
    )
    conf = result.confidence.cpu()
    accepted, ood = decision_flags(conf, point)
    return {
        "prediction": result.probs.argmax(-1).cpu(),
        "confidence": conf,
        "accepted": accepted,
        "ood": ood,
        "exit_stage": result.exit_stage.cpu(),
    }
