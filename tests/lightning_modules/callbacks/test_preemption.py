"""Preemption: a member stopped by SIGUSR1 mid-epoch resumes to the very same weights."""

from __future__ import annotations

import os
import signal

import pytest
import torch
from lightning.pytorch import Callback

from window_cascades.commands.cli import MemberCLI
from window_cascades.lightning_modules.callbacks.preemption import (
    PREEMPTED_EXIT_CODE,
    latest_checkpoint,
)


class SignalAtStep(Callback):
    """Sends SIGUSR1 to this process when training reaches ``step`` (as SLURM would)."""

    def __init__(self, step: int):
        self.step = step

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if trainer.global_step == self.step:
            os.kill(os.getpid(), signal.SIGUSR1)


def weights(path) -> dict:
    return torch.load(path, map_location="cpu", weights_only=True)["state_dict"]


@pytest.mark.slow  # three trainings
def test_resume_after_preemption_gives_the_uninterrupted_weights(
    tmp_path, member_fit_args, small_data_config
):
    # 10 batches/epoch; augmented, so the warps too must be those of the uninterrupted run
    data_cfg = small_data_config(tmp_path / "data.yaml", train_limit=640, augment="affine")
    every_epoch = ["--checkpoint.save_top_k=-1", "--checkpoint.filename={epoch}"]
    MemberCLI(args=[*member_fit_args(data_cfg, tmp_path, "full", seed=3, epochs=2), *every_epoch])

    cli = MemberCLI(
        args=member_fit_args(data_cfg, tmp_path, "cut", seed=3, epochs=2)[1:], run=False
    )
    cli.trainer.callbacks.append(SignalAtStep(13))  # mid-way through the second epoch
    with pytest.raises(SystemExit) as stop:
        cli.trainer.fit(cli.model, datamodule=cli.datamodule)
    assert stop.value.code == PREEMPTED_EXIT_CODE
    run_dir = tmp_path / "cut"
    hpc = latest_checkpoint(run_dir, run_dir / "checkpoints" / "last.ckpt")
    assert hpc is not None and hpc.name == "hpc_ckpt_1.ckpt"
    saved = torch.load(hpc, map_location="cpu", weights_only=True)
    assert saved["global_step"] == 14  # the signalled batch finished before saving

    resume = [*member_fit_args(data_cfg, tmp_path, "cut", seed=3, epochs=2), f"--ckpt_path={hpc}"]
    MemberCLI(args=resume)
    full = weights(tmp_path / "full" / "checkpoints" / "last.ckpt")
    resumed = weights(run_dir / "checkpoints" / "last.ckpt")
    assert full.keys() == resumed.keys()
    for key in full:
        assert torch.equal(full[key], resumed[key]), key

    # a job killed without the signal restarts from the end-of-epoch checkpoint: same weights
    epoch_end = tmp_path / "full" / "checkpoints" / "epoch=0.ckpt"
    MemberCLI(
        args=[
            *member_fit_args(data_cfg, tmp_path, "restart", seed=3, epochs=2),
            f"--ckpt_path={epoch_end}",
        ]
    )
    restarted = weights(tmp_path / "restart" / "checkpoints" / "last.ckpt")
    for key in full:
        assert torch.equal(full[key], restarted[key]), key
