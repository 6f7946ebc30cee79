"""Choosing ``budget_window``'s rule on the held-out split itself, by cross-fitting.

The plain budget search (``window_cascades.cascade.interval_search.best_interval``) picks the best
of ~20,000 intervals on the held-out split. With 10k held-out samples its pick holds on test; with
2,000 (notMNIST) the pick is tuned to the held-out noise and loses to the paper's target-anchored
window on test. Which of the two to trust is itself decided on the held-out split:

1. candidates, each a complete fitting rule at the same budget: ``window`` (the paper's band of
   half-width w = max_pass / 2 around the target's threshold, passing <= max_pass per stage),
   ``search`` (the plain search over the ``budget_grid``-point quantile grid) and ``coarse`` (the
   same search over a grid of [`coarse_grid`][] points, ~N / 100: fewer intervals to overfit);
2. each candidate is cross-fitted: the held-out split is cut into ``FOLDS`` folds (seeded), the
   rule fitted on all but one fold decides the samples of that fold, and the out-of-fold
   outputs of the whole split are scored with the fitting objective (cov@R, risk@C or AUGRC);
3. the window is the default; another candidate replaces it only when its cross-fitted value
   exceeds the window's in at least ``LEVEL`` (90%) of ``RESAMPLES`` paired bootstrap resamples
   of the held-out samples (among those that do, the best cross-fitted value wins);
4. the chosen rule is refitted on the whole held-out split.

The record (``selection`` in the fitted policy's ``to_dict``, hence ``summary.json`` and the
report) gives every candidate's cross-fitted value, the bootstrap probability of beating the
window, the choice and why. Cost: FOLDS + 1 fits of each search candidate and one bootstrap of
the pooled outputs (about 1 s on 10k held-out samples).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import torch

from window_cascades.cascade.engine import exit_stages
from window_cascades.cascade.policies import IntervalPolicy
from window_cascades.cascade.policy_registry import FitInputs, PolicySettings

FOLDS = 5
RESAMPLES = 200
LEVEL = 0.9


def coarse_grid(n: int, grid: int) -> int:
    """The coarse candidate's grid: about one quantile point per 100 held-out samples, at
    least 10 and at most ``grid`` (e.g. 2,000 samples: 20 points, 10,000: 100)."""
    return max(10, min(grid, n // 100))


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


def subset_inputs(inputs: FitInputs, index: torch.Tensor) -> FitInputs:
    """The held-out samples ``index`` of ``inputs`` (no mixture: the plain rules ignore it)."""
    return replace(
        inputs,
        stage_confidence=[c[index] for c in inputs.stage_confidence],
        stage_correct=[c[index] for c in inputs.stage_correct],
        mixture_confidence=None,
        final_confidence=inputs.final_confidence[index],
        final_correct=inputs.final_correct[index],
    )


def cascade_output(inputs: FitInputs, policy) -> tuple[torch.Tensor, torch.Tensor]:
    """(confidence, wrong) of the cascade's output on ``inputs`` under ``policy``."""
    conf = [*inputs.stage_confidence, inputs.final_confidence]
    correct = [*inputs.stage_correct, inputs.final_correct]
    exits = exit_stages(conf, policy) - 1
    pick = exits[None, :]
    out_conf = torch.stack([c.double() for c in conf]).gather(0, pick)[0]
    out_ok = torch.stack([c.bool() for c in correct]).gather(0, pick)[0]
    return out_conf, ~out_ok


def cross_fitted_output(
    inputs: FitInputs, fit, folds: int, seed: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Out-of-fold cascade outputs of a fitting rule ``fit(FitInputs) -> policy``.

    Returns:
        (confidence, wrong, passed_stage1) per held-out sample, each decided by the rule fitted
        without the sample's fold.
    """
    n = inputs.stage_confidence[0].numel()
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    conf = torch.empty(n, dtype=torch.float64)
    wrong = torch.empty(n, dtype=torch.bool)
    for f in range(folds):
        held = perm[f::folds]
        train = torch.cat([perm[g::folds] for g in range(folds) if g != f])
        policy = fit(subset_inputs(inputs, train))
        conf[held], wrong[held] = cascade_output(subset_inputs(inputs, held), policy)
    return conf, wrong, perm


@dataclass
class SelectedIntervalPolicy(IntervalPolicy):
    """An [`IntervalPolicy`][] with the record of how its rule was chosen (``selection``)."""

    selection: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {**super().to_dict(), "selection": self.selection}


def select_budget_rule(
    inputs: FitInputs,
    settings: PolicySettings,
    candidates: dict,
    objective: tuple[str, float],
) -> tuple[str, dict]:
    """Choose among ``candidates`` (name -> ``fit(FitInputs) -> policy``; ``window`` the
    default) by cross-fitted held-out value; see the module docstring.

    Returns:
        (the chosen name, the record: {chosen, reason, folds, resamples, level,
        candidates: {name: {cv_value, p_beats_window} or {error}}}).
    """
    n = inputs.stage_confidence[0].numel()
    outputs, record = {}, {}
    for name, fit in candidates.items():
        try:
            conf, wrong, _ = cross_fitted_output(inputs, fit, FOLDS, settings.seed)
        except ValueError as err:  # e.g. a fold too small for the window's target
            record[name] = {"error": str(err)}
            continue
        outputs[name] = (conf, wrong)
        record[name] = {"cv_value": float(output_value(conf, wrong, objective))}
    if not outputs:
        raise ValueError("budget_window: no candidate rule could be cross-fitted: " + str(record))
    gen = torch.Generator().manual_seed(settings.seed)
    draws = torch.randint(n, (RESAMPLES, n), generator=gen)
    weights = torch.zeros(RESAMPLES, n, dtype=torch.float64)
    weights.scatter_add_(1, draws, torch.ones_like(draws, dtype=torch.float64))
    boot = {name: output_value(c, w, objective, weights) for name, (c, w) in outputs.items()}
    if "window" in outputs:
        better = []
        for name in outputs:
            if name == "window":
                continue
            p = float((boot[name] > boot["window"] + 1e-12).double().mean())
            record[name]["p_beats_window"] = p
            if p >= LEVEL:
                better.append(name)
        if better:
            chosen = max(better, key=lambda k: record[k]["cv_value"])
            reason = (
                f"{chosen}'s cross-fitted value beats the window's in "
                f"{record[chosen]['p_beats_window']:.0%} of {RESAMPLES} resamples "
                f"(>= {LEVEL:.0%})"
            )
        else:
            chosen = "window"
            reason = (
                f"no other rule beats the window's cross-fitted value in >= {LEVEL:.0%} of "
                f"{RESAMPLES} resamples of the {n} held-out samples"
            )
    else:
        chosen = max(outputs, key=lambda k: record[k]["cv_value"])
        reason = "the window could not be fitted; the best cross-fitted value of the others"
    return chosen, {
        "chosen": chosen,
        "reason": reason,
        "folds": FOLDS,
        "resamples": RESAMPLES,
        "level": LEVEL,
        "candidates": record,
    }


def window_at_budget(inputs: FitInputs, settings: PolicySettings, max_pass: float):
    """The paper's window at half-width w = max_pass / 2 (each stage passes <= max_pass)."""
    from window_cascades.cascade.builtin_policies import fit_window

    width = min(max(max_pass / 2, 1e-9), 0.5)
    return fit_window(inputs, settings.replace(width=width))
