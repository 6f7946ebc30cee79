"""Run a whole experiment: train the members, cache their logits, calibrate and evaluate.

    python scripts/run_pipeline.py --config configs/quickstart/pipeline.yaml [--logger wandb]

Stages (each is also a command of its own, see the README):

1. ``train_member.py fit`` once per seed -> ``<out>/members/m<i>/checkpoints/last.ckpt``;
2. ``train_member.py predict`` per member -> ``<out>/logits/m<i>/<dataset>.safetensors``;
3. ``evaluate_cascade.py test`` -> ``<out>/window.json``, ``metrics.csv``, ``summary.json``,
   plots, and ``cascade.ckpt`` (the members plus the fitted window).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import yaml

from lightning_modules.cli import CascadeCLI, MemberCLI

PIPELINE_KEYS = {
    "experiment",
    "out",
    "seeds",
    "member_config",
    "cascade_config",
    "logger",
    "wandb_project",
}


def load_pipeline_config(path: str) -> dict:
    """Read and check the pipeline YAML (errors name the file and the field)."""
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"pipeline config not found: {p}")
    cfg = yaml.safe_load(p.read_text()) or {}
    unknown = set(cfg) - PIPELINE_KEYS
    if unknown:
        raise ValueError(
            f"{p}: unknown field(s) {sorted(unknown)}; expected {sorted(PIPELINE_KEYS)}"
        )
    for key in ("out", "seeds", "member_config", "cascade_config"):
        if key not in cfg:
            raise ValueError(f"{p}: missing field {key!r}")
    if not cfg["seeds"] or len(set(cfg["seeds"])) != len(cfg["seeds"]):
        raise ValueError(f"{p}: seeds must be a non-empty list of distinct integers")
    cfg.setdefault("experiment", p.parent.name)
    cfg.setdefault("logger", "csv")
    cfg.setdefault("wandb_project", "window-cascades")
    if cfg["logger"] not in ("csv", "wandb"):
        raise ValueError(f"{p}: logger must be 'csv' or 'wandb', got {cfg['logger']!r}")
    return cfg


def logger_args(cfg: dict, save_dir: Path, name: str, job_type: str) -> list[str]:
    """Trainer logger overrides: CSV under ``save_dir`` or a grouped wandb run."""
    if cfg["logger"] == "csv":
        return [
            "--trainer.logger=lightning.pytorch.loggers.CSVLogger",
            f"--trainer.logger.save_dir={save_dir}",
            f"--trainer.logger.name={name}",
        ]
    return [
        "--trainer.logger=lightning.pytorch.loggers.WandbLogger",
        f"--trainer.logger.save_dir={cfg['out']}",
        f"--trainer.logger.project={cfg['wandb_project']}",
        f"--trainer.logger.name={name}",
        f"--trainer.logger.group={cfg['experiment']}",
        f"--trainer.logger.job_type={job_type}",
    ]


def finish_wandb(cli) -> None:
    """Close the stage's wandb run, so the next stage (same process) starts its own run."""
    from lightning.pytorch.loggers import WandbLogger

    for logger in cli.trainer.loggers:
        if isinstance(logger, WandbLogger):
            logger.experiment.finish()


def run(cfg: dict, extra_member_args: list[str] = (), extra_cascade_args: list[str] = ()) -> Path:
    """Run the three stages; returns the output folder."""
    out = Path(cfg["out"])
    start = time.time()
    checkpoints = []
    for i, seed in enumerate(cfg["seeds"]):
        name, member_dir = f"m{i}", out / "members" / f"m{i}"
        print(f"\n=== [1/3] training member {name} (seed {seed}) ===", flush=True)
        cli = MemberCLI(
            args=[
                "fit",
                f"--config={cfg['member_config']}",
                f"--seed_everything={seed}",
                f"--trainer.default_root_dir={member_dir}",
                f"--checkpoint.dirpath={member_dir / 'checkpoints'}",
                *logger_args(cfg, out / "members", name, "member"),
                *extra_member_args,
            ]
        )
        finish_wandb(cli)
        checkpoints.append(str(member_dir / "checkpoints" / "last.ckpt"))
    for i, ckpt in enumerate(checkpoints):
        print(f"\n=== [2/3] caching logits of m{i} ===", flush=True)
        MemberCLI(
            args=[
                "predict",
                f"--config={cfg['member_config']}",
                f"--ckpt_path={ckpt}",
                f"--checkpoint.dirpath={Path(ckpt).parent}",
                f"--trainer.default_root_dir={out / 'logits' / f'm{i}'}",
                "--trainer.logger=false",
                "--trainer.enable_progress_bar=false",
                f"--cache.logits_dir={out / 'logits'}",
                f"--cache.member=m{i}",
                *extra_member_args,
            ]
        )
    print("\n=== [3/3] window calibration + cascade evaluation ===", flush=True)
    cli = CascadeCLI(
        args=[
            "test",
            f"--config={cfg['cascade_config']}",
            f"--model.members={json.dumps(checkpoints)}",
            f"--model.results_dir={out}",
            f"--calibration.window_json={out / 'window.json'}",
            *logger_args(cfg, out, "cascade", "evaluate"),
            "--verbose=false",
            *extra_cascade_args,
        ]
    )
    finish_wandb(cli)
    print(f"\nPipeline finished in {time.time() - start:.0f} s; outputs in {out}/", flush=True)
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--config", default="configs/quickstart/pipeline.yaml")
    parser.add_argument("--out", help="override the output folder")
    parser.add_argument("--logger", choices=["csv", "wandb"], help="override the logger")
    parser.add_argument(
        "--member-arg", action="append", default=[], help="extra LightningCLI arg for members"
    )
    parser.add_argument(
        "--cascade-arg", action="append", default=[], help="extra LightningCLI arg for the cascade"
    )
    args = parser.parse_args(argv)
    cfg = load_pipeline_config(args.config)
    if args.out:
        cfg["out"] = args.out
    if args.logger:
        cfg["logger"] = args.logger
    run(cfg, args.member_arg, args.cascade_arg)


if __name__ == "__main__":
    sys.exit(main())
