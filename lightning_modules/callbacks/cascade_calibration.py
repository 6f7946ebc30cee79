"""Calibrates a cascade on the held-out split: every policy (tau and the window bounds) and,
optionally, the temperatures."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from lightning.pytorch import Callback
from lightning.pytorch.utilities import rank_zero_info
from torch.utils.data import ConcatDataset, DataLoader, Dataset, Subset

from window_cascades.artifacts.atomic import write_json
from window_cascades.cascade.fitted import FittedCascade
from window_cascades.cascade.offline import prefix_outputs
from window_cascades.cascade.operating_point import policy_operating_points
from window_cascades.cascade.policy_registry import (
    FitInputs,
    PolicySettings,
    fit_policies,
    policy_entry,
)
from window_cascades.cascade.stage_scores import fit_temperatures, member_states, stage_confidences
from window_cascades.datamodules.contract import cascade_datamodule
from window_cascades.lightning_modules.complexity import count_macs_params
from window_cascades.uncertainty.scod import scod_mixture

# the parameters a fitted cascade's info records under their own keys (as before plugins)
BUILTIN_RECORDED = (
    "width",
    "pass_fraction",
    "random_fraction",
    "budget",
    "budget_grid",
    "budget_objective",
    "budget_select",
)


class CascadeCalibration(Callback):
    """Fits every policy of a ``CascadeModule`` on the held-out split before ``test``.

    For stage k (k = 1..M-1) it scores the held-out samples with the ensemble of the first k
    members, finds the operating threshold tau of ``target`` (``cov@r``, ``risk@c`` or
    ``fpr@p``), and sets the window of quantiles of width 2w around tau (see
    ``window_cascades.cascade.builtin_policies``; the module's ``definitions`` choose standard or
    paper rules). The single-threshold policy passes the ``pass_fraction`` least confident samples;
    the random policy ``random_fraction`` (default 2w); ``window_adjusted`` re-derives the window on
    an unlabelled mixture of the ID test set and the OOD sets (``mixture_ratio`` OOD : ID). With
    ``temperature_scaling`` it first fits a temperature per member and per ensemble size.
    The fitted cascade ([`window_cascades.cascade.fitted.FittedCascade`][]) goes to the module
    (so its checkpoints carry it); ``CascadeResultsWriter`` writes it into the run's folder as
    ``fitted_cascade.json`` with the results. ``fitted_json`` writes an extra copy as soon as it
    is fitted (before the evaluation).

    Args:
        target: operating target, e.g. ``cov@5`` (default), ``risk@80``, ``fpr@95``.
        width: window half-width w in quantiles, in (0, 0.5].
        pass_fraction: fraction passed on by the single-threshold policy.
        random_fraction: fraction passed on by the random policy (None: 2w).
        seed: seed of the random policy and of the test-mixture subsampling.
        mixture_ratio: OOD : ID ratio of the test mixture of ``window_adjusted``.
        temperature_scaling: fit temperatures on the held-out split first.
        fitted_json: path of an extra copy of the fitted cascade (every policy's bounds, tau,
            q), written right after calibration; None (default) writes none.
        window_json: the old name of ``fitted_json`` (still taken, with a notice).
        recalibrate: fit again even if the module is already calibrated (e.g. loaded from a
            calibrated cascade checkpoint).
        guarantee: DELTA in (0, 1): tau (and each policy's operating point) is the threshold
            certified for the target with probability >= 1 - DELTA; None: empirical.
        guarantee_method: ``ltt`` (Learn then Test) or ``sgr`` (risk targets).
        budget: ``budget_window``'s expected cost per sample (first-member MACs), in [1, M].
        budget_grid: quantile points of ``budget_window``'s interval search (>= 2).
        budget_objective: ``target`` or ``augrc`` (what ``budget_window`` optimises).
        budget_select: how ``budget_window`` picks its rule: ``cv``, ``search``, ``coarse`` or
            ``window``.
        parameters: any other parameter a registered policy declares, by name
            (``window_cascades.cascade.policy_parameters``; e.g. a plugin policy's), checked by its
            declaration. The named arguments above are the built-in policies' parameters.
    """

    def __init__(
        self,
        target: str = "cov@5",
        width: float = 0.1,
        pass_fraction: float = 0.2,
        random_fraction: float | None = None,
        seed: int = 0,
        mixture_ratio: float = 1.0,
        temperature_scaling: bool = False,
        fitted_json: str | None = None,
        window_json: str | None = None,
        recalibrate: bool = False,
        guarantee: float | None = None,
        guarantee_method: str = "ltt",
        budget: float = 1.2,
        budget_grid: int = 200,
        budget_objective: str = "target",
        budget_select: str = "cv",
        parameters: dict[str, Any] | None = None,
    ):
        super().__init__()
        builtin = {
            "width": width,
            "pass_fraction": pass_fraction,
            "random_fraction": random_fraction,
            "budget": budget,
            "budget_grid": budget_grid,
            "budget_objective": budget_objective,
            "budget_select": budget_select,
        }
        twice = sorted(set(builtin) & set(parameters or {}))
        if twice:
            raise ValueError(f"calibration.parameters repeats named arguments {twice}")
        self.parameters = {**builtin, **(parameters or {})}
        # validated here, where the values enter (definitions: the module's, at fit)
        PolicySettings(
            target,
            seed=seed,
            guarantee=guarantee,
            guarantee_method=guarantee_method,
            **self.parameters,
        )
        if mixture_ratio <= 0:
            raise ValueError(f"mixture_ratio must be > 0, got {mixture_ratio}")
        self.target, self.width, self.pass_fraction = target, width, pass_fraction
        self.random_fraction, self.seed, self.mixture_ratio = random_fraction, seed, mixture_ratio
        self.temperature_scaling = temperature_scaling
        if window_json is not None:
            if fitted_json is not None:
                raise ValueError("calibration: give fitted_json only (window_json is its old name)")
            rank_zero_info("note: calibration.window_json is now calibration.fitted_json")
            fitted_json = window_json
        self.fitted_json = fitted_json
        self.recalibrate = recalibrate
        self.guarantee, self.guarantee_method = guarantee, guarantee_method
        self.budget, self.budget_grid, self.budget_objective = budget, budget_grid, budget_objective
        self.fitted: dict = {}

    @torch.no_grad()
    def member_logits(self, pl_module, dataset: Dataset, batch_size: int):
        """Every member's logits on ``dataset`` (whole dataset on every rank), and targets."""
        per_member, targets = [[] for _ in pl_module.members], []
        for x, y, _ in DataLoader(dataset, batch_size=batch_size, shuffle=False):
            x = x.to(pl_module.device)
            for k, member in enumerate(pl_module.members):
                per_member[k].append(member(x).float().cpu())
            targets.append(y)
        return [torch.cat(chunks) for chunks in per_member], torch.cat(targets)

    def test_mixture(self, dm) -> Dataset:
        """ID test set + pooled OOD sets, subsampled to ``mixture_ratio`` with ``seed``."""
        id_set = dm.eval_sets[dm.roles.id]
        oods = [dm.eval_sets[n] for n in dm.roles.ood]
        if not oods:
            raise ValueError("window_adjusted needs at least one dataset with role 'ood'")
        pooled = ConcatDataset(oods)
        keep_id, keep_ood = scod_mixture(len(id_set), len(pooled), self.mixture_ratio, self.seed)
        return ConcatDataset([Subset(id_set, keep_id.tolist()), Subset(pooled, keep_ood.tolist())])

    def on_test_start(self, trainer, pl_module) -> None:
        if pl_module.fitted is not None and not self.recalibrate:
            rank_zero_info("CascadeCalibration: cascade already calibrated, keeping its policies")
            return
        dm = cascade_datamodule(trainer)
        heldout_name = dm.roles.heldout
        heldout = dm.eval_sets[heldout_name]
        if len(heldout) == 0:
            raise ValueError(f"calibration: the held-out split {heldout_name!r} is empty")
        settings = PolicySettings(
            self.target,
            seed=self.seed,
            definitions=pl_module.definitions,
            guarantee=self.guarantee,
            guarantee_method=self.guarantee_method,
            **self.parameters,
        )
        batch = dm.batch_size
        was_training = pl_module.training
        pl_module.eval()
        # every rank scores the whole held-out split, so every rank fits the same policies
        with torch.inference_mode(False), torch.no_grad():
            logits, targets = self.member_logits(pl_module, heldout, batch)
            if bool((targets < 0).any()):
                raise ValueError(
                    f"calibration: the held-out split {heldout_name!r} has "
                    f"{int((targets < 0).sum())} unlabelled samples (target -1); it must be "
                    "labelled (source heldout, or a labelled dataset on disk)"
                )
            temperatures = fit_temperatures(logits, targets) if self.temperature_scaling else None
            conf, correct = stage_confidences(
                logits, pl_module.score, targets, temperatures, include_final=True
            )
            final_conf, final_correct = conf.pop(), correct.pop()  # the full ensemble
            shape = tuple(heldout[0][0].shape)
            stage_macs = [float(count_macs_params(m, shape)[0]) for m in pl_module.members]
            mixture = None
            if any(policy_entry(p).needs_mixture for p in pl_module.policy_names):
                mix_logits, _ = self.member_logits(pl_module, self.test_mixture(dm), batch)
                mixture, _ = stage_confidences(mix_logits, pl_module.score, None, temperatures)
        pl_module.train(was_training)
        inputs = FitInputs(
            conf, correct, mixture, heldout_name, final_conf, final_correct, stage_macs
        )
        policies = fit_policies(pl_module.policy_names, inputs, settings)
        info = {
            "heldout": heldout_name,
            "heldout_size": len(heldout),
            "score": pl_module.score,
            "definitions": pl_module.definitions,
            "target": self.target,
            "width": self.width,
            "pass_fraction": self.pass_fraction,
            "guarantee": self.guarantee,
            "guarantee_method": self.guarantee_method,
            "budget": self.budget,
        }
        extra = {k: v for k, v in self.parameters.items() if k not in BUILTIN_RECORDED}
        if extra:  # a plugin policy's parameters (the built-ins' are recorded above)
            info["parameters"] = extra
        states = member_states(logits, temperatures, pl_module.score)
        info["operating_points"] = policy_operating_points(
            prefix_outputs(states, pl_module.score, targets),
            policies,
            self.target,
            pl_module.definitions,
            self.guarantee,
            self.guarantee_method,
            pl_module.settings.ood_tpr,
        )
        pl_module.fitted = FittedCascade(policies, temperatures, info)
        self.fitted = pl_module.fitted.to_dict()
        if self.fitted_json and trainer.is_global_zero:
            write_json(Path(self.fitted_json), self.fitted)
            rank_zero_info(f"CascadeCalibration: wrote {self.fitted_json}")

    def state_dict(self) -> dict:
        return {"fitted": self.fitted}

    def load_state_dict(self, state_dict: dict) -> None:
        self.fitted = state_dict.get("fitted", {})
