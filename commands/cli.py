"""LightningCLI entry points: members (fit / predict to cached logits) and the cascade (test,
predict). Their common base, the one adapter over LightningCLI's private methods, is
``window_cascades.commands.safe_cli.SafeLoadingCLI``."""

from __future__ import annotations

import warnings
from pathlib import Path

from window_cascades.artifacts.output_paths import check_output_dir, check_output_file
from window_cascades.commands.safe_cli import SafeLoadingCLI, check_slurm_tasks, config_inputs
from window_cascades.datamodules.predict_files import PredictFilesDataModule, input_files
from window_cascades.lightning_modules.callbacks import (
    CachedLogitsWriter,
    CascadeCalibration,
    CascadePredictionsWriter,
    CascadeResultsWriter,
    MemberCheckpoint,
    PreemptionCheckpoint,
)
from window_cascades.lightning_modules.callbacks.cascade_calibration import (
    add_policy_parameter_arguments,
)
from window_cascades.lightning_modules.cascade_checkpoint import (
    DATA_INPUT_KEY,
    read_cascade_checkpoint,
)
from window_cascades.lightning_modules.cascade_data_input import prediction_input
from window_cascades.lightning_modules.cascade_members import (
    check_recorded_members_found,
    check_same_members,
)
from window_cascades.lightning_modules.cascade_module import CascadeModule
from window_cascades.lightning_modules.member import MemberModule
from window_cascades.lightning_modules.member_checkpoint import read_member_checkpoint

# Our datamodules save and restore their position in the epoch (ImageSetsDataModule.state_dict),
# so Lightning's warning about resuming mid-epoch with a non-resumable dataloader does not apply.
__all__ = ["MemberCLI", "CascadeCLI", "SafeLoadingCLI", "check_slurm_tasks"]

warnings.filterwarnings("ignore", message="You're resuming from a checkpoint that ended before")


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
        an untrained member that later steps take for a trained one."""
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
    """``test`` calibrates the cascade on the held-out split (fits every policy) and evaluates it;
    ``predict`` applies a calibrated cascade (``--ckpt_path cascade.ckpt``).

    ``--calibration.*`` configures the ``CascadeCalibration`` callback (target, width, ...);
    ``--results.dir`` is where ``CascadeResultsWriter`` writes metrics, plots and the checkpoint;
    ``--predictions.path`` / ``--predictions.policy`` configure ``CascadePredictionsWriter``.
    ``predict --predictions.inputs FOLDER|LIST|IMAGE`` needs no data config: the files are
    served by ``window_cascades.datamodules.predict_files.PredictFilesDataModule``, prepared as the
    images the cascade was calibrated on (recorded in ``--ckpt_path``); ``--model.members`` may
    be left out when the checkpoint's recorded members are where they were.
    """

    checkpoint_data_input: dict | None = None  # the --ckpt_path's data input, once read

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("save_config_kwargs", {"overwrite": True})
        super().__init__(CascadeModule, *args, subclass_mode_data=True, **kwargs)

    def add_arguments_to_parser(self, parser) -> None:
        # nothing is trained: no ModelCheckpoint, whose state would ride in cascade.ckpt and
        # warn of a changed dirpath in every predict run
        parser.set_defaults({"trainer.enable_checkpointing": False})
        # --model.members may be left out with a --ckpt_path that records them (Lightning
        # takes them from its hyperparameters)
        parser.set_defaults({"model.members": []})
        parser.add_lightning_class_args(CascadeCalibration, "calibration")
        add_policy_parameter_arguments(parser, "calibration")  # --calibration.width, ...
        parser.add_lightning_class_args(CascadeResultsWriter, "results")
        parser.add_lightning_class_args(CascadePredictionsWriter, "predictions")

    def check_checkpoint(self, subcommand: str, ckpt_path: str) -> None:
        """A readable cascade checkpoint whose fitted cascade and data input can be applied
        (never unpickled; one line naming the file and field otherwise), and whose members are
        the ``--model.members`` named (the checkpoint's members would otherwise silently
        replace them)."""
        ckpt = read_cascade_checkpoint(ckpt_path)
        given = list(self.config[subcommand].model.members or [])
        check_same_members(given, ckpt, ckpt_path)
        if not given:  # Lightning takes the recorded members from the checkpoint's hparams
            check_recorded_members_found(ckpt, ckpt_path)
        self.checkpoint_data_input = ckpt.get(DATA_INPUT_KEY)

    def kept_over_checkpoint(self, subcommand: str) -> list[str]:
        """Members named with ``--model.members`` (checked to be the recorded ones, possibly
        moved or copied) are loaded from where they are now, not from the recorded paths."""
        return ["members"] if self.config[subcommand].model.get("members") else []

    def before_instantiate_classes(self) -> None:
        """Before anything is built: the output paths (``--predictions.path``,
        ``--results.dir``), and a ``test`` of a one-member "cascade" refused (it has no second
        stage, so its fitted policies, exits and ensemble gains are meaningless)."""
        config = self.config[self.subcommand] if self.subcommand else None
        if self.subcommand == "predict":
            self._check_predict_data(config)
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

    def _check_predict_data(self, config) -> None:
        """``predict``'s data and output, before anything is built: ``--predictions.inputs``
        (its files listed, one line naming a missing path, an empty folder or a list naming
        missing files) replaces a data config's datamodule; without either there is nothing to
        predict. Then ``--predictions.path``, whose folder takes the run's ``config.yaml`` (and
        logs) unless ``--trainer.default_root_dir`` says otherwise."""
        inputs = config.predictions.inputs
        if inputs is not None and not config.get("ckpt_path"):
            raise ValueError(
                f"--predictions.inputs {inputs}: give --ckpt_path, the calibrated cascade's "
                "checkpoint (cascade.ckpt of a test run), which records its members and how its "
                "data was prepared"
            )
        if inputs is not None:
            input_files(inputs)
        elif config.get("data") is None:
            raise ValueError(
                "predict needs the new data: --predictions.inputs (a folder of images, a text "
                "file listing image paths, or one image), or --data (a data config whose "
                "datasets are predicted)"
            )
        check_output_file(config.predictions.path, "--predictions.path", config_inputs(config))
        if config.trainer.get("default_root_dir") is None:  # config.yaml next to the predictions
            config.trainer.default_root_dir = str(Path(config.predictions.path).parent)
        if inputs is not None and config.get("data") is not None:
            print(
                f"--predictions.inputs {inputs}: predicting these files only, prepared as the "
                "images the cascade was calibrated on; the data config (--data) is not used"
            )
            config["data"] = None

    def after_instantiate_classes(self) -> None:
        """``predict --predictions.inputs``: the datamodule serving those files, prepared as
        the images the cascade was calibrated on (the checkpoint's record, else the members')."""
        if self.subcommand != "predict":
            return
        writer = self._get(self.config_init, "predictions")
        if writer.inputs is None:
            return
        args = prediction_input(
            self.checkpoint_data_input,
            [m.input for m in self.model.member_modules],
            str(self._get(self.config, "ckpt_path")),
        )
        self.datamodule = PredictFilesDataModule(
            writer.inputs, **args, batch_size=writer.batch_size, num_workers=writer.num_workers
        )
