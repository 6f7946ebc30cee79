"""The pipeline's steps as typed functions: fit a member, cache its logits, calibrate and
evaluate the cascade.

The pipeline script, the SLURM jobs (through ``window_cascades.commands.experiment``), the notMNIST
benchmark and the tests all call these; they are the one place that turns a step into
LightningCLI arguments. ``*_args`` builders return those arguments (for a subprocess, e.g. a
DDP launch); the step functions run them in this process and return the CLI object (its
``trainer``, ``model`` and ``datamodule``).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from pathlib import Path

from window_cascades.cascade.progress import progress_enabled
from window_cascades.commands.cli import CascadeCLI, MemberCLI


def csv_logger(save_dir: str | Path, name: str) -> list[str]:
    """Trainer overrides for a CSV logger writing to ``save_dir/name``."""
    return [
        "--trainer.logger=lightning.pytorch.loggers.CSVLogger",
        f"--trainer.logger.save_dir={save_dir}",
        f"--trainer.logger.name={name}",
    ]


def fit_member_args(
    member_config: str | Path,
    seed: int,
    member_dir: str | Path,
    data_config: str | Path | None = None,
    logger: Sequence[str] | None = None,
    resume_from: str | Path | None = None,
    overrides: Sequence[str] = (),
) -> list[str]:
    """``fit`` arguments of one member: seed, checkpoints in ``member_dir/checkpoints``, logs
    with ``logger`` (default: CSV in ``member_dir``'s parent under its name)."""
    member_dir = Path(member_dir)
    return [
        "fit",
        f"--config={member_config}",
        *([f"--data={data_config}"] if data_config else []),
        f"--seed_everything={seed}",
        f"--trainer.default_root_dir={member_dir}",
        f"--checkpoint.dirpath={member_dir / 'checkpoints'}",
        *(csv_logger(member_dir.parent, member_dir.name) if logger is None else logger),
        *([f"--ckpt_path={resume_from}"] if resume_from else []),
        # Lightning's bar only on a terminal and unless progress is off (a SLURM log or a
        # benchmark's log file would otherwise fill with redrawn bars)
        f"--trainer.enable_progress_bar={str(progress_enabled(sys.stdout)).lower()}",
        *overrides,
    ]


def fit_member(
    member_config: str | Path,
    seed: int,
    member_dir: str | Path,
    data_config: str | Path | None = None,
    logger: Sequence[str] | None = None,
    resume_from: str | Path | None = None,
    overrides: Sequence[str] = (),
    run: bool = True,
) -> MemberCLI:
    """Train one member (see [`fit_member_args`][]); ``run=False`` only builds it."""
    cli_args = fit_member_args(
        member_config, seed, member_dir, data_config, logger, resume_from, overrides
    )
    return MemberCLI(args=cli_args if run else cli_args[1:], run=run)


def cache_logits_args(
    member_config: str | Path,
    checkpoint: str | Path,
    logits_dir: str | Path,
    member: str,
    data_config: str | Path | None = None,
    overrides: Sequence[str] = (),
) -> list[str]:
    """``predict`` arguments writing ``logits_dir/member/<dataset>.safetensors`` + meta.json."""
    checkpoint = Path(checkpoint)
    return [
        "predict",
        f"--config={member_config}",
        *([f"--data={data_config}"] if data_config else []),
        f"--ckpt_path={checkpoint}",
        f"--checkpoint.dirpath={checkpoint.parent}",
        f"--trainer.default_root_dir={Path(logits_dir) / member}",
        "--trainer.logger=false",
        # Lightning's bar (on stdout) while caching, unless stdout is not a terminal or
        # progress is off (--no-progress / WINDOW_CASCADES_NO_PROGRESS=1)
        f"--trainer.enable_progress_bar={str(progress_enabled(sys.stdout)).lower()}",
        f"--cache.logits_dir={logits_dir}",
        f"--cache.member={member}",
        *overrides,
    ]


def cache_logits(
    member_config: str | Path,
    checkpoint: str | Path,
    logits_dir: str | Path,
    member: str,
    data_config: str | Path | None = None,
    overrides: Sequence[str] = (),
) -> Path:
    """Cache one member's logits on every dataset; returns ``logits_dir/member``."""
    MemberCLI(
        args=cache_logits_args(
            member_config, checkpoint, logits_dir, member, data_config, overrides
        )
    )
    return Path(logits_dir) / member


def evaluate_cascade_args(
    cascade_config: str | Path,
    checkpoints: Sequence[str | Path],
    results_dir: str | Path,
    data_config: str | Path | None = None,
    logger: Sequence[str] | None = None,
    overrides: Sequence[str] = (),
) -> list[str]:
    """``test`` arguments: calibrate on the held-out split, evaluate, write the run into
    ``results_dir`` as one unit (``fitted_cascade.json``, ``metrics.csv``, ``summary.json``, plots,
    ``cascade.ckpt``; an earlier run there is refused unless ``overrides`` has
    ``--results.overwrite=true``); logs with ``logger`` (default: CSV in
    ``results_dir/../logs/cascade``, outside the run's folder)."""
    results_dir = Path(results_dir)
    return [
        "test",
        f"--config={cascade_config}",
        *([f"--data={data_config}"] if data_config else []),
        f"--model.members={json.dumps([str(c) for c in checkpoints])}",
        f"--results.dir={results_dir}",
        *(csv_logger(results_dir.parent / "logs", "cascade") if logger is None else logger),
        "--verbose=false",
        *overrides,
    ]


def evaluate_cascade(
    cascade_config: str | Path,
    checkpoints: Sequence[str | Path],
    results_dir: str | Path,
    data_config: str | Path | None = None,
    logger: Sequence[str] | None = None,
    overrides: Sequence[str] = (),
) -> CascadeCLI:
    """Calibrate and evaluate a cascade (see [`evaluate_cascade_args`][])."""
    return CascadeCLI(
        args=evaluate_cascade_args(
            cascade_config, checkpoints, results_dir, data_config, logger, overrides
        )
    )
