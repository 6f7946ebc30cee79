"""An experiment's steps: train a member (resumable), cache its logits, calibrate + evaluate.

Training a member is ``window_cascades.commands.member_training``, the steps' loggers
``window_cascades.commands.step_loggers``. The same functions serve the one-process pipeline
(``scripts/run_pipeline.py``) and the SLURM job scripts (one array task per member, then one
evaluation job). Layout under ``out``:

- ``members/m<i>/``: checkpoints (``last.ckpt``: the last step, which the cascade and the
  cached logits use; ``best.ckpt``: the best held-out loss, kept for reference),
  ``hpc_ckpt_<n>.ckpt`` after a preemption, ``finished.json`` once training completed (the
  checkpoint handed on and its step, ``checkpoint_step`` = ``global_step``), ``wandb_id``;
- ``logits/m<i>/<dataset>.safetensors`` + ``meta.json``;
- ``results/``: ``fitted_cascade.json``, ``metrics.csv``, ``summary.json``, plots and
  ``cascade.ckpt`` (one unit: a new evaluation replaces it whole; ``--results.overwrite=true`` in
  ``cascade_args`` or on the command line to replace an earlier one);
- ``cascade/version_<n>/``: the evaluation's CSV logs.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from window_cascades.artifacts.run_folder import check_output_folder
from window_cascades.commands.member_training import member_checkpoint, train_member
from window_cascades.commands.pipeline_steps import cache_logits, evaluate_cascade
from window_cascades.commands.step_loggers import finish_wandb, logger_args


def cache_member_logits(cfg: dict, index: int, extra_args: list[str] = ()) -> Path:
    """Write member ``index``'s logits on every configured dataset; returns the cache root."""
    ckpt, logits = member_checkpoint(cfg, index), Path(cfg["out"]) / "logits"
    print(f"\n=== caching logits of m{index} ===", flush=True)
    cache_logits(
        cfg["member_config"],
        ckpt,
        logits,
        f"m{index}",
        overrides=[*cfg["member_args"], *extra_args],
    )
    return logits


def results_dir(cfg: dict) -> Path:
    """The evaluation's run folder, ``<out>/results``."""
    return Path(cfg["out"]) / "results"


def replaces_results(cfg: dict, overwrite: bool) -> bool:
    """Whether an earlier evaluation in ``<out>/results`` is replaced: ``--overwrite``, or the
    config's ``replace_results`` (which leaves finished members as they are)."""
    return overwrite or bool(cfg.get("replace_results"))


def check_results_dir(cfg: dict, overwrite: bool) -> Path:
    """Refuse, before any work, an earlier evaluation in ``<out>/results`` unless ``overwrite``
    or the config's ``replace_results``."""
    return check_output_folder(
        results_dir(cfg), replaces_results(cfg, overwrite), "results folder", "--overwrite"
    )


def evaluate(cfg: dict, extra_args: list[str] = (), overwrite: bool = False) -> Path:
    """Calibrate the cascade of all members on the held-out split and evaluate it;
    returns the results folder (``overwrite``: replace an earlier evaluation there)."""
    out = Path(cfg["out"])
    check_results_dir(cfg, overwrite)
    checkpoints = [member_checkpoint(cfg, i) for i in range(len(cfg["seeds"]))]
    missing = [str(c) for c in checkpoints if not c.is_file()]
    if missing:
        raise FileNotFoundError(f"members not trained yet (missing {missing}); train them first")
    print("\n=== calibration + cascade evaluation ===", flush=True)
    cli = evaluate_cascade(
        cfg["cascade_config"],
        checkpoints,
        results_dir(cfg),
        logger=logger_args(cfg, out, "cascade", "evaluate"),
        overrides=[
            *(["--results.overwrite=true"] if replaces_results(cfg, overwrite) else []),
            *cfg["cascade_args"],
            *extra_args,
        ],
    )
    finish_wandb(cli)
    return results_dir(cfg)


def process_index() -> int:
    """This process's index among processes launched together (srun, torchrun), from the env."""
    for var in ("SLURM_PROCID", "RANK"):
        if var in os.environ:
            return int(os.environ[var])
    raise ValueError("--parallel-members needs $SLURM_PROCID (srun) or $RANK (torchrun)")


def own_device_args() -> list[str]:
    """Trainer overrides for a process that trains its own member alone on one device.

    Lightning would otherwise read the launcher's variables and join all processes into one
    DDP group. ``CUDA_VISIBLE_DEVICES`` is narrowed to this process's local GPU when the
    launcher left it listing several (SLURM without ``--gpus-per-task``, torchrun).
    """
    visible = os.environ.get("CUDA_VISIBLE_DEVICES", "")
    local = int(os.environ.get("SLURM_LOCALID", os.environ.get("LOCAL_RANK", "0")))
    gpus = [g for g in visible.split(",") if g]
    if len(gpus) > 1:
        if local >= len(gpus):
            raise ValueError(f"process {local} on this node has no GPU of its own ({visible=})")
        os.environ["CUDA_VISIBLE_DEVICES"] = gpus[local]
    return [
        "--trainer.plugins=lightning.fabric.plugins.environments.LightningEnvironment",
        "--trainer.devices=1",
        "--trainer.num_nodes=1",
        "--trainer.strategy=auto",
    ]


def run_all(
    cfg: dict,
    member_args: list[str] = (),
    cascade_args: list[str] = (),
    overwrite: bool = False,
) -> Path:
    """Every step in this process: train and cache each member, then evaluate; returns the
    results folder (an earlier evaluation there is refused before any training unless
    ``overwrite``)."""
    start = time.time()
    check_results_dir(cfg, overwrite)
    for i in range(len(cfg["seeds"])):
        train_member(cfg, i, member_args, overwrite=overwrite)
        cache_member_logits(cfg, i, member_args)
    out = evaluate(cfg, cascade_args, overwrite)
    print(f"\nPipeline finished in {time.time() - start:.0f} s; results in {out}/", flush=True)
    return out
