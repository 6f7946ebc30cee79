"""A fitted cascade's decisions per sample: prediction, confidence, one outcome (accept, reject
or OOD), exit stage.

One definition for every way a cascade is applied: online on a batch of images with real early
exit ([`decide_members`][]; ``CascadeModule.decide`` and ``predict``) and on logits held in
memory ([`decide_logits`][]; ``window_cascades.decide``). Both run the same engine
([`window_cascades.cascade.engine.run_cascade`][]) with the same fitted policy, temperatures and
operating point; only the stage source differs (members run on the samples passed on, or
logits indexed), so the same member logits give the same decisions.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from window_cascades.cascade.engine import CascadeResult, StageSource, run_cascade
from window_cascades.cascade.fitted import FittedCascade
from window_cascades.cascade.member_runner import MemberRunner
from window_cascades.cascade.operating_point import DECISIONS, decision_codes

DECISION_FIELDS = ("prediction", "confidence", "decision", "accepted", "ood", "exit_stage")
"""The keys of a decision, one tensor of N values each (``predictions.csv``'s columns too):

- ``prediction``: the class predicted by the ensemble of the members the sample reached (int64);
- ``confidence``: that ensemble's confidence score (float64; the score the cascade was fitted
  with);
- ``decision``: the sample's one outcome, an index into
  [`DECISIONS`][window_cascades.cascade.operating_point.DECISIONS] (``accept`` 0, ``reject`` 1,
  ``ood`` 2; int64), with the precedence ood > reject > accept;
- ``accepted``: ``decision`` is ``accept``: confidence >= the operating threshold fitted for
  the target on the policy's held-out output, and not flagged OOD (bool);
- ``ood``: ``decision`` is ``ood``: confidence < the threshold that accepts ``ood_tpr`` of that
  output (bool); never true together with ``accepted``;
- ``exit_stage``: the number of members that processed the sample, 1..M (int64).
"""


def check_deployable(fitted: FittedCascade | None, policy: str) -> None:
    """Refuse an uncalibrated cascade, a policy it was not calibrated with, or a fitted cascade
    without operating points (calibrated by an older version).

    Args:
        fitted: the cascade's fitted policies, or None (not calibrated).
        policy: the policy to apply.

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


def _decide(
    source: StageSource,
    num_samples: int,
    fitted: FittedCascade,
    policy: str,
    score: str,
    sample_ids: torch.Tensor | None,
) -> dict[str, torch.Tensor]:
    """The decisions ([`DECISION_FIELDS`][]) of ``fitted``'s ``policy`` over ``source``."""
    point = fitted.info["operating_points"][policy]
    ids = torch.arange(num_samples) if sample_ids is None else sample_ids
    result: CascadeResult = run_cascade(
        source, num_samples, fitted.policies[policy], score, ids, fitted.temperatures
    )
    conf = result.confidence.cpu()
    codes = decision_codes(conf, point)
    return {
        "prediction": result.probs.argmax(-1).cpu(),
        "confidence": conf,
        "decision": codes,
        "accepted": codes == DECISIONS.index("accept"),
        "ood": codes == DECISIONS.index("ood"),
        "exit_stage": result.exit_stage.cpu(),
    }


def decide_members(
    members: Sequence[torch.nn.Module],
    fitted: FittedCascade,
    score: str,
    x: torch.Tensor,
    policy: str,
    sample_ids: torch.Tensor | None = None,
) -> dict[str, torch.Tensor]:
    """The decisions of a deployable cascade (see [`check_deployable`][]) on a batch ``x``,
    with real early exit: member k + 1 runs only on the samples stage k passed on.

    Args:
        members: the members' models, in cascade order.
        fitted: the calibrated cascade.
        score: the confidence score it was calibrated with.
        x: the batch, on the members' device.
        policy: a fitted policy's name.
        sample_ids: the samples' ids (default: their positions in ``x``).

    Returns:
        [`DECISION_FIELDS`][], one tensor of N values each.
    """
    runner = MemberRunner(members, x, [0] * len(members))
    return _decide(runner, x.shape[0], fitted, policy, score, sample_ids)


def decide_logits(
    fitted: FittedCascade,
    member_logits: Sequence[torch.Tensor],
    policy: str = "window",
    sample_ids: torch.Tensor | None = None,
) -> dict[str, torch.Tensor]:
    """The decisions of a fitted cascade on logits held in memory: what the cascade decides when
    its members produce these logits (the same as [`decide_members`][] on the inputs that gave
    them).

    Args:
        fitted: a fitted cascade with operating points (``window_cascades.fit_cascade``, a
            ``fitted_cascade.json`` or a ``cascade.ckpt`` of a test run); its ``info["score"]``
            is the confidence score it was fitted with.
        member_logits: per member, in cascade order, the N x C logits of the same N samples
            (before temperature scaling: the fitted temperatures are applied here).
        policy: the fitted policy to apply, e.g. ``window``.
        sample_ids: the samples' dataset indices (N, int64; only the ``random`` policy reads
            them); default 0..N-1.

    Returns:
        [`DECISION_FIELDS`][], one tensor of N values each.

    Raises:
        ValueError: the cascade cannot be deployed ([`check_deployable`][]), or the logits do
            not fit it (member count, shapes, NaN/Inf).
    """
    check_deployable(fitted, policy)
    score = fitted.info.get("score")
    if score is None:
        raise ValueError("the fitted cascade does not record its confidence score (info.score)")
    logits = [torch.as_tensor(z) for z in member_logits]
    stages = fitted.policies[policy].num_stages
    if len(logits) != stages:
        raise ValueError(
            f"member_logits: {len(logits)} member(s) given, the cascade has {stages} (one N x C "
            "tensor per member, in cascade order)"
        )
    for k, z in enumerate(logits):
        if z.ndim != 2 or z.shape != logits[0].shape:
            raise ValueError(
                f"member_logits[{k}]: shape {tuple(z.shape)}, expected N x C like member 0's "
                f"{tuple(logits[0].shape)}"
            )
        if not z.is_floating_point() or not bool(torch.isfinite(z).all()):
            raise ValueError(f"member_logits[{k}]: expected finite floating-point logits")
    return _decide(
        lambda k, idx: logits[k][idx], logits[0].shape[0], fitted, policy, score, sample_ids
    )
