"""Lightning's private API the library reads (``lightning_modules/lightning_private.py``):
these fail loudly when a Lightning upgrade changes it."""

from __future__ import annotations

import pytest
from lightning.pytorch import LightningModule, Trainer

from lightning_modules.lightning_private import attached_ckpt_path


def test_a_module_without_a_trainer_has_no_checkpoint_path():
    module = LightningModule()
    assert module._trainer is None, "Lightning no longer keeps the attached trainer in _trainer"
    with pytest.raises(RuntimeError):
        module.trainer  # noqa: B018 - the public property refuses an unattached module
    assert attached_ckpt_path(module) is None


def test_an_attached_trainer_gives_its_checkpoint_path(tmp_path):
    module = LightningModule()
    trainer = Trainer(logger=False, enable_progress_bar=False, default_root_dir=tmp_path)
    module.trainer = trainer
    assert module._trainer is trainer, "Lightning no longer keeps the attached trainer in _trainer"
    assert attached_ckpt_path(module) is None  # nothing restored yet
    trainer.ckpt_path = str(tmp_path / "a.ckpt")
    assert attached_ckpt_path(module) == str(tmp_path / "a.ckpt")
