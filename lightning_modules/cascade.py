"""The cascade module: online early-exit evaluation of an ensemble's members."""

from __future__ import annotations

from pathlib import Path

import torch
from lightning.pytorch import LightningModule

from cascade.engine import run_cascade
from cascade.evaluation import MetricSettings, policy_rows
from cascade.policies import CascadePolicy, IntervalPolicy, check_policies, policy_from_dict
from cascade.stage_scores import Temperatures
from lightning_modules.complexity import count_macs_params
from lightning_modules.member import load_member
from lightning_modules.metrics import CascadeOutputs
from lightning_modules.wandb_report import log_cascade_report, wandb_runs
from uncertainty.definitions import get_definitions
from uncertainty.scores import check_score
from uncertainty.selective import risk_coverage_curve


class StageRunner:
    """Runs member k on just the requested samples of a batch, once per sample.

    Several policies evaluated on the same batch share the member calls: a sample a policy
    asks for that another policy already had computed is not run again. ``calls[k]`` counts
    the samples member k actually processed.
    """

    def __init__(self, members: torch.nn.ModuleList, x: torch.Tensor, calls: list[int]):
        self.members, self.x, self.calls = members, x, calls
        self.cache: dict[int, torch.Tensor] = {}
        self.done: dict[int, torch.Tensor] = {}

    def __call__(self, k: int, index: torch.Tensor) -> torch.Tensor:
        n = self.x.shape[0]
        if k not in self.done:
            self.done[k] = torch.zeros(n, dtype=torch.bool)
        missing = index[~self.done[k][index]]
        if missing.numel():
            logits = self.members[k](self.x[missing.to(self.x.device)]).float().cpu()
            if not torch.isfinite(logits).all():
                raise ValueError(f"member {k} produced NaN or Inf logits")
            if k not in self.cache:
                self.cache[k] = torch.empty(n, logits.shape[-1])
            self.cache[k][missing] = logits
            self.done[k][missing] = True
            self.calls[k] += missing.numel()
        return self.cache[k][index]


class CascadeModule(LightningModule):
    """Evaluates cascade policies over an ensemble's members with real early exit.

    The policies' bounds are fitted by the ``WindowCalibration`` callback and kept in the
    ``policy_bounds`` buffer, so a checkpoint of this module carries them. In ``test`` every
    configured dataset is one dataloader; for each policy, member k + 1 runs only on the
    samples that stage k passed on.

    Args:
        members: member checkpoint paths, in cascade order.
        policies: policy names to compare (``single``, ``ensemble``, ``single_threshold``,
            ``window``, ``window_adjusted``, ``random``).
        score: confidence score used for exiting and for the metrics.
        risks: risks r (fractions) reported as ``cov@r``.
        coverages: coverages c (fractions) reported as ``risk@c`` and ``scod_risk@c``.
        definitions: ``standard`` or ``paper`` (the reference code's rules) for the window
            and the metrics.
        ood_tpr: ID acceptance rate p of ``fpr@p``.
        scod_ratio: OOD : ID mixing ratio of the SCOD metrics.
        scod_beta: cost of an accepted OOD sample in SCOD.
        results_dir: where ``metrics.csv``, ``summary.json``, plots and ``cascade.ckpt`` go
            (files by rank 0); None writes nothing. ``summary.json``'s ``member_calls`` counts,
            per dataset, the samples each member processed, summed over processes.
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
        results_dir: str | None = "outputs/cascade",
    ):
        super().__init__()
        # results_dir is where this run writes, not part of the model: LightningCLI would
        # otherwise take it from a restored checkpoint and overwrite that run's results
        self.save_hyperparameters(ignore=["results_dir"])
        self.results_dir = results_dir
        self.member_paths = list(members)
        if len(members) < 1:
            raise ValueError("CascadeModule needs at least one member checkpoint")
        self.policy_names = check_policies(
            policies or ["single", "ensemble", "single_threshold", "window"]
        )
        self.score = check_score(score)
        self.definitions = get_definitions(definitions).name
        self.settings = MetricSettings(
            tuple(risks or [0.05]),
            tuple(coverages or [0.8]),
            ood_tpr=ood_tpr,
            definitions=self.definitions,
            scod_ratio=scod_ratio,
            scod_beta=scod_beta,
        )
        self.members = torch.nn.ModuleList([load_member(p).model for p in members])
        classes = {m.num_classes for m in self.members}
        if len(classes) != 1:
            found = {p: m.num_classes for p, m in zip(members, self.members, strict=True)}
            raise ValueError(f"members have different class counts: {found}")
        m = len(members)
        self.register_buffer(
            "policy_bounds",
            torch.zeros(len(self.policy_names), max(m - 1, 0), 2, dtype=torch.float64),
        )
        self.register_buffer("calibrated", torch.tensor(False))
        # temperature of member k, and of the ensemble of the first k + 1 members (1 = none)
        self.register_buffer("member_temperature", torch.ones(m, dtype=torch.float64))
        self.register_buffer("ensemble_temperature", torch.ones(m, dtype=torch.float64))
        self.policy_details: dict[str, dict] = {}
        self.stage_macs: list[float] | None = None
        self.member_params: list[int] | None = None
        self.result_rows: list[dict] = []
        self.curves: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
        self.exit_stages: dict[tuple[str, str], torch.Tensor] = {}
        self.outputs = torch.nn.ModuleDict()

    @property
    def num_stages(self) -> int:
        return len(self.members)

    def set_policies(
        self, policies: dict[str, CascadePolicy], temperatures: Temperatures | None = None
    ) -> None:
        """Install fitted policies and temperatures (as buffers, so checkpoints carry them)."""
        for i, name in enumerate(self.policy_names):
            policy = policies[name]
            if isinstance(policy, IntervalPolicy):
                self.policy_bounds[i] = policy.bounds.to(self.policy_bounds)
            else:
                self.policy_bounds[i] = float("nan")
            self.policy_details[name] = policy.to_dict()
        self.member_temperature.fill_(1.0)
        self.ensemble_temperature.fill_(1.0)
        if temperatures is not None:
            self.member_temperature.copy_(torch.tensor(temperatures.members))
            for k, t in temperatures.ensembles.items():
                self.ensemble_temperature[k - 1] = t
        self.calibrated.fill_(True)

    def temperatures(self) -> Temperatures | None:
        """The installed temperatures, or None when none was fitted."""
        if bool((self.member_temperature == 1).all() and (self.ensemble_temperature == 1).all()):
            return None
        ens = {k + 1: float(t) for k, t in enumerate(self.ensemble_temperature.tolist()) if k}
        return Temperatures([float(t) for t in self.member_temperature.tolist()], ens)

    def policies(self) -> list[CascadePolicy]:
        """The installed policies, in configured order."""
        if not bool(self.calibrated):
            raise RuntimeError(
                "the cascade policies are not calibrated: add the WindowCalibration callback "
                "or load a calibrated cascade checkpoint"
            )
        out = []
        for i, name in enumerate(self.policy_names):
            details = self.policy_details.get(name, {"name": name})
            if name == "random":
                out.append(policy_from_dict(details))
            else:  # the buffers are the source of truth for interval bounds
                out.append(
                    IntervalPolicy(
                        name,
                        self.policy_bounds[i].cpu(),
                        details.get("setting", ""),
                        details.get("stages", []),
                    )
                )
        return out

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        checkpoint["cascade_policies"] = self.policy_details

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        self.policy_details = dict(checkpoint.get("cascade_policies", {}))

    def setup(self, stage: str) -> None:
        names = self.trainer.datamodule.eval_names
        for name in names:
            for policy in self.policy_names:
                self.outputs[f"{name}/{policy}"] = CascadeOutputs()
        self.member_calls = {name: [0] * self.num_stages for name in names}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.members[0](x)

    def test_step(self, batch, batch_idx: int, dataloader_idx: int = 0) -> None:
        x, y, sample_ids = batch
        name = self.trainer.datamodule.eval_names[dataloader_idx]
        if self.stage_macs is None:
            counts = [count_macs_params(m, tuple(x.shape[1:])) for m in self.members]
            self.stage_macs = [float(c[0]) for c in counts]
            self.member_params = [c[1] for c in counts]
        runner = StageRunner(self.members, x, self.member_calls[name])
        temperatures = self.temperatures()
        for policy in self.policies():
            result = run_cascade(runner, x.shape[0], policy, self.score, sample_ids, temperatures)
            self.outputs[f"{name}/{policy.name}"].update(result, y, sample_ids)

    def on_test_epoch_end(self) -> None:
        dm = self.trainer.datamodule
        for name, calls in self.member_calls.items():  # summed over processes
            total = self.trainer.strategy.reduce(
                torch.tensor(calls, dtype=torch.float64, device=self.device), reduce_op="sum"
            )
            self.member_calls[name] = [int(c) for c in total.tolist()]
        roles = dm.roles
        self.result_rows = []
        for policy in self.policies():
            results, targets = {}, {}
            for name in roles:
                metric = self.outputs[f"{name}/{policy.name}"]
                results[name], targets[name] = metric.compute()
                metric.reset()
                self.exit_stages[name, policy.name] = results[name].exit_stage.cpu()
            rows = policy_rows(
                policy, self.score, results, targets, roles, self.stage_macs, self.settings
            )
            self.result_rows.extend(rows)
            id_name = next(n for n, r in roles.items() if r == "id")
            correct = results[id_name].probs.argmax(-1) == targets[id_name]
            curve = risk_coverage_curve(results[id_name].confidence, correct)
            self.curves[policy.name] = (curve.coverage, curve.risk)
        for row in self.result_rows:
            key = f"{row['role']}/{row['dataset']}/{row['policy']}/{row['metric']}"
            self.log(key, row["value"], add_dataloader_idx=False, rank_zero_only=True)

    def on_test_end(self) -> None:
        if self.trainer.is_global_zero:
            for run in wandb_runs(self.trainer.loggers):
                log_cascade_report(
                    run, self.result_rows, self.curves, self.exit_stages,
                    self.trainer.datamodule.roles, self.stage_macs, self.member_params,
                    {p.name: p.to_dict() for p in self.policies()},
                )  # fmt: skip
        if self.results_dir is None:
            return
        # every rank takes part in saving; the checkpoint carries members and fitted window
        self.trainer.save_checkpoint(Path(self.results_dir) / "cascade.ckpt", weights_only=False)
        if not self.trainer.is_global_zero:
            return
        from artifacts.results import write_results

        write_results(
            self.results_dir,
            self.result_rows,
            policies={p.name: p.to_dict() for p in self.policies()},
            members=[
                {"checkpoint": path, "macs": macs, "params": params}
                for path, macs, params in zip(
                    self.member_paths, self.stage_macs, self.member_params, strict=True
                )
            ],
            curves=self.curves,
            extra={
                "member_calls": self.member_calls,
                "score": self.score,
                "definitions": self.definitions,
                "temperatures": (t.to_dict() if (t := self.temperatures()) else None),
            },
        )
