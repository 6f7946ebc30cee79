"""One line per training epoch where the progress bar is off (a log file)."""

from __future__ import annotations

import io
import sys

import torch
from lightning.pytorch import LightningModule, Trainer
from torch.utils.data import DataLoader, TensorDataset

from window_cascades.lightning_modules.callbacks.epoch_line import EpochLine, epoch_line


def test_the_line_shows_the_epoch_its_metrics_and_the_time_left():
    metrics = {"train/loss_step": 0.9, "train/loss_epoch": 0.4123, "val/acc": 0.93}
    assert epoch_line(3, 6, metrics, 12.3, 37.6) == (
        "epoch 3/6: train/loss 0.4123, val/acc 0.93 (12 s; about 38 s left)"
    )
    assert epoch_line(1, -1, {}, 2.0, None) == "epoch 1 (2 s)"


class Tiny(LightningModule):
    def __init__(self):
        super().__init__()
        self.layer = torch.nn.Linear(4, 2)

    def training_step(self, batch, batch_idx):
        x, y = batch
        loss = torch.nn.functional.cross_entropy(self.layer(x), y)
        self.log("train/loss", loss, prog_bar=True, on_step=True, on_epoch=True)
        return loss

    def validation_step(self, batch, batch_idx):
        x, y = batch
        self.log("val/loss", torch.nn.functional.cross_entropy(self.layer(x), y), prog_bar=True)

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


def test_a_fit_prints_exactly_one_line_per_epoch(tmp_path, monkeypatch):
    data = TensorDataset(torch.randn(32, 4), torch.randint(0, 2, (32,)))
    out = io.StringIO()
    monkeypatch.setattr(sys, "stdout", out)
    trainer = Trainer(
        max_epochs=3,
        logger=False,
        enable_progress_bar=False,
        enable_checkpointing=False,
        enable_model_summary=False,
        default_root_dir=tmp_path,
        callbacks=[EpochLine()],
    )
    trainer.fit(Tiny(), DataLoader(data, batch_size=8), DataLoader(data, batch_size=16))
    lines = out.getvalue().splitlines()
    assert [line.split(":")[0] for line in lines] == ["epoch 1/3", "epoch 2/3", "epoch 3/3"]
    assert all("train/loss " in line and "val/loss " in line for line in lines)
    assert lines[-1].endswith("about 0 s left)") and "\r" not in out.getvalue()
