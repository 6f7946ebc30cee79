"""Lightning's private API the library reads (``lightning_modules/lightning_private.py``):
these fail loudly when a Lightning upgrade changes it."""

from __future__ import annotations

import pytest
from lightning.pytorch import LightningModule, Trainer

from window_cascades.lightning_modules.lightning_private import attached_ckpt_path


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


def test_a_member_rebuilt_inside_a_lightning_cli_run_keeps_its_own_hparams():
    """LightningCLI hands the module it builds its config through a context variable that
    ``save_hyperparameters`` reads; ``MemberModule.rebuilt`` (used by ``load_member``, also
    inside a cascade CLI run) builds in an empty context so a member keeps its own."""
    from lightning.pytorch.core.mixins.hparams_mixin import _given_hyperparameters_context

    from window_cascades.lightning_modules.member import MemberModule

    with _given_hyperparameters_context({"members": ["a.ckpt"]}, "cascade"):
        member = MemberModule.rebuilt({"num_classes": 3, "in_chans": 1})
    assert member.hparams.num_classes == 3 and "members" not in member.hparams


def test_the_lightning_cli_methods_the_safe_loading_cli_overrides_still_exist():
    """``window_cascades.commands.safe_cli.SafeLoadingCLI`` overrides these private LightningCLI
    methods (checkpoint checks, weights_only, SIGTERM); if one is renamed, its override silently
    stops running."""
    from lightning.pytorch.cli import LightningCLI

    for name in ("_parse_ckpt_path", "_run_subcommand", "_prepare_subcommand_kwargs"):
        assert callable(getattr(LightningCLI, name, None)), f"LightningCLI.{name} is gone"


def test_the_trainer_still_exposes_its_cluster_environment(tmp_path):
    """``window_cascades.commands.safe_cli.check_slurm_tasks`` reads the private accelerator
    connector."""
    trainer = Trainer(logger=False, enable_progress_bar=False, default_root_dir=tmp_path)
    assert trainer._accelerator_connector.cluster_environment is not None
