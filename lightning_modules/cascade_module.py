"""The cascade module: online early-exit evaluation of an ensemble's members."""

from __future__ import annotations

import torch
from lightning.pytorch import LightningModule

from window_cascades.cascade.bootstrap import Bootstrap
from window_cascades.cascade.engine import run_cascade
from window_cascades.cascade.fitted import FittedCascade
from window_cascades.cascade.member_runner import MemberRunner
from window_cascades.cascade.metric_registry import MetricSettings, check_report_points
from window_cascades.cascade.policy_registry import check_policies, default_policies
from window_cascades.datamodules.contract import UNREADABLE, cascade_datamodule
from window_cascades.lightning_modules.cascade_data_input import (
    datamodule_image,
    datamodule_input,
)
from window_cascades.lightning_modules.cascade_deployment import check_deployable, decisions
from window_cascades.lightning_modules.cascade_evaluation import (
    CascadeEvaluation,
    evaluate_policies,
)
from window_cascades.lightning_modules.cascade_members import (
    check_distinct_checkpoints,
    named_members_notice,
)
from window_cascades.lightning_modules.cascade_state import load_cascade_state, save_cascade_state
from window_cascades.lightning_modules.complexity import count_macs_params
from window_cascades.lightning_modules.input_options import Normalization
from window_cascades.lightning_modules.member_checkpoint import (
    build_member,
    load_member,
    member_spec,
)
from window_cascades.lightning_modules.member_specs import (
    MEMBER_SPECS,
    check_member_specs,
    spec_names,
)
from window_cascades.lightning_modules.metric_wrappers import CascadeOutputs
from window_cascades.uncertainty.definitions import get_definitions
from window_cascades.uncertainty.scores import check_score


def online_score(score: str) -> str:
    """``score`` if the online cascade computes it (a registered score of the members'
    probabilities or logits); a feature score (``react``, ``knn``, ...) is refused with where to
    evaluate it: its statistics and parameters are fitted on cached features, offline.

    Args:
        score: the ``--model.score`` value.
    """
    from window_cascades.uncertainty.score_registry import score_entry

    if score_entry(check_score(score)).needs_features:
        raise ValueError(
            f"--model.score {score}: it reads the members' penultimate features and statistics "
            "of the training split, which the online cascade does not compute; cache the "
            "members' features (--cache.features true) and evaluate it with window-cascades "
            f"evaluate-logits --scores {score} --train NAME"
        )
    return score


class CascadeModule(LightningModule):
    """Evaluates cascade policies over an ensemble's members with real early exit.

    The policies and temperatures are fitted by the ``CascadeCalibration`` callback and kept as
    one value, [`window_cascades.cascade.fitted.FittedCascade`][] (``self.fitted``), which
    checkpoints carry. In ``test`` every configured dataset is one dataloader; for each policy,
    member k + 1 runs only on the samples that stage k passed on. The ``CascadeResultsWriter``
    callback writes what the run produced (``self.evaluation``).

    A cascade checkpoint (``cascade.ckpt``) carries its members: their weights and, as plain
    data, what rebuilds them (``member_specs``), so it loads alone, with no member file beside
    it, in ``cascade predict``, ``serve`` and ``CascadeModule.load_from_checkpoint(path)``.

    Args:
        members: member checkpoint paths, in cascade order. Left out (or empty) with
            ``member_specs``: the members are rebuilt from them. Given with ``member_specs``
            (a checkpoint's members named explicitly), they override the embedded ones: the
            count must match, and a file whose SHA-256 differs from the recorded one is used
            with a one-line notice (the policies were fitted for the recorded one).
        policies: registered policy names to compare (``window_cascades.cascade.policy_registry``;
            ``--list-policies`` of the offline evaluator lists them); None: the policies
            registered as default.
        score: confidence score used for exiting and for the metrics.
        risks: risks r (fractions) reported as ``cov@r``.
        coverages: coverages c (fractions) reported as ``risk@c`` and ``scod_risk@c``.
        definitions: ``standard`` or ``paper`` (the reference code's rules) for the window
            and the metrics.
        ood_tpr: ID acceptance rate p of ``fpr@p``.
        scod_ratio: OOD : ID mixing ratio of the SCOD metrics.
        scod_beta: cost of an accepted OOD sample in SCOD.
        bootstrap: resamples of every test set for 95% intervals (``ci_low``/``ci_high`` in
            metrics.csv) and paired differences against single and ensemble (deltas.csv); 0 is
            off. The policies stay as calibrated: the intervals are over the test sample.
        bootstrap_seed: seed of the resamples (the offline evaluator's with the same seed
            draws the same resamples).
        member_specs: the embedded members of a cascade checkpoint, one plain-data record
            per member (``window_cascades.lightning_modules.member_specs``); set by
            ``load_from_checkpoint`` and ``--ckpt_path``, not by hand.
    """

    def __init__(
        self,
        members: list[str] | None = None,
        policies: list[str] | None = None,
        score: str = "msp",
        risks: list[float] | None = None,
        coverages: list[float] | None = None,
        definitions: str = "standard",
        ood_tpr: float = 0.95,
        scod_ratio: float = 1.0,
        scod_beta: float = 1.0,
        bootstrap: int = 0,
        bootstrap_seed: int = 0,
        member_specs: list[dict] | None = None,
    ):
        super().__init__()
        self.save_hyperparameters()
        members = [str(m) for m in members or []]
        specs = check_member_specs(member_specs, MEMBER_SPECS) if member_specs else None
        if not members and not specs:
            raise ValueError(
                "CascadeModule needs at least one member checkpoint (--model.members, in cascade "
                "order; a --ckpt_path cascade checkpoint records its own)"
            )
        self.policy_names = check_policies(policies or default_policies())
        self.score = online_score(score)
        self.definitions = get_definitions(definitions).name
        check_report_points(
            [0.05] if risks is None else risks,
            [0.8] if coverages is None else coverages,
            ood_tpr,
            scod_ratio,
            scod_beta,
            prefix="--model.",
        )
        self.settings = MetricSettings(
            tuple(risks or [0.05]),
            tuple(coverages or [0.8]),
            ood_tpr=ood_tpr,
            definitions=self.definitions,
            scod_ratio=scod_ratio,
            scod_beta=scod_beta,
        )
        Bootstrap(bootstrap, bootstrap_seed)  # checked here, made per test run
        self.members_named = bool(members)  # then they win over a checkpoint's weights
        self._set_members(members, specs)
        self.members = torch.nn.ModuleList([m.model for m in self.member_modules])
        classes = {m.num_classes for m in self.members}
        if len(classes) != 1:
            found = {n: m.num_classes for n, m in zip(self.member_names, self.members, strict=True)}
            raise ValueError(f"members have different class counts: {found}")
        self.fitted: FittedCascade | None = None
        self.data_normalization: Normalization | None = None
        self.data_crop_pct: float | None = None
        # the data's image size and resize mode, kept for predict over new image files
        self.data_image_size: int | None = None
        self.data_interpolation: str | None = None
        self.evaluation = CascadeEvaluation()
        self.outputs = torch.nn.ModuleDict()

    def _set_members(self, members: list[str], specs: list[dict] | None) -> None:
        """The member modules, paths, SHA-256s and specs: from the named member files
        (with a notice for any that differs from the checkpoint's recorded one), else rebuilt
        from the checkpoint's embedded specs. The members' models are the state_dict's
        ``members.<k>.*``; the member modules, which own each model's input, are kept out of
        the module tree."""
        if members and specs and len(members) != len(specs):
            raise ValueError(
                f"--model.members: {len(members)} member(s) given, but the cascade checkpoint "
                f"was calibrated with {len(specs)} ({', '.join(spec_names(specs))}): name one "
                "file per member, in cascade order, or leave --model.members out to use the "
                "embedded ones"
            )
        if members:
            self.member_paths = members
            self.member_sha256 = check_distinct_checkpoints(members)
            self.member_modules = [load_member(p) for p in members]
            self.member_specs = [
                member_spec(m, p, d)
                for m, p, d in zip(self.member_modules, members, self.member_sha256, strict=True)
            ]
            if specs:
                named_members_notice(members, self.member_sha256, specs)
        else:
            self.member_specs = [dict(s) for s in specs]
            self.member_paths = [str(s.get("path") or "") for s in specs]
            self.member_sha256 = [s.get("sha256") for s in specs]
            self.member_modules = [build_member(s) for s in specs]

    @property
    def num_stages(self) -> int:
        return len(self.members)

    @property
    def member_names(self) -> list[str]:
        """The members' names, in cascade order (their run folders, e.g. ``m0``, ``m1``)."""
        return spec_names(self.member_specs)

    def policies(self) -> list:
        """The fitted policies, in configured order."""
        if self.fitted is None:
            raise RuntimeError(
                "the cascade is not calibrated: add the CascadeCalibration callback "
                "or load a calibrated cascade checkpoint"
            )
        return self.fitted.select(self.policy_names)

    def set_data_input(
        self, normalization: Normalization | None = None, crop_pct: float | None = None
    ) -> None:
        """The input the cascade is given: (mean, std) per channel, and the fraction of each
        source image an evaluation image shows. Members that expect another convert
        (``window_cascades.lightning_modules.member_input``). Set from the datamodule at setup of
        test and predict runs and kept in the cascade checkpoint, so ``decide`` on a loaded cascade
        takes images prepared as at calibration. None leaves that part as it is.

        Args:
            normalization: The data's (mean, std) per channel; None keeps the current one.
            crop_pct: The fraction of each source image an evaluation image shows, in (0, 1];
                None keeps the current one.
        """
        if normalization is not None:
            self.data_normalization = normalization
        if crop_pct is not None:
            self.data_crop_pct = crop_pct
        for member in self.member_modules:
            member.input = member.input.for_data(normalization, crop_pct)

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        """Record the fitted cascade and the data's input in the checkpoint.

        Args:
            checkpoint: The checkpoint being saved.
        """
        save_cascade_state(self, checkpoint)

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        """Restore the fitted cascade and the data's input a cascade checkpoint recorded.

        Args:
            checkpoint: The checkpoint being loaded (checked before anything is restored).
        """
        load_cascade_state(self, checkpoint)

    def setup(self, stage: str) -> None:
        """Prepare one output per dataset and policy, and take the datamodule's input.

        Args:
            stage: Lightning's stage (``"test"``, ``"predict"``, ...).
        """
        names = list(cascade_datamodule(self.trainer).roles.evaluated())
        for name in names:
            for policy in self.policy_names:
                self.outputs[f"{name}/{policy}"] = CascadeOutputs()
        self.evaluation = CascadeEvaluation(member_calls={n: [0] * self.num_stages for n in names})
        self.predict_policy = "window"
        # before calibration, which runs the members in on_test_start
        self.set_data_input(*datamodule_input(self.trainer.datamodule))
        self.data_image_size, self.data_interpolation = datamodule_image(self.trainer.datamodule)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Member 1's logits (the cascade's early exit runs in [`test_step`][] and [`decide`][]).

        Args:
            x: Images, shape (N, C, H, W).

        Returns:
            Member 1's logits, shape (N, classes).
        """
        return self.members[0](x)

    def test_step(self, batch, batch_idx: int, dataloader_idx: int = 0) -> None:
        """Run every policy's cascade on a batch with real early exit and collect its outputs.

        Args:
            batch: (images, labels, sample indices).
            batch_idx: The batch's index.
            dataloader_idx: The dataset's index in the datamodule's roles.
        """
        x, y, sample_ids = batch
        name = list(self.trainer.datamodule.roles.evaluated())[dataloader_idx]
        ev = self.evaluation
        if ev.stage_macs is None:
            counts = [count_macs_params(m, tuple(x.shape[1:])) for m in self.members]
            ev.stage_macs = [float(c[0]) for c in counts]
            ev.member_params = [c[1] for c in counts]
        runner = MemberRunner(self.members, x, ev.member_calls[name])
        temperatures = self.fitted.temperatures if self.fitted else None
        for policy in self.policies():
            result = run_cascade(runner, x.shape[0], policy, self.score, sample_ids, temperatures)
            self.outputs[f"{name}/{policy.name}"].update(result, y, sample_ids)

    def check_deployable(self, policy: str) -> None:
        """Refuse an uncalibrated cascade, a policy it was not calibrated with, or a checkpoint
        without operating points (``window_cascades.lightning_modules.cascade_deployment``).

        Args:
            policy: The policy ``decide`` would apply.
        """
        check_deployable(self.fitted, policy)

    @torch.no_grad()
    def decide(
        self, x: torch.Tensor, policy: str = "window", sample_ids: torch.Tensor | None = None
    ) -> dict[str, torch.Tensor]:
        """Apply the calibrated cascade to a batch with real early exit.

        Args:
            x: Images prepared as those the cascade was calibrated on, shape (N, C, H, W).
            policy: The policy to apply, one the cascade was calibrated with (e.g. ``"window"``).
            sample_ids: The samples' dataset indices (the ``random`` policy draws from them);
                None numbers the batch from 0.

        Returns:
            per sample ([`window_cascades.cascade.decisions.DECISION_FIELDS`][]):
            ``prediction`` (class), ``confidence`` (the score at the exit stage), ``decision``
            (the one outcome, ``ood`` > ``reject`` > ``accept`` in precedence), ``accepted``
            and ``ood`` (that outcome as flags, never both true), ``exit_stage`` (members run).
        """
        check_deployable(self.fitted, policy)
        return decisions(self.members, self.fitted, self.score, x, policy, sample_ids)

    def predict_step(self, batch, batch_idx: int, dataloader_idx: int = 0) -> dict:
        """[`decide`][] with the policy chosen by ``CascadePredictionsWriter``.

        Args:
            batch: (images, labels, sample indices); a label of -2 marks a file that could not
                be read.
            batch_idx: The batch's index.
            dataloader_idx: The dataset's index among the run's dataloaders.

        Returns:
            ``decide``'s values with ``index`` (the sample indices) and ``readable``.
        """
        x, y, sample_ids = batch
        return {
            "index": sample_ids.cpu(),
            **self.decide(x, self.predict_policy, sample_ids),
            "readable": (y != UNREADABLE).cpu(),  # a file that could not be read: no prediction
        }

    def on_test_epoch_end(self) -> None:
        """Sum the member calls over processes, evaluate every policy and log the metrics.

        Each metric is logged as ``<role>/<dataset>/<policy>/<metric>``; the rows stay in
        ``self.evaluation`` for the ``CascadeResultsWriter`` callback.
        """
        roles, ev = self.trainer.datamodule.roles.evaluated(), self.evaluation
        for name, calls in ev.member_calls.items():  # summed over processes
            total = self.trainer.strategy.reduce(
                torch.tensor(calls, dtype=torch.float64, device=self.device), reduce_op="sum"
            )
            ev.member_calls[name] = [int(c) for c in total.tolist()]
        evaluate_policies(
            ev,
            self.policies(),
            self.outputs,
            roles,
            self.score,
            self.settings,
            self.fitted,
            Bootstrap(self.hparams.bootstrap, self.hparams.bootstrap_seed),
        )
        for row in ev.rows:
            key = f"{row['role']}/{row['dataset']}/{row['policy']}/{row['metric']}"
            self.log(key, row["value"], add_dataloader_idx=False, rank_zero_only=True)
