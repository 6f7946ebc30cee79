"""LightningCLI entry points: members (fit / predict to cached logits) and the cascade (test)."""

from __future__ import annotations

import os
import warnings
from pathlib import Path

from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.cli import LightningCLI

from lightning_modules.callbacks import (
    CachedLogitsWriter,
    CascadeCalibration,
    CascadePredictionsWriter,
    CascadeResultsWriter,
    PreemptionCheckpoint,
)
from lightning_modules.cascade_module import CascadeModule
from lightning_modules.member import MemberModule
from lightning_modules.member_checkpoint import read_member_checkpoint

# Our datamodules save and restore their position in the epoch (ImageSetsDataModule.state_dict),
# so Lightning's warning about resuming mid-epoch with a non-resumable dataloader does not apply.
warnings.filterwarnings("ignore", message="You're resuming from a checkpoint that ended before")


def check_slurm_tasks(trainer) -> None:
    """Refuse to start when srun launched a different number of processes than the Trainer uses.

    Lightning checks ``--ntasks-per-node`` against ``devices`` only for multi-device strategies:
    with ``devices=1`` every srun task would train the same member into the same files.
    """
    from lightning.fabric.plugins.environments import SLURMEnvironment

    env = trainer._accelerator_connector.cluster_environment
    if not isinstance(env, SLURMEnvironment) or "SLURM_NTASKS" not in os.environ:
        return
    ntasks, wanted = int(os.environ["SLURM_NTASKS"]), trainer.num_devices * trainer.num_nodes
    if ntasks != wanted:
        raise ValueError(
            f"SLURM started {ntasks} task(s) but the Trainer runs devices x num_nodes = "
            f"{trainer.num_devices} x {trainer.num_nodes} = {wanted} process(es); submit with "
            f"--ntasks-per-node={trainer.num_devices} --nodes={trainer.num_nodes}, or set "
            "--trainer.devices / --trainer.num_nodes to match"
        )


class SafeLoadingCLI(LightningCLI):
    """The one adapter over LightningCLI's private methods; the CLIs below use public hooks.

    - ``--ckpt_path`` loads with ``weights_only=True`` unless told otherwise (Lightning
      otherwise unpickles the checkpoint file, which can run arbitrary code);
    - ``--ckpt_path`` is checked by :meth:`check_checkpoint` before anything is built or
      written (Lightning would load it first, with an unclear error when it is corrupt);
    - under SLURM, srun must have started as many processes as the Trainer runs.
    """

    def check_checkpoint(self, subcommand: str, ckpt_path: str) -> None:
        """Hook: refuse ``ckpt_path`` for ``subcommand`` with a clear error (default: accept)."""

    def _parse_ckpt_path(self) -> None:
        subcommand = self.config.get("subcommand")
        ckpt = self.config[subcommand].get("ckpt_path") if subcommand else None
        if ckpt and ckpt not in ("last", "hpc", "best", "registry"):
            self.check_checkpoint(subcommand, ckpt)
        super()._parse_ckpt_path()

    def _run_subcommand(self, subcommand: str) -> None:
        check_slurm_tasks(self.trainer)
        super()._run_subcommand(subcommand)

    def _prepare_subcommand_kwargs(self, subcommand: str) -> dict:
        kwargs = super()._prepare_subcommand_kwargs(subcommand)
        if kwargs.get("weights_only") is None and "weights_only" in kwargs:
            kwargs["weights_only"] = True
        return kwargs


class MemberCLI(SafeLoadingCLI):
    """``fit`` trains one member; ``predict`` writes its cached logits.

    Extra arguments: ``--checkpoint.*`` (a ``ModelCheckpoint`` that keeps ``last.ckpt`` and the
    best held-out loss), ``--preemption.*`` (``PreemptionCheckpoint``: on SIGUSR1, checkpoint at
    the batch boundary and requeue) and, for ``predict``, ``--cache.logits_dir`` and
    ``--cache.member``.
    """

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("save_config_kwargs", {"overwrite": True})
        super().__init__(MemberModule, *args, subclass_mode_data=True, **kwargs)

    def add_arguments_to_parser(self, parser) -> None:
        parser.add_lightning_class_args(ModelCheckpoint, "checkpoint")
        parser.add_lightning_class_args(PreemptionCheckpoint, "preemption")
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

    def check_checkpoint(self, subcommand: str, ckpt_path: str) -> None:
        """A readable member checkpoint; for ``fit``, of the configured architecture (Lightning
        would otherwise silently replace the configured architecture by the checkpoint's)."""
        config = self.config[subcommand]
        expected = config.model.model_name if subcommand == "fit" else None
        read_member_checkpoint(ckpt_path, expected)

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
    """``test`` calibrates the window on the held-out split and evaluates the cascade;
    ``predict`` applies a calibrated cascade (``--ckpt_path cascade.ckpt``).

    ``--calibration.*`` configures the ``CascadeCalibration`` callback (target, width, ...);
    ``--results.dir`` is where ``CascadeResultsWriter`` writes metrics, plots and the checkpoint;
    ``--predictions.path`` / ``--predictions.policy`` configure ``CascadePredictionsWriter``.
    """

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("save_config_kwargs", {"overwrite": True})
        super().__init__(CascadeModule, *args, subclass_mode_data=True, **kwargs)

    def add_arguments_to_parser(self, parser) -> None:
        # nothing is trained: no ModelCheckpoint, whose state would ride in cascade.ckpt and
        # warn of a changed dirpath in every predict run
        parser.set_defaults({"trainer.enable_checkpointing": False})
        parser.add_lightning_class_args(CascadeCalibration, "calibration")
        parser.add_lightning_class_args(CascadeResultsWriter, "results")
        parser.add_lightning_class_args(CascadePredictionsWriter, "predictions")
