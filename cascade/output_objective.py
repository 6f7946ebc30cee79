"""The target's value of a cascade's output on the held-out split: what the policies that
score their own output (``budget_window``), cost-to-target (``cost_to_target``) and the
headroom estimate (``headroom``) compare settings by.

A cascade's output is, per sample, the confidence and the correctness of the member prefix at
which the sample exits. Its value (higher is better) for an objective:

- ``("cov", R)``: the largest coverage at selective risk <= R (0 when none);
- ``("risk", C)``: minus the selective risk at the first threshold covering >= C;
- ``("augrc", 0)``: minus the area under the generalised risk-coverage curve.
"""

from __future__ import annotations

import torch

from window_cascades.cascade.engine import exit_stages
from window_cascades.cascade.policy_registry import FitInputs


def output_value(
    confidence: torch.Tensor,
    wrong: torch.Tensor,
    objective: tuple[str, float],
    weights: torch.Tensor | None = None,
) -> torch.Tensor:
    """The objective of a cascade output (higher is better), as ``budget_window`` scores it.

    Args:
        confidence: the output's confidences (N).
        wrong: the output's errors (N).
        objective: ("cov", R): largest coverage at selective risk <= R (0 when none);
            ("risk", C): minus the risk at the first threshold covering >= C; ("augrc", 0):
            minus the area under the generalised risk-coverage curve.
        weights: (B, N) sample counts of B bootstrap resamples, or None (every sample once).

    Returns:
        A 0-d tensor, or (B,) with ``weights``.
    """
    order = torch.argsort(confidence.double(), descending=True, stable=True)
    conf = confidence.double()[order]
    w = torch.ones(1, conf.numel(), dtype=torch.float64) if weights is None else weights
    w = w[:, order].double()
    count, errors = w.cumsum(1), (w * wrong[order].double()).cumsum(1)
    last = torch.ones(conf.numel(), dtype=torch.bool)  # the last sample of each tie group
    last[:-1] = conf[1:] != conf[:-1]
    count, errors = count[:, last], errors[:, last]
    n = w.sum(1)
    task, value = objective
    if task == "cov":
        feasible = errors <= value * count + 1e-9
        out = torch.where(feasible, count, torch.zeros_like(count)).amax(1) / n
    elif task == "risk":
        first = (count >= value * n[:, None] - 1e-9).double().argmax(1, keepdim=True)
        out = -(errors.gather(1, first) / count.gather(1, first).clamp_min(1e-12)).squeeze(1)
    else:
        zero = count.new_zeros(count.shape[0], 1)
        cov = torch.cat([zero, count], 1) / n[:, None]
        grisk = torch.cat([zero, errors], 1) / n[:, None]
        out = -((cov[:, 1:] - cov[:, :-1]) * (grisk[:, 1:] + grisk[:, :-1]) / 2).sum(1)
    return out if weights is not None else out[0]


def cascade_output(inputs: FitInputs, policy) -> tuple[torch.Tensor, torch.Tensor]:
    """(confidence, wrong) of the cascade's output on ``inputs`` under ``policy``."""
    conf = [*inputs.stage_confidence, inputs.final_confidence]
    correct = [*inputs.stage_correct, inputs.final_correct]
    exits = exit_stages(conf, policy) - 1
    pick = exits[None, :]
    out_conf = torch.stack([c.double() for c in conf]).gather(0, pick)[0]
    out_ok = torch.stack([c.bool() for c in correct]).gather(0, pick)[0]
    return out_conf, ~out_ok
