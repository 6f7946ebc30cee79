"""Training one member of an experiment (``<out>/members/m<i>/``), resumable, and only to the
recipe it was started with: a finished member of the same recipe is skipped, a preempted one
continues, one of another recipe is refused (or, asked, retrained)."""

from __future__ import annotations

import shutil
from pathlib import Path

from window_cascades.artifacts.atomic import write_json
from window_cascades.commands.pipeline_steps import fit_member
from window_cascades.commands.step_loggers import finish_wandb, logger_args, wandb_run_id
from window_cascades.lightning_modules.callbacks.preemption import latest_checkpoint
from window_cascades.lightning_modules.member_recipe import (
    differing_keys,
    member_recipe,
    recipe_sha256,
)


def member_dir(cfg: dict, index: int) -> Path:
    """Member ``index``'s folder, ``<out>/members/m<index>``."""
    return Path(cfg["out"]) / "members" / f"m{index}"


def member_checkpoint(cfg: dict, index: int) -> Path:
    """The checkpoint the cascade and the cached logits use: the member's ``last.ckpt`` (its
    last training step, recorded in ``finished.json``), never the best-validation one."""
    return member_dir(cfg, index) / "checkpoints" / "last.ckpt"


def train_member(
    cfg: dict,
    index: int,
    extra_args: list[str] = (),
    sole_process: bool = False,
    overwrite: bool = False,
) -> Path:
    """Train member ``index`` (seed ``seeds[index]``), resuming from its newest checkpoint.

    The member's recipe (``window_cascades.lightning_modules.member_recipe``: model, data, trainer
    and optimiser settings, seed) is kept in ``recipe.json`` from the start and in
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
    _clear_changed_recipe(folder, recipe, index, overwrite)
    if (folder / "finished.json").is_file():
        if not last.is_file():
            raise FileNotFoundError(
                f"member m{index}: {folder / 'finished.json'} says trained but {last} is missing; "
                "pass --overwrite to retrain it"
            )
        print(f"member m{index} already trained ({folder / 'finished.json'}); skipping", flush=True)
        return last
    resume = latest_checkpoint(folder, last)
    print(
        f"\n=== training member m{index} (seed {seed})"
        + (f", resuming from {resume}" if resume else "")
        + " ===",
        flush=True,
    )
    folder.mkdir(parents=True, exist_ok=True)
    if not (folder / RECIPE_FILE).is_file():
        write_json(folder / RECIPE_FILE, recipe)
    run_id = wandb_run_id(folder, sole_process) if cfg["logger"] == "wandb" else None
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
        _write_finished(cli.trainer, folder, index, seed, last, resume, recipe)
    return last


def _clear_changed_recipe(folder: Path, recipe: dict, index: int, overwrite: bool) -> None:
    """A member folder started or trained to another recipe: refused with the differing keys
    named, or with ``overwrite`` removed (to be trained anew)."""
    recorded = _recorded_recipe(folder)
    if recorded is None or recorded == recipe:
        return
    keys = differing_keys(recorded, recipe)
    if not overwrite:
        shown = ", ".join(keys[:6]) + (", ..." if len(keys) > 6 else "")
        raise ValueError(
            f"member m{index} in {folder} was trained to another recipe ({shown} differ); "
            "pass --overwrite to retrain it, or restore its settings"
        )
    print(f"member m{index}: recipe changed ({', '.join(keys)}); retraining", flush=True)
    shutil.rmtree(folder)


def _write_finished(
    trainer, folder: Path, index: int, seed: int, last: Path, resume: Path | None, recipe: dict
) -> None:
    """``finished.json``: the trained member's checkpoint (checked to hold the trained step),
    its steps and epochs, where it resumed from and its recipe."""
    ckpt = trainer.checkpoint_callback
    step = getattr(ckpt, "last_step", None)
    if step != trainer.global_step:
        raise RuntimeError(
            f"member m{index}: {last} holds step {step}, not the trained step "
            f"{trainer.global_step}; finished.json not written"
        )
    best = getattr(ckpt, "best_model_path", "") or None
    write_json(
        folder / "finished.json",
        {
            "seed": seed,
            "checkpoint": str(last),
            "checkpoint_step": step,
            "global_step": trainer.global_step,
            "epochs": trainer.current_epoch,
            "best_checkpoint": best,
            "resumed_from": str(resume) if resume else None,
            "recipe_sha256": recipe_sha256(recipe),
            "recipe": recipe,
        },
    )


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
