"""The one adapter over LightningCLI's private methods ([`SafeLoadingCLI`][]), and what it
reads of a parsed config: the inputs a subcommand reads, and the SLURM task count."""

from __future__ import annotations

import os
import sys

from lightning.pytorch import Callback
from lightning.pytorch.cli import LightningCLI

from window_cascades.artifacts.output_paths import data_input_paths
from window_cascades.commands.cli_errors import CLIInputError, one_line
from window_cascades.commands.console import verbose_requested
from window_cascades.commands.interrupts import (
    Interrupted,
    lightning_step,
    request_stop,
    take_stop_request,
)
from window_cascades.commands.legacy_class_paths import register_parser_mode


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
    predictions = config.get("predictions")
    if predictions is not None and predictions.get("inputs"):
        inputs.append(("--predictions.inputs", str(predictions.get("inputs"))))
    return inputs


class StopOnSigterm(Callback):
    """Stops ``predict`` at the next batch after a SIGTERM, as Lightning's fit and evaluation
    loops do (its prediction loop never checks): a cluster's ``scancel`` or time limit then
    ends a long prediction (caching logits, applying a cascade) within a batch, not at the
    scheduler's SIGKILL."""

    def on_predict_batch_end(self, trainer, *args, **kwargs) -> None:
        from lightning.pytorch.utilities.exceptions import SIGTERMException

        if trainer.received_sigterm:
            raise SIGTERMException()


class SafeLoadingCLI(LightningCLI):
    """The one adapter over LightningCLI's private methods; the CLIs below use public hooks.

    - ``--ckpt_path`` loads with ``weights_only=True`` unless told otherwise (Lightning
      otherwise unpickles the checkpoint file, which can run arbitrary code);
    - ``--ckpt_path`` is checked by [`check_checkpoint`][] before anything is built or
      written (Lightning would load it first, with an unclear error when it is corrupt);
    - under SLURM, srun must have started as many processes as the Trainer runs;
    - SIGTERM ends the run with ``Interrupted`` (non-zero status), not Lightning's status 0,
      also in ``predict`` (``StopOnSigterm``); one that arrives after the run published
      its outputs in full (results swapped in, cached logits, predictions) is a note, kept as
      a stop request for a command with more steps (``window_cascades.commands.interrupts``);
    - Lightning's progress bar only on a terminal, one line per epoch of a ``fit`` elsewhere
      (``instantiate_trainer``);
    - an error of its input (a key or value jsonargparse refuses, a missing extra, Lightning's
      or wandb's refusal of a setting) is a ``CLIInputError`` of one line naming the file
      and key (``window_cascades.commands.cli_errors``), the parser's usage printed only with
      ``--verbose``;
    - config files are read with a YAML loader that reads a class path written before the
      ``window_cascades`` namespace (``datamodules.X``) as its new name, with a notice
      (``window_cascades.commands.legacy_class_paths``).
    """

    def __init__(self, *args, parser_kwargs: dict | None = None, **kwargs):
        # a parse error raises (exit_on_error=False) instead of printing the whole usage and
        # exiting: it becomes one line naming the file and key (window_cascades.commands.cli_errors)
        parser_kwargs = {
            "parser_mode": register_parser_mode(),
            "exit_on_error": False,
            **(parser_kwargs or {}),
        }
        try:
            super().__init__(*args, parser_kwargs=parser_kwargs, **kwargs)
        except Exception as err:
            argv = kwargs.get("args")
            line = one_line(err, [str(a) for a in argv] if isinstance(argv, list) else [])
            if line is None:
                raise
            if verbose_requested() and getattr(self, "parser", None) is not None:
                self.parser.print_usage(sys.stderr)  # the usage only when asked for
            raise CLIInputError(line) from err

    def check_checkpoint(self, subcommand: str, ckpt_path: str) -> None:
        """Hook: refuse ``ckpt_path`` for ``subcommand`` with a clear error (default: accept)."""

    def kept_over_checkpoint(self, subcommand: str) -> list[str]:
        """Hook: the ``model`` options whose given values win over the ``--ckpt_path``'s
        hyperparameters, which Lightning otherwise puts in their place (default: none)."""
        return []

    def _parse_ckpt_path(self) -> None:
        subcommand = self.config.get("subcommand")
        ckpt = self.config[subcommand].get("ckpt_path") if subcommand else None
        if ckpt and ckpt not in ("last", "hpc", "best", "registry"):
            self.check_checkpoint(subcommand, ckpt)
        model = self.config[subcommand].get("model") if subcommand else None
        kept = {k: model.get(k) for k in self.kept_over_checkpoint(subcommand)} if model else {}
        super()._parse_ckpt_path()
        for key, value in kept.items():
            self.config[subcommand].model[key] = value

    def _run_subcommand(self, subcommand: str) -> None:
        from lightning.pytorch.utilities.exceptions import SIGTERMException

        from window_cascades.artifacts.run_folder import published

        check_slurm_tasks(self.trainer)
        if not any(isinstance(c, StopOnSigterm) for c in self.trainer.callbacks):
            self.trainer.callbacks.append(StopOnSigterm())
        before = len(published())
        try:
            with lightning_step():
                super()._run_subcommand(subcommand)
        except SIGTERMException:
            take_stop_request()
            raise Interrupted(subcommand) from None
        stopped = take_stop_request()  # a SIGTERM before Lightning's handler was in place
        if not (self.trainer.received_sigterm or stopped):
            return
        new = published()[before:]
        if not new:  # arrived after the loops' last check, before anything was written
            raise Interrupted(subcommand)
        print(
            f"note: SIGTERM arrived after {subcommand} had written "
            f"{', '.join(str(p) for p in new)} in full; kept",
            file=sys.stderr,
            flush=True,
        )
        request_stop()  # a command with more steps stops at the next one

    def instantiate_trainer(self, **kwargs):
        """The Trainer, with Lightning's progress bar only where it can be redrawn: off when
        stdout is not a terminal (a SLURM or CI log would fill with redrawn bars) or progress
        is switched off (``--no-progress``), whatever the config says; a ``fit`` then prints
        one line per epoch instead
        (``window_cascades.lightning_modules.callbacks.epoch_line.EpochLine``).
        """
        from window_cascades.cascade.progress import progress_enabled

        bars = progress_enabled(sys.stdout)
        if not bars:
            kwargs["enable_progress_bar"] = False
        trainer = super().instantiate_trainer(**kwargs)
        if not bars and self.subcommand == "fit":
            from window_cascades.lightning_modules.callbacks.epoch_line import EpochLine

            trainer.callbacks.append(EpochLine())
        return trainer

    def _prepare_subcommand_kwargs(self, subcommand: str) -> dict:
        kwargs = super()._prepare_subcommand_kwargs(subcommand)
        if kwargs.get("weights_only") is None and "weights_only" in kwargs:
            kwargs["weights_only"] = True
        return kwargs
