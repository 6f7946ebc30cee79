"""LightningCLI entry points: members (fit / predict to cached logits) and the cascade (test)."""

from __future__ import annotations

from pathlib import Path

from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.cli import LightningCLI

from lightning_modules.callbacks import CachedLogitsWriter, WindowCalibration
from lightning_modules.cascade import CascadeModule
from lightning_modules.member import MemberModule


class SafeLoadingCLI(LightningCLI):
    """A LightningCLI whose ``--ckpt_path`` loads with ``weights_only=True`` unless told otherwise.

    Lightning otherwise unpickles the checkpoint file, which can run arbitrary code.
    """

    def _prepare_subcommand_kwargs(self, subcommand: str) -> dict:
        kwargs = super()._prepare_subcommand_kwargs(subcommand)
        if kwargs.get("weights_only") is None and "weights_only" in kwargs:
            kwargs["weights_only"] = True
        return kwargs


class MemberCLI(SafeLoadingCLI):
    """``fit`` trains one member; ``predict`` writes its cached logits.

    Extra arguments: ``--checkpoint.*`` (a ``ModelCheckpoint`` that keeps ``last.ckpt`` and the
    best held-out loss) and, for ``predict``, ``--cache.logits_dir`` and ``--cache.member``.
    """

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("save_config_kwargs", {"overwrite": True})
        super().__init__(MemberModule, *args, subclass_mode_data=True, **kwargs)

    def add_arguments_to_parser(self, parser) -> None:
        parser.add_lightning_class_args(ModelCheckpoint, "checkpoint")
        parser.set_defaults(
            {
                "checkpoint.monitor": "val/loss",
                "checkpoint.filename": "best",
                "checkpoint.save_last": True,
                "checkpoint.save_top_k": 1,
            }
        )
        parser.link_arguments("data.num_classes", "model.num_classes", apply_on="instantiate")
        parser.link_arguments("data.in_chans", "model.in_chans", apply_on="instantiate")
        parser.add_argument("--cache.logits_dir", type=str | None, default=None)
        parser.add_argument("--cache.member", type=str, default="m0")

    def before_predict(self) -> None:
        cache = self.config_init[self.subcommand]["cache"]
        if not cache["logits_dir"]:
            raise ValueError("predict needs --cache.logits_dir (where cached logits go)")
        ckpt = self.config_init[self.subcommand].get("ckpt_path")
        if ckpt and not Path(ckpt).is_file():
            raise FileNotFoundError(f"member checkpoint not found: {ckpt}")
        self.trainer.callbacks.append(
            CachedLogitsWriter(cache["logits_dir"], cache["member"], checkpoint=ckpt)
        )


class CascadeCLI(SafeLoadingCLI):
    """``test`` calibrates the window on the held-out split and evaluates the cascade.

    ``--calibration.*`` configures the ``WindowCalibration`` callback (target, width, ...).
    """

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("save_config_kwargs", {"overwrite": True})
        super().__init__(CascadeModule, *args, subclass_mode_data=True, **kwargs)

    def add_arguments_to_parser(self, parser) -> None:
        parser.add_lightning_class_args(WindowCalibration, "calibration")
