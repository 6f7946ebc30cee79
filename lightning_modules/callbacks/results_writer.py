"""Writes a cascade test run's results as one unit: fitted_cascade.json, metrics.csv, summary.json,
plots, cascade.ckpt (and the report to wandb)."""

from __future__ import annotations

from pathlib import Path

from lightning.pytorch import Callback

from window_cascades.artifacts.folder_claim import release_output_folder
from window_cascades.artifacts.run_folder import check_output_folder, swap_in
from window_cascades.artifacts.staging_folders import discard_staging, new_staging_folder
from window_cascades.lightning_modules.wandb_report import log_cascade_report, wandb_runs


class CascadeResultsWriter(Callback):
    """At the end of ``test``, writes what the ``CascadeModule`` evaluated.

    Files: ``fitted_cascade.json`` (the fitted cascade), ``metrics.csv``, ``summary.json`` (nested
    metrics, fitted policies, member MACs/params, ``member_calls``: per dataset the samples
    each member processed, summed over processes), the plots, and ``cascade.ckpt`` (the members
    plus the fitted cascade; every rank takes part in saving). They are written into a staging
    folder beside ``dir`` that then replaces ``dir`` whole, so ``dir`` holds this run or the
    earlier one, never a mix. ``dir`` is checked and claimed when the run starts (a second run
    into it is refused while this one runs): an earlier run there is refused unless
    ``overwrite``, a folder with other files always. With a ``WandbLogger``,
    the same results go to the wandb run.

    Args:
        dir: the results folder (only this run's files); None writes no files (wandb still
            gets the report).
        overwrite: replace an earlier run in ``dir``.
    """

    def __init__(self, dir: str | None = "outputs/cascade", overwrite: bool = False):
        super().__init__()
        self.dir = dir
        self.overwrite = overwrite

    def setup(self, trainer, pl_module, stage: str) -> None:
        if stage == "test" and self.dir is not None:  # before any work (every rank sees it)
            check_output_folder(
                self.dir,
                self.overwrite,
                "--results.dir",
                "--results.overwrite true",
                claim=trainer.is_global_zero,
            )

    def teardown(self, trainer, pl_module, stage: str) -> None:
        """Release the claim of ``dir`` if the run ended without swapping its results in (an
        error, an interruption); a process that goes on (a notebook, a test) may reuse it."""
        if stage == "test" and self.dir is not None:
            release_output_folder(self.dir)

    def on_exception(self, trainer, pl_module, exception: BaseException) -> None:
        """The same on an error (Lightning skips ``teardown`` then)."""
        if self.dir is not None:
            release_output_folder(self.dir)

    def on_test_end(self, trainer, pl_module) -> None:
        ev = pl_module.evaluation
        policies = {p.name: p.to_dict() for p in pl_module.policies()}
        if trainer.is_global_zero:
            for run in wandb_runs(trainer.loggers):
                log_cascade_report(
                    run,
                    ev.rows,
                    ev.curves,
                    ev.exit_stages,
                    trainer.datamodule.roles,
                    ev.stage_macs,
                    ev.member_params,
                    policies,
                    ev.deltas,
                )
        if self.dir is None:
            return
        staging = new_staging_folder(self.dir) if trainer.is_global_zero else None
        staging = Path(trainer.strategy.broadcast(str(staging) if staging else None, src=0))
        trainer.save_checkpoint(staging / "cascade.ckpt", weights_only=False)
        if trainer.is_global_zero:
            self._write(staging, trainer, pl_module, policies)
        trainer.strategy.barrier("results_written")

    @staticmethod
    def _samples(trainer, ev) -> dict:
        """Per dataset, the samples evaluated (all processes) and the samples it holds."""
        counts = {}
        for (name, _), exits in ev.exit_stages.items():
            dataset = trainer.datamodule.eval_sets.get(name)
            n = int(exits.numel())
            counts.setdefault(name, {"n": n, "of": len(dataset) if dataset is not None else n})
        return counts

    def _write(self, staging: Path, trainer, pl_module, policies: dict) -> None:
        from window_cascades.artifacts.fitted_file import write_fitted_cascade
        from window_cascades.artifacts.results import write_results
        from window_cascades.cascade.metric_registry import bootstrap_record

        ev, fitted, score = pl_module.evaluation, pl_module.fitted, pl_module.score
        run_keys = {p.name: (p.name, p.setting, score, "") for p in pl_module.policies()}
        try:
            write_fitted_cascade(staging, fitted)
            write_results(
                staging,
                ev.rows,
                deltas=ev.deltas,
                policies={run_keys[name]: value for name, value in policies.items()},
                members=[
                    {"checkpoint": path, "macs": macs, "params": params}
                    for path, macs, params in zip(
                        pl_module.member_paths, ev.stage_macs, ev.member_params, strict=True
                    )
                ],
                curves={run_keys[name]: curve for name, curve in ev.curves.items()},
                samples=self._samples(trainer, ev),
                extra={
                    "member_calls": ev.member_calls,
                    "score": pl_module.score,
                    "target": fitted.info.get("target") if fitted else None,
                    "definitions": pl_module.definitions,
                    "bootstrap": bootstrap_record(
                        pl_module.hparams.bootstrap, pl_module.hparams.bootstrap_seed
                    ),
                    "temperatures": fitted.temperatures.to_dict() if fitted.temperatures else None,
                },
                shown_dir=self.dir,
            )
            swap_in(staging, self.dir)
        finally:
            if staging.exists():
                discard_staging(staging)
