"""Shared fixtures: tiny real configs (the quick-start configs, shrunk) and trained members."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import yaml

os.environ.setdefault("WANDB_MODE", "offline")
os.environ.setdefault("WANDB_SILENT", "true")

ROOT = Path(__file__).resolve().parents[1]
QUICKSTART = ROOT / "configs" / "quickstart"


def shrink_data_config(path: Path, **overrides) -> Path:
    """Write a copy of the quick-start data config with small OOD sets and a capped train set."""
    cfg = yaml.safe_load((QUICKSTART / "data.yaml").read_text())
    args = cfg["init_args"]
    args.update({"batch_size": 64})
    for entry in args["datasets"]:
        if entry["role"] == "ood":
            entry["size"] = 120
    args.update(overrides)
    path.write_text(yaml.safe_dump(cfg))
    return path


def member_args(data_cfg: Path, out: Path, name: str, seed: int, epochs: int = 2) -> list[str]:
    """LightningCLI args that train a tiny member from the quick-start member config."""
    return [
        "fit",
        f"--config={QUICKSTART / 'member.yaml'}",
        f"--data={data_cfg}",
        f"--seed_everything={seed}",
        f"--trainer.max_epochs={epochs}",
        "--trainer.enable_progress_bar=false",
        "--trainer.enable_model_summary=false",
        f"--trainer.default_root_dir={out / name}",
        f"--trainer.logger.save_dir={out}",
        f"--trainer.logger.name={name}",
        f"--checkpoint.dirpath={out / name / 'checkpoints'}",
    ]


def cascade_args(data_cfg: Path, members: list[str], results: Path, *extra: str) -> list[str]:
    """LightningCLI args of a cascade test run from the quick-start cascade config."""
    return [
        "test",
        f"--config={QUICKSTART / 'cascade.yaml'}",
        f"--data={data_cfg}",
        f"--model.members={json.dumps(members)}",
        f"--results.dir={results}",
        f"--calibration.window_json={results / 'window.json'}",
        "--trainer.enable_progress_bar=false",
        f"--trainer.logger.save_dir={results}",
        "--verbose=false",
        *extra,
    ]


@pytest.fixture(scope="session")
def tiny_members(tmp_path_factory) -> dict:
    """Two resnet10t members trained for 2 epochs on the digits, with cached logits."""
    from lightning_modules.cli import MemberCLI

    out = tmp_path_factory.mktemp("members")
    data_cfg = shrink_data_config(out / "data.yaml")
    ckpts = []
    for i, seed in enumerate((0, 1)):
        MemberCLI(args=member_args(data_cfg, out, f"m{i}", seed))
        ckpts.append(str(out / f"m{i}" / "checkpoints" / "last.ckpt"))
        MemberCLI(
            args=[
                "predict",
                f"--config={QUICKSTART / 'member.yaml'}",
                f"--data={data_cfg}",
                f"--ckpt_path={ckpts[-1]}",
                "--trainer.logger=false",
                "--trainer.enable_progress_bar=false",
                f"--trainer.default_root_dir={out / f'm{i}'}",
                f"--checkpoint.dirpath={out / f'm{i}' / 'checkpoints'}",
                f"--cache.logits_dir={out / 'logits'}",
                f"--cache.member=m{i}",
            ]
        )
    return {"dir": out, "data_cfg": data_cfg, "ckpts": ckpts, "logits_dir": out / "logits"}
