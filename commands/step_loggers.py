"""A pipeline step's logger: CSV files, or a wandb run grouped per experiment (its id kept
in the member's folder, so a requeued job continues the same run), closed when the step ends."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from window_cascades.artifacts.atomic import write_text
from window_cascades.commands.pipeline_steps import csv_logger


def logger_args(
    cfg: dict, save_dir: Path, name: str, job_type: str, run_id: str | None = None
) -> list[str]:
    """Trainer logger overrides: CSV under ``save_dir`` or a wandb run grouped per experiment.

    ``run_id`` makes a restarted job continue the same wandb run (``resume="allow"``).
    """
    if cfg["logger"] == "csv":
        return csv_logger(save_dir, name)
    args = [
        "--trainer.logger=lightning.pytorch.loggers.WandbLogger",
        f"--trainer.logger.save_dir={cfg['out']}",
        f"--trainer.logger.project={cfg['wandb_project']}",
        f"--trainer.logger.name={name}",
        f"--trainer.logger.group={cfg['experiment']}",
        f"--trainer.logger.job_type={job_type}",
    ]
    if run_id:
        args += [f"--trainer.logger.id={run_id}", "--trainer.logger.resume=allow"]
    return args


def finish_wandb(cli) -> None:
    """Close the step's wandb run, so the next step (same process) starts its own run."""
    from lightning.pytorch.loggers import WandbLogger

    for logger in cli.trainer.loggers:
        if isinstance(logger, WandbLogger):
            logger.experiment.finish()


def wandb_run_id(folder: Path, sole_process: bool) -> str | None:
    """A random wandb run id, kept in ``folder/wandb_id`` so a requeued job reuses it.

    Only the process that logs creates it: global rank 0 of a DDP member, or every process
    of a members-in-parallel launch (``sole_process``); other ranks get ``None``.
    """
    path = folder / "wandb_id"
    if path.is_file():
        return path.read_text().strip()
    rank = int(os.environ.get("SLURM_PROCID", os.environ.get("RANK", "0")))
    if rank != 0 and not sole_process:
        return None
    run_id = secrets.token_hex(8)
    write_text(path, run_id)
    return run_id
