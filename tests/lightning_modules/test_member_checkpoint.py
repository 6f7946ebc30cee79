"""The checkpoint a member hands on is its last training step, whatever the held-out loss did."""

from __future__ import annotations

import json

import pytest
import torch

from tests.conftest import QUICKSTART, QUIET
from window_cascades.commands.member_training import member_checkpoint, train_member


@pytest.mark.slow  # trains a member: the fast loop leaves it to the full suite
def test_last_checkpoint_holds_the_last_step_and_finished_json_names_it(
    tmp_path, small_data_config
):
    # 2 batches per epoch, 3 epochs. Monitoring the epoch with mode=min makes epoch 0 the
    # "best" for certain: Lightning's ModelCheckpoint then left last.ckpt at step 2.
    data_cfg = small_data_config(tmp_path / "data.yaml", train_limit=128)
    cfg = {
        "out": str(tmp_path / "exp"),
        "seeds": [0],
        "member_config": str(QUICKSTART / "member.yaml"),
        "logger": "csv",
        "member_args": [
            f"--data={data_cfg}",
            "--trainer.max_epochs=3",
            "--checkpoint.monitor=epoch",
            "--checkpoint.mode=min",
            *QUIET,
        ],
    }
    last = train_member(cfg, 0)
    assert last == member_checkpoint(cfg, 0)
    finished = json.loads((last.parents[1] / "finished.json").read_text())
    saved = torch.load(last, map_location="cpu", weights_only=True)
    assert saved["global_step"] == finished["global_step"] == finished["checkpoint_step"] == 6
    assert finished["checkpoint"] == str(last)
    best = torch.load(finished["best_checkpoint"], map_location="cpu", weights_only=True)
    assert finished["best_checkpoint"].endswith("best.ckpt") and best["global_step"] == 2
    assert not list(last.parent.glob("*.partial"))
