"""Writes a cascade test run's results: metrics.csv, summary.json, plots, cascade.ckpt, wandb."""

from __future__ import annotations

from pathlib import Path

from lightning.pytorch import Callback

from lightning_modules.wandb_report import log_cascade_report, wandb_runs


class CascadeResultsWriter(Callback):
    """At the end of ``test``, writes what the ``CascadeModule`` evaluated.

    Files (rank 0; written to a staging folder and moved into place): ``metrics.csv``,
    ``summary.json`` (nested metrics, fitted policies, member MACs/params, ``member_calls``:
    per dataset the samples each member processed, summed over processes), the plots, and
    ``cascade.ckpt`` (the members plus the fitted cascade; every rank takes part in saving).
    With a ``WandbLogger``, the same results go to the wandb run.

    Args:
        dir: the results folder; None writes no files (wandb still gets the report).
    """

    def __init__(self, dir: str | None = "outputs/cascade"):
        super().__init__()
        self.dir = dir

    def on_test_end(self, trainer, pl_module) -> None:
        ev, fitted = pl_module.evaluation, pl_module.fitted
        policies = {p.name: p.to_dict() for p in pl_module.policies()}
        if trainer.is_global_zero:
            for run in wandb_runs(trainer.loggers):
                log_cascade_report(
                    run, ev.rows, ev.curves, ev.exit_stages, trainer.datamodule.roles,
                    ev.stage_macs, ev.member_params, policies,
                )  # fmt: skip
        if self.dir is None:
            return
        trainer.save_checkpoint(Path(self.dir) / "cascade.ckpt", weights_only=False)
        if not trainer.is_global_zero:
            return
        from artifacts.results import write_results

        write_results(
            self.dir,
            ev.rows,
            policies=policies,
            members=[
                {"checkpoint": path, "macs": macs, "params": params}
                for path, macs, params in zip(
                    pl_module.member_paths, ev.stage_macs, ev.member_params, strict=True
                )
            ],
            curves=ev.curves,
            extra={
                "member_calls": ev.member_calls,
                "score": pl_module.score,
                "definitions": pl_module.definitions,
                "temperatures": fitted.temperatures.to_dict() if fitted.temperatures else None,
            },
        )
