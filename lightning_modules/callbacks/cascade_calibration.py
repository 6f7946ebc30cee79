"""Calibrates a cascade on the held-out split: every policy (tau and the window bounds) and,
optionally, the temperatures."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import torch
from lightning.pytorch import Callback
from lightning.pytorch.utilities import rank_zero_info
from lightning.pytorch.utilities.exceptions import SIGTERMException
from torch.utils.data import ConcatDataset, DataLoader, Dataset, Subset

from window_cascades.artifacts.atomic import write_json
from window_cascades.cascade.fitted import FittedCascade
from window_cascades.cascade.offline import prefix_outputs
from window_cascades.cascade.operating_point import policy_operating_points
from window_cascades.cascade.policy_parameters import declared_parameters, parameter_users
from window_cascades.cascade.policy_registry import (
    FitInputs,
    PolicySettings,
    fit_reachable_policies,
    policy_entry,
)
from window_cascades.cascade.stage_scores import fit_temperatures, member_states, stage_confidences
from window_cascades.datamodules.contract import cascade_datamodule
from window_cascades.lightning_modules.complexity import count_macs_params
from window_cascades.uncertainty.scod import scod_mixture


def _is_default(name: str, value: Any) -> bool:
    """Whether ``value`` is the declared default of the policy parameter ``name``."""
    declared = declared_parameters().get(name)
    return declared is not None and value == declared.default


def add_policy_parameter_arguments(parser, nested_key: str = "calibration") -> None:
    """One ``--<nested_key>.<name>`` option per parameter the registered policies declare
    (``--calibration.width``, ``--calibration.budget``, ...), with the declared type, default
    and help; their values reach [`CascadeCalibration`][] as keyword arguments. For a
    LightningCLI's ``add_arguments_to_parser``, after
    ``parser.add_lightning_class_args(CascadeCalibration, nested_key)``.

    Args:
        parser: The LightningCLI's argument parser.
        nested_key: The callback's key in the config (``calibration`` gives
            ``--calibration.<name>``).
    """
    for name, declared in declared_parameters().items():
        users = ", ".join(parameter_users(name))
        kind = declared.kind if declared.default is not None else declared.kind | None
        parser.add_argument(
            f"--{nested_key}.{name}",
            type=kind,
            default=declared.default,
            help=f"{declared.help}; used by {users}",
        )


class CascadeCalibration(Callback):
    """Fits every policy of a ``CascadeModule`` on the held-out split before ``test``.

    For stage k (k = 1..M-1) it scores the held-out samples with the ensemble of the first k
    members, finds the operating threshold tau of ``target`` (``cov@r``, ``risk@c`` or
    ``fpr@p``), and fits every policy the module names on those scores with the policy
    parameters given (``window_cascades.cascade.builtin_policies``: the window of quantiles of
    width 2w around tau; the module's ``definitions`` choose standard or paper rules). Policies
    that need it (``needs_mixture``) also see an unlabelled mixture of the ID test set and the
    OOD sets (``mixture_ratio`` OOD : ID). With ``temperature_scaling`` it first fits a
    temperature per member and per ensemble size. The fitted cascade
    ([`window_cascades.cascade.fitted.FittedCascade`][]) goes to the module (so its
    checkpoints carry it); ``CascadeResultsWriter`` writes it into the run's folder as
    ``fitted_cascade.json`` with the results. ``fitted_json`` writes an extra copy as soon as it
    is fitted (before the evaluation).

    Args:
        target: operating target, e.g. ``cov@5`` (default), ``risk@80``, ``fpr@95``.
        seed: seed of the random policy and of the test-mixture subsampling.
        mixture_ratio: OOD : ID ratio of the unlabelled test mixture.
        temperature_scaling: fit temperatures on the held-out split first.
        fitted_json: path of an extra copy of the fitted cascade (every policy's bounds, tau,
            q), written right after calibration; None (default) writes none.
        window_json: the old name of ``fitted_json`` (still taken, with a notice).
        recalibrate: fit again even if the module is already calibrated (e.g. loaded from a
            calibrated cascade checkpoint).
        guarantee: DELTA in (0, 1): tau (and each policy's operating point) is the threshold
            certified for the target with probability >= 1 - DELTA; None: empirical.
        guarantee_method: ``ltt`` (Learn then Test) or ``sgr`` (risk targets).
        parameters: policy parameters by name, as one mapping (e.g. ``{top_share: 0.3}``).
        **policy_parameters: policy parameters by name (``width=0.2``, ``budget=1.3``; on the
            command line ``--calibration.width 0.2``): every parameter a registered policy
            declares (``window_cascades.cascade.policy_parameters``; the offline evaluator's
            ``--list-policies`` and ``--help`` list them), each checked by its declaration; one
            not given takes its declared default.
    """

    def __init__(
        self,
        target: str = "cov@5",
        seed: int = 0,
        mixture_ratio: float = 1.0,
        temperature_scaling: bool = False,
        fitted_json: str | None = None,
        window_json: str | None = None,
        recalibrate: bool = False,
        guarantee: float | None = None,
        guarantee_method: str = "ltt",
        parameters: dict[str, Any] | None = None,
        **policy_parameters: Any,
    ):
        super().__init__()
        # the values given (a declared default stays with its declaration: the command line
        # passes every declared parameter), validated here, where they enter (definitions:
        # the module's, at fit)
        named = {k: v for k, v in policy_parameters.items() if not _is_default(k, v)}
        twice = sorted(set(named) & set(parameters or {}))
        if twice:
            raise ValueError(f"calibration.parameters repeats named arguments {twice}")
        self.parameters = {**named, **(parameters or {})}
        PolicySettings(
            target,
            seed=seed,
            guarantee=guarantee,
            guarantee_method=guarantee_method,
            **self.parameters,
        )
        if mixture_ratio <= 0:
            raise ValueError(f"mixture_ratio must be > 0, got {mixture_ratio}")
        self.target, self.seed, self.mixture_ratio = target, seed, mixture_ratio
        self.temperature_scaling = temperature_scaling
        if window_json is not None:
            if fitted_json is not None:
                raise ValueError("calibration: give fitted_json only (window_json is its old name)")
            rank_zero_info("note: calibration.window_json is now calibration.fitted_json")
            fitted_json = window_json
        self.fitted_json = fitted_json
        self.recalibrate = recalibrate
        self.guarantee, self.guarantee_method = guarantee, guarantee_method
        self.fitted: dict = {}

    def policy_settings(self, definitions: str) -> PolicySettings:
        """The settings every policy is fitted with.

        Args:
            definitions: the cascade module's metric definitions (``paper`` or ``standard``).
        """
        return PolicySettings(
            self.target,
            seed=self.seed,
            definitions=definitions,
            guarantee=self.guarantee,
            guarantee_method=self.guarantee_method,
            **self.parameters,
        )

    def unreachable_with_one_member(
        self,
        logits: torch.Tensor,
        targets: torch.Tensor,
        policy_names: list[str],
        score: str,
        definitions: str,
        heldout_name: str,
    ) -> dict[str, str]:
        """The policies this calibration would leave out, judged from the first member alone:
        their first stage is fitted on its held-out ``logits`` exactly as the calibration will
        fit it (stage 1 of any cascade is that member), before the other members are trained.
        Policies fitted on a test mixture are not judged.

        Args:
            logits: the first member's N x C held-out logits.
            targets: the N held-out labels.
            policy_names: the policies to judge.
            score: the confidence score the cascade uses.
            definitions: the cascade module's metric definitions.
            heldout_name: the held-out dataset's name (for the messages).

        Returns:
            name -> why that policy would not be fitted.

        Raises:
            ValueError: the held-out split is too small for the target (the calibration would
                refuse it too).
        """
        pair = [logits.float(), logits.float()]  # stage 1, and a stand-in for the rest
        temperatures = fit_temperatures(pair, targets) if self.temperature_scaling else None
        conf, correct = stage_confidences(pair, score, targets, temperatures, include_final=True)
        final_conf, final_correct = conf.pop(), correct.pop()
        names = [n for n in policy_names if not policy_entry(n).needs_mixture]
        inputs = FitInputs(conf, correct, None, heldout_name, final_conf, final_correct, [1.0, 1.0])
        _, not_fitted = fit_reachable_policies(names, inputs, self.policy_settings(definitions))
        return not_fitted

    @staticmethod
    def _leave_out_unfitted(trainer, pl_module, policies: dict, not_fitted: dict) -> None:
        """Policies whose target is out of reach on the held-out split are left out of the
        evaluation, each with a warning; none fitted at all is the first reason as an error."""
        if not policies:
            raise ValueError(f"calibration: {next(iter(not_fitted.values()))}")
        for name, reason in not_fitted.items():
            if trainer.is_global_zero:
                print(
                    f"warning: {name} not fitted: {reason}; evaluating {', '.join(policies)} "
                    "(a looser calibration.target reaches it)",
                    file=sys.stderr,
                    flush=True,
                )
        pl_module.policy_names = [n for n in pl_module.policy_names if n in policies]

    @torch.no_grad()
    def member_logits(self, pl_module, dataset: Dataset, batch_size: int):
        """Every member's logits on ``dataset`` (whole dataset on every rank), and targets.

        Args:
            pl_module: The cascade module whose members run.
            dataset: The split to run them on.
            batch_size: Samples per batch.

        Returns:
            (one (N, C) float tensor of logits per member, in cascade order; the N targets).
        """
        per_member, targets = [[] for _ in pl_module.members], []
        trainer = getattr(pl_module, "_trainer", None)
        for x, y, _ in DataLoader(dataset, batch_size=batch_size, shuffle=False):
            if trainer is not None and trainer.received_sigterm:  # outside Lightning's loops
                raise SIGTERMException()
            x = x.to(pl_module.device)
            for k, member in enumerate(pl_module.members):
                per_member[k].append(member(x).float().cpu())
            targets.append(y)
        return [torch.cat(chunks) for chunks in per_member], torch.cat(targets)

    def test_mixture(self, dm) -> Dataset:
        """ID test set + pooled OOD sets, subsampled to ``mixture_ratio`` with ``seed``.

        Args:
            dm: The run's cascade datamodule (its ID test set and its sets of role ``ood``).

        Returns:
            The unlabelled mixture (its labels are not used).

        Raises:
            ValueError: The datamodule has no dataset of role ``ood``.
        """
        id_set = dm.eval_sets[dm.roles.id]
        oods = [dm.eval_sets[n] for n in dm.roles.ood]
        if not oods:
            raise ValueError("window_adjusted needs at least one dataset with role 'ood'")
        pooled = ConcatDataset(oods)
        keep_id, keep_ood = scod_mixture(len(id_set), len(pooled), self.mixture_ratio, self.seed)
        return ConcatDataset([Subset(id_set, keep_id.tolist()), Subset(pooled, keep_ood.tolist())])

    def on_test_start(self, trainer, pl_module) -> None:
        """Fit the cascade on the held-out split before the test sets run, as the class describes.

        A cascade already calibrated (loaded from a cascade checkpoint) keeps its policies
        unless ``recalibrate`` is set.

        Args:
            trainer: The test run's trainer.
            pl_module: The cascade module; its ``fitted`` receives the fitted cascade.
        """
        if pl_module.fitted is not None and not self.recalibrate:
            rank_zero_info("CascadeCalibration: cascade already calibrated, keeping its policies")
            return
        dm = cascade_datamodule(trainer)
        settings = self.policy_settings(pl_module.definitions)
        inputs, logits, targets, temperatures = self.heldout_inputs(dm, pl_module)
        policies, not_fitted = fit_reachable_policies(pl_module.policy_names, inputs, settings)
        self._leave_out_unfitted(trainer, pl_module, policies, not_fitted)
        info = {
            "heldout": inputs.heldout_name,
            "heldout_size": len(targets),
            "score": pl_module.score,
            "definitions": pl_module.definitions,
            "target": self.target,
            "guarantee": self.guarantee,
            "guarantee_method": self.guarantee_method,
            "parameters": settings.resolved(),  # every declared parameter, given or default
        }
        if not_fitted:  # left out: their target is out of reach on the held-out split
            info["not_fitted"] = not_fitted
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

    def heldout_inputs(self, dm, pl_module) -> tuple[FitInputs, list, torch.Tensor, object]:
        """What the policies are fitted on: every member's logits on the whole held-out split
        (on every rank, so every rank fits the same policies), scored per stage, the members'
        MACs and, when a policy needs it, the unlabelled test mixture's stage scores.

        Args:
            dm: The run's cascade datamodule (its held-out split and test sets).
            pl_module: The cascade module whose members run.

        Returns:
            (the fit inputs, the members' held-out logits, the targets, the temperatures or
            None).
        """
        heldout_name = dm.roles.heldout
        heldout = dm.eval_sets[heldout_name]
        if len(heldout) == 0:
            raise ValueError(f"calibration: the held-out split {heldout_name!r} is empty")
        was_training = pl_module.training
        pl_module.eval()
        with torch.inference_mode(False), torch.no_grad():
            logits, targets = self.member_logits(pl_module, heldout, dm.batch_size)
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
                mixed = self.member_logits(pl_module, self.test_mixture(dm), dm.batch_size)[0]
                mixture, _ = stage_confidences(mixed, pl_module.score, None, temperatures)
        pl_module.train(was_training)
        inputs = FitInputs(
            conf, correct, mixture, heldout_name, final_conf, final_correct, stage_macs
        )
        return inputs, logits, targets, temperatures

    def state_dict(self) -> dict:
        """The fitted cascade as a dict, kept in the run's checkpoints.

        Returns:
            ``{"fitted": ...}`` (empty before calibration).
        """
        return {"fitted": self.fitted}

    def load_state_dict(self, state_dict: dict) -> None:
        """Restore what [`state_dict`][] returned.

        Args:
            state_dict: The callback's state from a checkpoint.
        """
        self.fitted = state_dict.get("fitted", {})
