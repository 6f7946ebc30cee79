"""An experiment's stages: train a member (resumable), cache its logits, calibrate + evaluate.

The same functions serve the one-process pipeline (``scripts/run_pipeline.py``) and the SLURM
job scripts (one array task per member, then one evaluation job). Layout under ``out``:

- ``members/m<i>/``: checkpoints (``last.ckpt``: the last step, which the cascade and the
  cached logits use; ``best.ckpt``: the best held-out loss, kept for reference),
  ``hpc_ckpt_<n>.ckpt`` after a preemption, ``finished.json`` once training completed (the
  checkpoint handed on and its step, ``checkpoint_step`` = ``global_step``), ``wandb_id``;
- ``logits/m<i>/<dataset>.safetensors`` + ``meta.json``;
- ``results/``: ``window.json``, ``metrics.csv``, ``summary.json``, plots and ``cascade.ckpt``
  (one unit: a new evaluation replaces it whole; ``--results.overwrite=true`` in
  ``cascade_args`` or on the command line to replace an earlier one);
- ``cascade/version_<n>/``: the evaluation's CSV logs.
"""

from __future__ import annotations

import os
import secrets
import shutil
import time
from pathlib import Path

from artifacts.atomic import write_json, write_text
from artifacts.run_folder import check_output_folder
from commands.stages import cache_logits, csv_logger, evaluate_cascade, fit_member
from lightning_modules.callbacks.preemption import latest_checkpoint
from lightning_modules.member_recipe import differing_keys, member_recipe, recipe_sha256


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
    """Close the stage's wandb run, so the next stage (same process) starts its own run."""
    from lightning.pytorch.loggers import WandbLogger

    for logger in cli.trainer.loggers:
        if isinstance(logger, WandbLogger):
            logger.experiment.finish()


def member_dir(cfg: dict, index: int) -> Path:
    return Path(cfg["out"]) / "members" / f"m{index}"


def member_checkpoint(cfg: dict, index: int) -> Path:
    """The checkpoint the cascade and the cached logits use: the member's ``last.ckpt`` (its
    last training step, recorded in ``finished.json``), never the best-validation one."""
    return member_dir(cfg, index) / "checkpoints" / "last.ckpt"


def _wandb_run_id(folder: Path, sole_process: bool) -> str | None:
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


def train_member(
    cfg: dict,
    index: int,
    extra_args: list[str] = (),
    sole_process: bool = False,
    overwrite: bool = False,
) -> Path:
    """Train member ``index`` (seed ``seeds[index]``), resuming from its newest checkpoint.

    The member's recipe (``lightning_modules.member_recipe``: model, data, trainer and
    optimiser settings, seed) is kept in ``recipe.json`` from the start and in
    ``finished.json`` at the end. A finished member of the same recipe is skipped; a preempted
    one continues from the newest of ``hpc_ckpt_<n>.ckpt`` and ``last.ckpt``. A member trained
    (or started) to another recipe is refused with the differing keys named, or with
    ``overwrite`` removed and trained anew. ``sole_process``: this process trains the member
    alone although a launcher started several (members in parallel). Returns ``last.ckpt``.
    """
    if not 0 <= index < len(cfg["seeds"]):
        raise ValueError(f"member index {index} out of range: the config has seeds {cfg['seeds']}")
    seed, folder = cfg["seeds"][index], member_dir(cfg, index)
    last = member_checkpoint(cfg, index)
    overrides = [*cfg["member_args"], *extra_args]
    recipe = member_recipe(
        fit_member(cfg["member_config"], seed, folder, overrides=overrides, run=False)
    )  # resolved, not trained: what this run would train
    recorded = _recorded_recipe(folder)
    if recorded is not None and recorded != recipe:
        keys = differing_keys(recorded, recipe)
        if not overwrite:
            shown = ", ".join(keys[:6]) + (", ..." if len(keys) > 6 else "")
            raise ValueError(
                f"member m{index} in {folder} was trained to another recipe ({shown} differ); "
                "pass --overwrite to retrain it, or restore its settings"
            )
        print(f"member m{index}: recipe changed ({', '.join(keys)}); retraining", flush=True)
        shutil.rmtree(folder)
    if (folder / "finished.json").is_file():
        if not last.is_file():
            raise FileNotFoundError(
                f"member m{index}: {folder / 'finished.json'} says trained but {last} is missing; "
                "pass --overwrite to retrain it"
            )
        print(f"member m{index} already trained ({folder / 'finished.json'}); skipping", flush=True)
        return last
    resume = latest_checkpoint(folder, last)
    print(f"\n=== training member m{index} (seed {seed})"
          + (f", resuming from {resume}" if resume else "") + " ===", flush=True)  # fmt: skip
    folder.mkdir(parents=True, exist_ok=True)
    if not (folder / RECIPE_FILE).is_file():
        write_json(folder / RECIPE_FILE, recipe)
    run_id = _wandb_run_id(folder, sole_process) if cfg["logger"] == "wandb" else None
    cli = fit_member(
        cfg["member_config"],
        seed,
        folder,
        logger=logger_args(cfg, folder.parent, f"m{index}-seed{seed}", "member", run_id),
        resume_from=resume,
        overrides=overrides,
    )
    finish_wandb(cli)
    if cli.trainer.global_step == 0 or not last.is_file():
        raise ValueError(
            f"member m{index} did not train (0 optimiser steps, or no {last}): check "
            "max_epochs/max_steps and the training data; no finished.json written"
        )
    if cli.trainer.is_global_zero:
        ckpt = cli.trainer.checkpoint_callback
        step = getattr(ckpt, "last_step", None)
        if step != cli.trainer.global_step:
            raise RuntimeError(
                f"member m{index}: {last} holds step {step}, not the trained step "
                f"{cli.trainer.global_step}; finished.json not written"
            )
        best = getattr(ckpt, "best_model_path", "") or None
        write_json(
            folder / "finished.json",
            {"seed": seed, "checkpoint": str(last), "checkpoint_step": step,
             "global_step": cli.trainer.global_step, "epochs": cli.trainer.current_epoch,
             "best_checkpoint": best, "resumed_from": str(resume) if resume else None,
             "recipe_sha256": recipe_sha256(recipe), "recipe": recipe},
        )  # fmt: skip
    return last


RECIPE_FILE = "recipe.json"


def _recorded_recipe(folder: Path) -> dict | None:
    """The recipe a member folder was trained (or started) to: ``recipe.json``, else the one in
    ``finished.json``; None when neither records one (a new folder, or an older version's)."""
    import json

    for name in (RECIPE_FILE, "finished.json"):
        path = folder / name
        if path.is_file():
            try:
                data = json.loads(path.read_text())
            except (OSError, ValueError) as err:
                raise ValueError(f"{path}: not readable JSON ({err})") from None
            recipe = data.get("recipe") if name == "finished.json" else data
            if isinstance(recipe, dict):
                return recipe
    return None


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


def check_results_dir(cfg: dict, overwrite: bool) -> Path:
    """Refuse, before any work, an earlier evaluation in ``<out>/results`` unless ``overwrite``."""
    return check_output_folder(results_dir(cfg), overwrite, "results folder", "--overwrite")


def evaluate(cfg: dict, extra_args: list[str] = (), overwrite: bool = False) -> Path:
    """Calibrate the window on the held-out split and evaluate the cascade of all members;
    returns the results folder (``overwrite``: replace an earlier evaluation there)."""
    out = Path(cfg["out"])
    check_results_dir(cfg, overwrite)
    checkpoints = [member_checkpoint(cfg, i) for i in range(len(cfg["seeds"]))]
    missing = [str(c) for c in checkpoints if not c.is_file()]
    if missing:
        raise FileNotFoundError(f"members not trained yet (missing {missing}); train them first")
    print("\n=== window calibration + cascade evaluation ===", flush=True)
    cli = evaluate_cascade(
        cfg["cascade_config"],
        checkpoints,
        results_dir(cfg),
        logger=logger_args(cfg, out, "cascade", "evaluate"),
        overrides=[
            *(["--results.overwrite=true"] if overwrite else []),
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
    """Every stage in this process: train and cache each member, then evaluate; returns the
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
