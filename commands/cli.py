"""LightningCLI entry points: members (fit / predict to cached logits) and the cascade (test)."""

from __future__ import annotations

import os
import warnings
from pathlib import Path

from lightning.pytorch.cli import LightningCLI

from artifacts.output_paths import check_output_dir, check_output_file, data_input_paths
from commands.interrupts import Interrupted
from lightning_modules.callbacks import (
    CachedLogitsWriter,
    CascadeCalibration,
    CascadePredictionsWriter,
    CascadeResultsWriter,
    MemberCheckpoint,
    PreemptionCheckpoint,
)
from lightning_modules.cascade_checkpoint import read_cascade_checkpoint
from lightning_modules.cascade_members import check_same_members
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


def _plain(value: object) -> object:
    """A jsonargparse Namespace (and what it holds) as plain dicts and lists."""
    if hasattr(value, "as_dict"):
        return value.as_dict()
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def config_inputs(config) -> list[tuple[str, str]]:
    """(option, path) of the files and folders a subcommand's config reads: the data's paths,
    the members, ``--ckpt_path``."""
    inputs = data_input_paths(_plain(config.get("data")))
    model = config.get("model")
    members = (model.get("members") if model is not None else None) or []
    inputs += [("--model.members", str(m)) for m in members]
    if config.get("ckpt_path"):
        inputs.append(("--ckpt_path", str(config.get("ckpt_path"))))
    return inputs


class SafeLoadingCLI(LightningCLI):
    """The one adapter over LightningCLI's private methods; the CLIs below use public hooks.

    - ``--ckpt_path`` loads with ``weights_only=True`` unless told otherwise (Lightning
      otherwise unpickles the checkpoint file, which can run arbitrary code);
    - ``--ckpt_path`` is checked by :meth:`check_checkpoint` before anything is built or
      written (Lightning would load it first, with an unclear error when it is corrupt);
    - under SLURM, srun must have started as many processes as the Trainer runs;
    - SIGTERM ends the run with :class:`Interrupted` (non-zero status), not Lightning's status 0.
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
        from lightning.pytorch.utilities.exceptions import SIGTERMException

        check_slurm_tasks(self.trainer)
        try:
            super()._run_subcommand(subcommand)
        except SIGTERMException:
            raise Interrupted(subcommand) from None
        if self.trainer.received_sigterm:  # arrived after the loops' last check
            raise Interrupted(subcommand)

    def _prepare_subcommand_kwargs(self, subcommand: str) -> dict:
        kwargs = super()._prepare_subcommand_kwargs(subcommand)
        if kwargs.get("weights_only") is None and "weights_only" in kwargs:
            kwargs["weights_only"] = True
        return kwargs


class MemberCLI(SafeLoadingCLI):
    """``fit`` trains one member; ``predict`` writes its cached logits.

    Extra arguments: ``--checkpoint.*`` (a ``MemberCheckpoint``: ``last.ckpt`` holds the newest
    step, ``best.ckpt`` the best held-out loss), ``--preemption.*`` (``PreemptionCheckpoint``:
    on SIGUSR1, checkpoint at the batch boundary and requeue) and, for ``predict``,
    ``--cache.logits_dir`` and ``--cache.member``.
    """

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("save_config_kwargs", {"overwrite": True})
        super().__init__(MemberModule, *args, subclass_mode_data=True, **kwargs)

    def add_arguments_to_parser(self, parser) -> None:
        parser.add_lightning_class_args(MemberCheckpoint, "checkpoint")
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

    def before_fit(self) -> None:
        """Refuse a fit that trains nothing (``max_epochs`` or ``max_steps`` 0): it would write
        an untrained member that later stages take for a trained one."""
        trainer = self.trainer
        if trainer.max_epochs == 0 or trainer.max_steps == 0:
            option = "max_epochs" if trainer.max_epochs == 0 else "max_steps"
            raise ValueError(
                f"--trainer.{option} 0: a member fit needs at least one epoch and one step "
                "(an untrained member would be taken for a trained one)"
            )

    def before_instantiate_classes(self) -> None:
        """Output paths checked before anything is built (``predict``'s logits folder)."""
        config = self.config[self.subcommand] if self.subcommand else None
        if self.subcommand == "predict" and config.cache.logits_dir:
            check_output_dir(
                config.cache.logits_dir, "--cache.logits_dir", config_inputs(config), replaced=False
            )

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

    def check_checkpoint(self, subcommand: str, ckpt_path: str) -> None:
        """A readable cascade checkpoint whose fitted cascade and data input can be applied
        (never unpickled; one line naming the file and field otherwise), and whose members are
        the ``--model.members`` named (the checkpoint's members would otherwise silently
        replace them)."""
        ckpt = read_cascade_checkpoint(ckpt_path)
        check_same_members(list(self.config[subcommand].model.members or []), ckpt, ckpt_path)

    def before_instantiate_classes(self) -> None:
        """Before anything is built: the output paths (``--predictions.path``,
        ``--results.dir``), and a ``test`` of a one-member "cascade" refused (it has no second
        stage, so its window, exits and ensemble gains are meaningless)."""
        config = self.config[self.subcommand] if self.subcommand else None
        if self.subcommand == "predict":
            check_output_file(config.predictions.path, "--predictions.path", config_inputs(config))
        if self.subcommand != "test":
            return
        if config.results.dir is not None:
            check_output_dir(config.results.dir, "--results.dir", config_inputs(config))
        members = list(config.model.members or [])
        if len(members) == 1:
            raise ValueError(
                f"--model.members [{members[0]}]: a cascade test needs at least 2 members "
                "(one member has nothing to pass samples on to)"
            )
