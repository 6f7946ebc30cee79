"""The cascade module: online early-exit evaluation of an ensemble's members."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

import torch
from lightning.pytorch import LightningModule

from artifacts.cached_logits import file_sha256
from cascade.bootstrap import Bootstrap
from cascade.engine import run_cascade
from cascade.evaluation import policy_rows
from cascade.fitted import CHECKPOINT_KEY, FittedCascade
from cascade.member_runner import MemberRunner
from cascade.metric_registry import MetricSettings, check_report_points
from cascade.offline import test_curves
from cascade.policy_registry import check_policies
from datamodules.contract import UNREADABLE, cascade_datamodule
from lightning_modules.cascade_checkpoint import (
    DATA_INPUT_KEY,
    check_data_input,
    check_fitted_cascade,
    checkpoint_members,
)
from lightning_modules.complexity import count_macs_params
from lightning_modules.input_options import (
    Normalization,
    as_normalization,
    check_crop_pct,
    datamodule_crop_pct,
    datamodule_normalization,
    normalization_dict,
)
from lightning_modules.lightning_private import attached_ckpt_path
from lightning_modules.member_checkpoint import load_member
from lightning_modules.metric_wrappers import CascadeOutputs
from uncertainty.definitions import get_definitions
from uncertainty.scores import check_score

MEMBERS_KEY = "cascade_members"  # cascade checkpoint: [{path, sha256}] of its members, in order


@dataclass
class CascadeEvaluation:
    """What one ``test`` run of the cascade produced (read by the results writer).

    Attributes:
        rows: the tidy metric rows; curves: policy -> {dataset: (coverage, risk)} on the ID
        and shifted sets;
        exit_stages: (dataset, policy) -> exit stage per sample; member_calls: dataset ->
        samples each member processed (all processes); stage_macs, member_params: per member;
        deltas: paired differences against single and ensemble (with a bootstrap), else None.
    """

    rows: list[dict] = field(default_factory=list)
    deltas: list[dict] | None = None
    curves: dict = field(default_factory=dict)
    exit_stages: dict = field(default_factory=dict)
    member_calls: dict = field(default_factory=dict)
    stage_macs: list[float] | None = None
    member_params: list[int] | None = None


def check_distinct_checkpoints(paths: list[str]) -> list[str | None]:
    """Refuse the same member twice (same file content, by SHA-256): its ensemble with itself
    is the single model at a higher cost.

    Returns:
        the hex SHA-256 of each file, in order (None for a missing file).
    """
    digests: dict[str, str] = {}
    found: list[str | None] = []
    for path in paths:
        if not Path(path).is_file():
            found.append(None)
            continue  # load_member names the missing file
        digest = file_sha256(path)
        if digest in digests:
            raise ValueError(
                f"members {digests[digest]} and {path} are the same checkpoint (SHA-256 "
                f"{digest[:12]}...): give distinct members"
            )
        digests[digest] = path
        found.append(digest)
    return found


def recorded_members(checkpoint: dict) -> list[dict]:
    """The members a cascade checkpoint was calibrated with: ``[{"path", "sha256"}]`` in cascade
    order (``sha256`` None for a checkpoint written before members were recorded)."""
    if MEMBERS_KEY in checkpoint:
        return [dict(m) for m in checkpoint[MEMBERS_KEY]]
    paths = (checkpoint.get("hyper_parameters") or {}).get("members") or []
    return [{"path": str(p), "sha256": None} for p in paths]


def check_same_members(given: list[str], checkpoint: dict, ckpt_path: str) -> None:
    """Refuse ``--model.members`` that are not the members ``ckpt_path`` was calibrated with.

    The cascade checkpoint carries its members' weights and Lightning restores them over the
    named members: other members named here would be silently ignored. Members are compared by
    file content (SHA-256), so moved or renamed copies are accepted; an empty ``given`` takes
    the checkpoint's members.

    Raises:
        FileNotFoundError: a named member file is missing.
        ValueError: naming both lists, when they differ.
    """
    if not given:
        return
    recorded = recorded_members(checkpoint)
    for path in given:
        if not Path(path).is_file():
            raise FileNotFoundError(f"--model.members: member checkpoint not found: {path}")
    if len(given) == len(recorded):
        same = all(
            file_sha256(path) == m["sha256"]
            if m["sha256"]
            else Path(path).resolve() == Path(m["path"]).resolve()
            for path, m in zip(given, recorded, strict=True)
        )
        if same:
            return
    raise ValueError(
        f"--model.members [{', '.join(map(str, given))}] are not the members {ckpt_path} was "
        f"calibrated with ([{', '.join(m['path'] for m in recorded)}], compared by SHA-256): "
        "give those, or leave --model.members out to use the checkpoint's; other members need "
        "a new calibration (test)"
    )


class CascadeModule(LightningModule):
    """Evaluates cascade policies over an ensemble's members with real early exit.

    The policies and temperatures are fitted by the ``CascadeCalibration`` callback and kept as
    one value, :class:`cascade.fitted.FittedCascade` (``self.fitted``), which checkpoints carry.
    In ``test`` every configured dataset is one dataloader; for each policy, member k + 1 runs
    only on the samples that stage k passed on. The ``CascadeResultsWriter`` callback writes
    what the run produced (``self.evaluation``).

    Args:
        members: member checkpoint paths, in cascade order.
        policies: registered policy names to compare (``cascade.policy_registry``; e.g.
            ``single``, ``ensemble``, ``single_threshold``, ``window``, ``window_adjusted``,
            ``random``).
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
    """

    def __init__(
        self,
        members: list[str],
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
    ):
        super().__init__()
        self.save_hyperparameters()
        self.member_paths = list(members)
        if len(members) < 1:
            raise ValueError("CascadeModule needs at least one member checkpoint")
        self.policy_names = check_policies(
            policies or ["single", "ensemble", "single_threshold", "window"]
        )
        self.score = check_score(score)
        self.definitions = get_definitions(definitions).name
        check_report_points(
            [0.05] if risks is None else risks,
            [0.8] if coverages is None else coverages,
            ood_tpr, scod_ratio, scod_beta, prefix="--model.",
        )  # fmt: skip
        self.settings = MetricSettings(
            tuple(risks or [0.05]),
            tuple(coverages or [0.8]),
            ood_tpr=ood_tpr,
            definitions=self.definitions,
            scod_ratio=scod_ratio,
            scod_beta=scod_beta,
        )
        Bootstrap(bootstrap, bootstrap_seed)  # checked here, made per test run
        self.member_sha256 = check_distinct_checkpoints(self.member_paths)
        # the members' models (state_dict keys members.<k>.*); the member modules, which own
        # each model's input, are kept out of the module tree
        self.member_modules = [load_member(p) for p in members]
        self.members = torch.nn.ModuleList([m.model for m in self.member_modules])
        classes = {m.num_classes for m in self.members}
        if len(classes) != 1:
            found = {p: m.num_classes for p, m in zip(members, self.members, strict=True)}
            raise ValueError(f"members have different class counts: {found}")
        self.fitted: FittedCascade | None = None
        self.data_normalization: Normalization | None = None
        self.data_crop_pct: float | None = None
        self.evaluation = CascadeEvaluation()
        self.outputs = torch.nn.ModuleDict()

    @property
    def num_stages(self) -> int:
        return len(self.members)

    def policies(self) -> list:
        """The fitted policies, in configured order."""
        if self.fitted is None:
            raise RuntimeError(
                "the cascade policies are not calibrated: add the CascadeCalibration callback "
                "or load a calibrated cascade checkpoint"
            )
        return self.fitted.select(self.policy_names)

    def set_data_input(
        self, normalization: Normalization | None = None, crop_pct: float | None = None
    ) -> None:
        """The input the cascade is given: (mean, std) per channel, and the fraction of each
        source image an evaluation image shows. Members that expect another convert
        (``lightning_modules.member_input``). Set from the datamodule at setup of test and
        predict runs and kept in the cascade checkpoint, so ``decide`` on a loaded cascade takes
        images prepared as at calibration. None leaves that part as it is."""
        if normalization is not None:
            self.data_normalization = normalization
        if crop_pct is not None:
            self.data_crop_pct = crop_pct
        for member in self.member_modules:
            member.input = member.input.for_data(normalization, crop_pct)

    def _take_data_input(self) -> None:
        dm = self.trainer.datamodule
        chans = getattr(dm, "input_shape", (None,))[0]
        norm = datamodule_normalization(dm, chans) if chans is not None else None
        self.set_data_input(norm, datamodule_crop_pct(dm))

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        if self.fitted is not None:
            checkpoint[CHECKPOINT_KEY] = self.fitted.to_dict()
        checkpoint[MEMBERS_KEY] = [
            {"path": str(p), "sha256": d}
            for p, d in zip(self.member_paths, self.member_sha256, strict=True)
        ]
        checkpoint[DATA_INPUT_KEY] = {
            "normalization": normalization_dict(self.data_normalization),
            "crop_pct": self.data_crop_pct,
        }

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        # checked here too, for checkpoints loaded outside the command (load_from_checkpoint)
        where = attached_ckpt_path(self) or "the cascade checkpoint"
        data = checkpoint.get(CHECKPOINT_KEY)
        if data:
            members = checkpoint_members(checkpoint.get("state_dict") or {})
            check_fitted_cascade(data, str(where), members)
        if checkpoint.get(DATA_INPUT_KEY) is not None:
            check_data_input(checkpoint[DATA_INPUT_KEY], str(where))
        self.fitted = FittedCascade.from_dict(data) if data else None
        # the calibration data's input, where this run's datamodule (setup) did not say
        data = checkpoint.get(DATA_INPUT_KEY) or {}
        norm, crop = data.get("normalization"), data.get("crop_pct")
        self.set_data_input(
            None
            if norm is None or self.data_normalization is not None
            else as_normalization(norm, len(norm["mean"]), DATA_INPUT_KEY),
            None
            if crop is None or self.data_crop_pct is not None
            else check_crop_pct(crop, DATA_INPUT_KEY),
        )

    def setup(self, stage: str) -> None:
        names = list(cascade_datamodule(self.trainer).roles)
        for name in names:
            for policy in self.policy_names:
                self.outputs[f"{name}/{policy}"] = CascadeOutputs()
        self.evaluation = CascadeEvaluation(member_calls={n: [0] * self.num_stages for n in names})
        self.predict_policy = "window"
        self._take_data_input()  # before calibration, which runs the members in on_test_start

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.members[0](x)

    def test_step(self, batch, batch_idx: int, dataloader_idx: int = 0) -> None:
        x, y, sample_ids = batch
        name = list(self.trainer.datamodule.roles)[dataloader_idx]
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
        without operating points (calibrated by an older version)."""
        if self.fitted is None:
            raise ValueError(
                "predict needs a calibrated cascade: give --ckpt_path of a cascade.ckpt written by "
                "a test run (this one was never calibrated)"
            )
        if policy not in self.fitted.policies:
            raise ValueError(
                f"policy {policy!r} was not fitted; the cascade has {sorted(self.fitted.policies)}"
            )
        if "operating_points" not in self.fitted.info:
            raise ValueError(
                "this cascade checkpoint has no operating points (calibrated by an older "
                "version): recalibrate it with a test run"
            )

    @torch.no_grad()
    def decide(
        self, x: torch.Tensor, policy: str = "window", sample_ids: torch.Tensor | None = None
    ) -> dict[str, torch.Tensor]:
        """Apply the calibrated cascade to a batch with real early exit.

        Returns:
            per sample: ``prediction`` (class), ``confidence`` (the score at the exit stage),
            ``accepted`` (confidence >= the operating threshold fitted for the target on the
            policy's held-out output), ``ood`` (confidence < the threshold accepting ``ood_tpr``
            of that output), ``exit_stage`` (members run).
        """
        self.check_deployable(policy)
        point = self.fitted.info["operating_points"][policy]
        ids = torch.arange(x.shape[0]) if sample_ids is None else sample_ids
        runner = MemberRunner(self.members, x, [0] * self.num_stages)
        result = run_cascade(
            runner, x.shape[0], self.fitted.policies[policy], self.score, ids,
            self.fitted.temperatures,
        )  # fmt: skip
        accept = float("inf") if point["accept"] is None else point["accept"]
        conf = result.confidence.cpu()
        return {
            "prediction": result.probs.argmax(-1).cpu(),
            "confidence": conf,
            "accepted": conf >= accept,
            "ood": conf < point["ood"],
            "exit_stage": result.exit_stage.cpu(),
        }

    def predict_step(self, batch, batch_idx: int, dataloader_idx: int = 0) -> dict:
        """:meth:`decide` with the policy chosen by ``CascadePredictionsWriter``."""
        x, y, sample_ids = batch
        return {
            "index": sample_ids.cpu(),
            **self.decide(x, self.predict_policy, sample_ids),
            "readable": (y != UNREADABLE).cpu(),  # a file that could not be read: no prediction
        }

    def on_test_epoch_end(self) -> None:
        roles, ev = self.trainer.datamodule.roles, self.evaluation
        for name, calls in ev.member_calls.items():  # summed over processes
            total = self.trainer.strategy.reduce(
                torch.tensor(calls, dtype=torch.float64, device=self.device), reduce_op="sum"
            )
            ev.member_calls[name] = [int(c) for c in total.tolist()]
        ev.rows = []
        info = self.fitted.info if self.fitted else {}
        settings = replace(
            self.settings,
            target=info.get("target"),
            guarantee=info.get("guarantee"),
            guarantee_method=info.get("guarantee_method", "ltt"),
        )  # the operating point of the calibrated target
        bootstrap = Bootstrap(self.hparams.bootstrap, self.hparams.bootstrap_seed)
        for policy in self.policies():
            results, targets = {}, {}
            for name in roles:
                metric = self.outputs[f"{name}/{policy.name}"]
                results[name], targets[name] = metric.compute()
                metric.reset()
                ev.exit_stages[name, policy.name] = results[name].exit_stage.cpu()
            ev.rows.extend(
                policy_rows(
                    policy, self.score, results, targets, roles, ev.stage_macs, settings, bootstrap
                )
            )
            ev.curves[policy.name] = test_curves(results, roles)
        if bootstrap.num:
            ev.rows = bootstrap.annotate(ev.rows)
            ev.deltas = bootstrap.delta_rows(ev.rows)
        for row in ev.rows:
            key = f"{row['role']}/{row['dataset']}/{row['policy']}/{row['metric']}"
            self.log(key, row["value"], add_dataloader_idx=False, rank_zero_only=True)
