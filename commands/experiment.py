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

from window_cascades.artifacts.faults import fault_point
from window_cascades.artifacts.run_folder import check_output_folder
from window_cascades.commands.interrupts import stop_if_requested
from window_cascades.commands.member_training import (
    claimed_member,
    member_checkpoint,
    train_member,
)
from window_cascades.commands.pipeline_steps import cache_logits, evaluate_cascade
from window_cascades.commands.step_loggers import finish_wandb, logger_args

#: where a member's cached logits record what they were cached from (beside meta.json)
CACHED_FROM = "cached_from.json"
#: caching arguments that do not change the logits (display, logging, output places)
_NOT_IN_LOGITS = (
    "--trainer.enable_progress_bar",
    "--trainer.enable_model_summary",
    "--trainer.logger",
    "--trainer.default_root_dir",
    "--trainer.callbacks",
    "--data.num_workers",
    "--data.init_args.num_workers",
)


def caching_inputs_sha256(args: list[str]) -> str:
    """SHA-256 of what a member's logits are cached from, besides its checkpoint: the caching
    arguments (those that cannot change the logits left out) and the content of every YAML
    file they name (configs, and the files their groups name, e.g. ``data: data.yaml``)."""
    import hashlib

    import yaml

    digest = hashlib.sha256()
    kept = [a for a in args if not a.startswith(_NOT_IN_LOGITS)]
    digest.update("\0".join(kept).encode())
    pending = [Path(a.partition("=")[2]) for a in kept if a.endswith((".yaml", ".yml"))]
    seen: set[Path] = set()
    while pending:
        path = pending.pop(0)
        if path in seen or not path.is_file():
            continue
        seen.add(path)
        text = path.read_bytes()
        digest.update(str(path).encode() + b"\0" + text)
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError:
            continue
        if isinstance(data, dict):
            pending += [
                path.parent / v
                for v in data.values()
                if isinstance(v, str) and v.endswith((".yaml", ".yml"))
            ]
    return digest.hexdigest()


def cached_logits_current(logits: Path, member: str, ckpt: Path, inputs: str) -> bool:
    """Whether ``logits/member`` holds complete logits cached from ``ckpt`` (same SHA-256)
    with the same inputs (``caching_inputs_sha256``): every file of its ``meta.json``'s
    caching run, and the record of what they were cached from."""
    import json

    from window_cascades.artifacts.cached_logits import (
        file_sha256,
        find_logits_file,
        logits_generation,
    )
    from window_cascades.artifacts.member_meta import load_member_meta

    try:
        meta = load_member_meta(logits, member)
        record = json.loads((logits / member / CACHED_FROM).read_text())
        if record.get("generation") != meta.get("generation") or not meta.get("generation"):
            return False
        if record.get("inputs_sha256") != inputs:
            return False
        if meta.get("checkpoint_sha256") != file_sha256(ckpt):
            return False
        return all(
            logits_generation(find_logits_file(logits, member, d)) == meta["generation"]
            for d in meta["datasets"]
        )
    except (OSError, ValueError, KeyError, TypeError):
        return False


def cache_member_logits(cfg: dict, index: int, extra_args: list[str] = ()) -> Path:
    """Write member ``index``'s logits on every configured dataset; returns the cache root.

    Logits already cached from the same checkpoint (SHA-256) and the same configs and
    overrides are kept (one line says so) instead of computed again."""
    import json

    from window_cascades.artifacts.atomic import write_json
    from window_cascades.artifacts.run_folder import launch_rank
    from window_cascades.commands.pipeline_steps import cache_logits_args

    ckpt, logits = member_checkpoint(cfg, index), Path(cfg["out"]) / "logits"
    member, overrides = f"m{index}", [*cfg["member_args"], *extra_args]
    args = cache_logits_args(cfg["member_config"], ckpt, logits, member, overrides=overrides)
    inputs = caching_inputs_sha256(args)
    if cached_logits_current(logits, member, ckpt, inputs):
        print(
            f"{member}: cached logits up to date in {logits / member} (same checkpoint, "
            "configs and overrides); not computed again",
            flush=True,
        )
        return logits
    print(f"\n=== caching logits of {member} ===", flush=True)
    cache_logits(cfg["member_config"], ckpt, logits, member, overrides=overrides)
    if launch_rank() != 0:  # rank 0 of a DDP member writes the cache (and its record)
        return logits
    meta = json.loads((logits / member / "meta.json").read_text())
    write_json(
        logits / member / CACHED_FROM,
        {"generation": meta.get("generation"), "inputs_sha256": inputs, "arguments": args},
    )
    return logits


def check_target_reachable(cfg: dict, cascade_args: list[str] = (), fail: bool = True) -> None:
    """Right after member m0's logits are cached, before the other members train: would the
    calibration reach its target? Stage 1 of the cascade is m0 alone, so its window is fitted
    on m0's cached held-out logits exactly as the calibration will fit it.

    Args:
        cfg: the experiment config.
        cascade_args: the cascade step's overrides (``--calibration.target=...``).
        fail: raise when a policy would not be fitted; False prints a warning instead.

    Raises:
        ValueError: naming the policy, the target and why, and what to change.
    """
    from window_cascades.artifacts.cached_logits import load_cached_logits
    from window_cascades.artifacts.member_meta import load_member_meta
    from window_cascades.commands.cli import CascadeCLI
    from window_cascades.commands.pipeline_steps import evaluate_cascade_args
    from window_cascades.lightning_modules.callbacks import CascadeCalibration

    logits_dir, m0 = Path(cfg["out"]) / "logits", member_checkpoint(cfg, 0)
    args = evaluate_cascade_args(
        cfg["cascade_config"],
        [m0],
        results_dir(cfg),
        logger=["--trainer.logger=false"],
        overrides=[*cfg["cascade_args"], *cascade_args],
    )

    class ConfiguredCascade(CascadeCLI):  # the cascade step's objects, built and not run
        def before_instantiate_classes(self) -> None:  # its checks are the step's own
            pass

        def _run_subcommand(self, subcommand: str) -> None:
            pass

    cli = ConfiguredCascade(args=args)  # the configured calibration, model and data
    calibration = next(c for c in cli.trainer.callbacks if isinstance(c, CascadeCalibration))
    heldout = cli.datamodule.roles.heldout
    generation = load_member_meta(logits_dir, "m0").get("generation")
    cached = load_cached_logits(logits_dir, "m0", heldout, generation)
    unreachable = calibration.unreachable_with_one_member(
        cached.logits,
        cached.targets,
        cli.model.policy_names,
        cli.model.score,
        cli.model.definitions,
        heldout,
    )
    if not unreachable:
        print(f"target {calibration.target}: reached by m0 on {heldout!r}", flush=True)
        return
    name, reason = next(iter(unreachable.items()))
    message = (
        f"{name} cannot be fitted for target {calibration.target}: {reason} (judged on member "
        f"m0 alone, which is the cascade's stage 1)"
    )
    if not fail:
        print(f"warning: {message}; the evaluation will report the other policies", flush=True)
        return
    raise ValueError(
        f"{message}; stopped before training the other members (m0 is kept): choose a looser "
        f"target, e.g. --cascade-arg=--calibration.target=risk@80 (a coverage target is "
        f"reached by any member), or calibration.target in {cfg['cascade_config']}"
    )


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
        fault_point("step")
        with claimed_member(cfg, i):
            train_member(cfg, i, member_args, overwrite=overwrite)
            stop_if_requested("pipeline")  # a SIGTERM kept by a step that had finished
            cache_member_logits(cfg, i, member_args)
        stop_if_requested("pipeline")
        if i == 0 and len(cfg["seeds"]) > 1:  # before the other members train
            check_target_reachable(cfg, cascade_args)
    fault_point("step")
    out = evaluate(cfg, cascade_args, overwrite)
    print(f"\nPipeline finished in {time.time() - start:.0f} s; results in {out}/", flush=True)
    return out
