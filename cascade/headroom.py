"""Headroom: how far a deferral rule that sees only member 1 could go at a policy's cost.

A window or budget window passes a sample on by member 1's confidence alone. Is a better rule
worth looking for? This module estimates, on the held-out split of a two-member cascade, what a
rule using richer member-1 outputs reaches at the same pass fraction:

1. **Value of passing a sample on.** With the cascade's output accepted above a fixed
   threshold ``t`` (the full ensemble's operating threshold at the target on held-out), a
   sample's contribution to the Lagrangian of the target is ``1 - wrong / R`` when accepted (a
   correct acceptance adds coverage; an error costs ``1 / R`` of it, so that the trade is even at
   selective risk R) and 0 when rejected (``risk@C``: R is the ensemble's risk there). The value
   of passing sample i on is its contribution under the ensemble minus under member 1.
2. **Learned rule (the estimate).** Member-1 features: top-1 probability, top-1 minus top-2
   probability, entropy, largest logit and log-sum-exp of the logits. A small network (two
   hidden layers of 32, full-batch Adam, [`STEPS`][] steps) regresses the value of passing on
   the features, cross-fitted over [`FOLDS`][] folds: each sample's predicted value comes from
   the model fitted without its fold. The rule passes on the samples with the highest predicted
   value, as many as the policy passes. Its out-of-fold cascade output is scored with the
   target: what such a rule reaches on data it was not fitted on.
3. **Outcome-aware rule (a ceiling, not attainable).** The same, passing on the samples with
   the highest *true* value of passing: what any rule could reach if it knew the outcome.

Both are given as shares of the ensemble's gain over member 1 (0: member 1, 1: the ensemble), the
same share as ``window_cascades.cascade.cost_to_target``. Two members only (the first transition).
Cost to
compute: FOLDS network fits on the held-out features (about a second for 10,000 samples).
"""

from __future__ import annotations

import torch

from window_cascades.cascade.output_objective import cascade_output, output_value
from window_cascades.cascade.policy_registry import FitInputs
from window_cascades.uncertainty.targets import parse_target

FOLDS = 5
"""Cross-fitting folds of the learned deferral rule."""
STEPS = 150
"""Optimiser steps of the learned deferral rule per fold."""
FEATURES = ("top_prob", "margin", "entropy", "max_logit", "logsumexp")
"""Member 1's features the learned deferral rule sees, in column order."""


def member_features(logits: torch.Tensor) -> torch.Tensor:
    """(N, 5) member-1 features of ``logits`` (N x C), in the order of [`FEATURES`][]."""
    z = logits.float()
    probs = z.softmax(-1)
    top2 = probs.topk(2, dim=-1).values
    entropy = -(probs * probs.clamp_min(1e-12).log()).sum(-1)
    return torch.stack(
        [top2[:, 0], top2[:, 0] - top2[:, 1], entropy, z.max(-1).values, z.logsumexp(-1)], 1
    )


def _lagrangian(conf: torch.Tensor, wrong: torch.Tensor, threshold: float, risk: float):
    accepted = conf.double() >= threshold
    return accepted.double() * (1 - wrong.double() / risk)


def value_of_passing(
    first_conf: torch.Tensor,
    first_wrong: torch.Tensor,
    final_conf: torch.Tensor,
    final_wrong: torch.Tensor,
    target: str,
) -> torch.Tensor:
    """Per sample, the target's Lagrangian contribution under the ensemble minus under member 1
    (see the module docstring), at the ensemble's held-out operating threshold."""
    goal = parse_target(target)
    order = torch.argsort(final_conf.double(), descending=True, stable=True)
    wrong_sorted = final_wrong.double()[order]
    count = torch.arange(1, wrong_sorted.numel() + 1, dtype=torch.float64)
    risk_curve = wrong_sorted.cumsum(0) / count
    if goal.task == "cov":
        ok = torch.nonzero(risk_curve <= goal.value + 1e-12).flatten()
        j = int(ok[-1]) if ok.numel() else 0
        risk = goal.value
    else:
        j = min(int(torch.ceil(torch.tensor(goal.value * count.numel()))) - 1, count.numel() - 1)
        risk = max(float(risk_curve[j]), 1e-3)
    threshold = float(final_conf.double()[order][j])
    return _lagrangian(final_conf, final_wrong, threshold, risk) - _lagrangian(
        first_conf, first_wrong, threshold, risk
    )


class _Adam:
    """Adam's update (torch.optim.Adam's single-tensor formula, default betas and eps) written
    out: ``torch.optim`` imports ``torch._dynamo`` on first use, 2-3 s and 0.15 GB."""

    def __init__(self, params: list[torch.Tensor], lr: float, betas=(0.9, 0.999), eps=1e-8):
        self.params, self.lr, self.betas, self.eps, self.steps = params, lr, betas, eps, 0
        self.m = [torch.zeros_like(p) for p in params]
        self.v = [torch.zeros_like(p) for p in params]

    @torch.no_grad()
    def step(self, grads: tuple[torch.Tensor, ...]) -> None:
        """One update of every parameter from its gradient."""
        self.steps += 1
        b1, b2 = self.betas
        correction1, correction2 = 1 - b1**self.steps, 1 - b2**self.steps
        for p, g, m, v in zip(self.params, grads, self.m, self.v, strict=True):
            m.lerp_(g, 1 - b1)
            v.mul_(b2).addcmul_(g, g, value=1 - b2)
            denom = (v.sqrt() / correction2**0.5).add_(self.eps)
            p.addcdiv_(m, denom, value=-self.lr / correction1)


def _fit_predict(x: torch.Tensor, y: torch.Tensor, x_new: torch.Tensor, seed: int):
    """A 2 x 32 network regressing ``y`` on ``x``; its predictions on ``x_new``."""
    mean, std = x.mean(0), x.std(0).clamp_min(1e-6)
    gen = torch.Generator().manual_seed(seed)
    sizes = [(x.shape[1], 32), (32, 32), (32, 1)]
    weights = [(torch.randn(a, b, generator=gen) / a**0.5).requires_grad_() for a, b in sizes]
    biases = [torch.zeros(b, requires_grad=True) for _, b in sizes]
    params = weights + biases

    def net(inp: torch.Tensor) -> torch.Tensor:
        h = (inp - mean) / std
        for k, (w, b) in enumerate(zip(weights, biases, strict=True)):
            h = h @ w + b
            if k < len(weights) - 1:
                h = torch.relu(h)
        return h.squeeze(-1)

    target = y.float()
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # 32-wide layers: one thread is 3x faster than two (measured)
    try:
        with torch.enable_grad():
            adam = _Adam(params, lr=0.02)
            for _ in range(STEPS):
                loss = ((net(x) - target) ** 2).mean()
                adam.step(torch.autograd.grad(loss, params))
        with torch.no_grad():
            return net(x_new)
    finally:
        torch.set_num_threads(threads)


def _pass_top(score: torch.Tensor, count: int) -> torch.Tensor:
    passed = torch.zeros(score.numel(), dtype=torch.bool)
    if count > 0:
        passed[torch.argsort(score, descending=True, stable=True)[:count]] = True
    return passed


def headroom(
    first_logits: torch.Tensor,
    first_conf: torch.Tensor,
    first_correct: torch.Tensor,
    final_conf: torch.Tensor,
    final_correct: torch.Tensor,
    target: str,
    pass_fraction: float,
    seed: int = 0,
) -> dict:
    """The learned and the outcome-aware deferral rules at ``pass_fraction`` on held-out.

    Args:
        first_logits: member 1's held-out logits (N x C).
        first_conf: member 1's held-out confidence (N).
        first_correct: member 1's held-out correctness (N).
        final_conf: the two-member ensemble's held-out confidence (N).
        final_correct: the two-member ensemble's held-out correctness (N).
        target: ``cov@R`` or ``risk@C``.
        pass_fraction: the share of held-out samples the rule passes on, in [0, 1].
        seed: seed of the folds and of the learned rule's initialisation.

    Returns:
        {pass_fraction, learned_value, learned_share, outcome_value, outcome_share}: the
        target's value (coverage, or minus the risk) and share of the ensemble's gain.
    """
    goal = parse_target(target)
    objective = (goal.task, goal.value)
    first_wrong, final_wrong = ~first_correct.bool(), ~final_correct.bool()
    value = value_of_passing(first_conf, first_wrong, final_conf, final_wrong, target)
    x = member_features(first_logits)
    n = x.shape[0]
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    predicted = torch.empty(n)
    for f in range(FOLDS):
        held = perm[f::FOLDS]
        train = torch.cat([perm[g::FOLDS] for g in range(FOLDS) if g != f])
        predicted[held] = _fit_predict(x[train], value[train], x[held], seed + f)
    count = round(pass_fraction * n)
    base = output_value(first_conf, first_wrong, objective)
    full = output_value(final_conf, final_wrong, objective)
    gain = float(full - base)
    out = {"pass_fraction": pass_fraction}
    for name, score in (("learned", predicted), ("outcome", value.float())):
        passed = _pass_top(score, count)
        conf = torch.where(passed, final_conf.double(), first_conf.double())
        wrong = torch.where(passed, final_wrong, first_wrong)
        reached = float(output_value(conf, wrong, objective))
        out[f"{name}_value"] = reached
        out[f"{name}_share"] = (reached - float(base)) / gain if gain > 0 else None
    return out


def policy_headroom(
    inputs: FitInputs,
    first_logits: torch.Tensor,
    policy,
    target: str,
    seed: int = 0,
    cache: dict | None = None,
) -> dict | None:
    """[`headroom`][] at a fitted two-member ``policy``'s held-out pass fraction, beside the
    policy's own held-out share (in-sample: fitted and scored on the same samples); None for
    more than two members, an OOD target or a policy that passes nothing on. ``cache``: pass
    fraction (rounded to 0.01) -> [`headroom`][]'s result, shared between the policies of
    one run."""
    if inputs.num_stages != 2 or parse_target(target).task == "fpr":
        return None
    first_conf, first_correct = inputs.stage_confidence[0], inputs.stage_correct[0]
    passed = policy.passes(1, first_conf, torch.arange(first_conf.numel()))
    if not bool(passed.any()):
        return None
    fraction = round(float(passed.double().mean()), 2)  # to 1%: the same point for policies
    cache = {} if cache is None else cache  # whose costs differ by less (a window at 0.1997)
    if fraction not in cache:
        cache[fraction] = headroom(
            first_logits,
            first_conf,
            first_correct,
            inputs.final_confidence,
            inputs.final_correct,
            target,
            fraction,
            seed,
        )
    found = cache[fraction]
    goal = parse_target(target)
    objective = (goal.task, goal.value)
    conf, wrong = cascade_output(inputs, policy)
    base = output_value(first_conf, ~first_correct.bool(), objective)
    full = output_value(inputs.final_confidence, ~inputs.final_correct.bool(), objective)
    gain = float(full - base)
    macs = inputs.stage_macs or [1.0, 1.0]
    return {
        "policy": policy.name,
        "setting": policy.setting,
        "heldout_cost": 1 + found["pass_fraction"] * macs[1] / macs[0],
        "policy_share": float(output_value(conf, wrong, objective) - base) / gain
        if gain > 0
        else None,
        **found,
    }
