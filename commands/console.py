"""Third-party messages that do not concern the user's run, filtered in our commands.

Lightning and PyTorch print, on every run, messages about things the run does not use or
cannot change: Lightning's tip to install ``litlogger``, its hint that ``srun`` exists on the
machine but launched nothing, PyTorch's deprecation of ``isinstance(treespec, LeafSpec)``
(raised inside Lightning's own code), Lightning's note that its default logger's package is
not installed (a predict run without a logger), and LightningCLI's warning that ``args`` were given
while ``sys.argv`` also holds arguments (our pipeline builds each step's arguments itself).
They also print routine lines on every step of every run, which a log of a pipeline repeats
for each member: ``Seed set to``, ``GPU available``/``TPU available``/``HPU available``, the
CUDA device and Tensor Core hints, the model summary table, ``Trainer.fit stopped:
max_epochs=N reached``, ``Loaded model weights from the checkpoint``; and wandb prints its own
lines (run summary, sync notes) on each step's run.

[`quiet_third_party`][] filters exactly these, by message and category (warnings), by
logger and message (Lightning's ``rank_zero_info`` and its other loggers), and sets
``WANDB_QUIET=true`` unless the environment sets it (wandb then prints only what is critical);
every other warning and log line still shows (e.g. ``Trainer.fit stopped: No training
batches``, a resumed run's ``Restored all states``). The commands call it first thing;
``--verbose`` (or ``WINDOW_CASCADES_VERBOSE=1``, which child processes inherit) keeps them.
Only the standard library is imported here, so the filters are in place before Lightning is.
"""

from __future__ import annotations

import logging
import os
import re
import warnings

VERBOSE_ENV = "WINDOW_CASCADES_VERBOSE"

#: (regular expression matched at the start of the message, category) of each filtered warning.
NOISE_WARNINGS: tuple[tuple[str, type[Warning]], ...] = (
    (r"`isinstance\(treespec, LeafSpec\)` is deprecated", FutureWarning),
    (r"The `srun` command is available on your system but is not used", UserWarning),
    (r"LightningCLI's args parameter is intended to run from within Python", UserWarning),
    # a predict run without a logger config: Lightning's note on its default logger's package
    (r"Starting from v1.9.0, `tensorboardX` has been removed as a dependency", UserWarning),
)
#: Loggers Lightning writes its info lines through (``rank_zero_info``, the seed, the model
#: summary, the CUDA accelerator), and the regular expressions (matched at the start of the
#: message) of the filtered lines.
NOISE_LOGGERS = (
    "lightning.pytorch.utilities.rank_zero",
    "lightning.fabric.utilities.rank_zero",
    "lightning.fabric.utilities.seed",
    "lightning.pytorch.callbacks.model_summary",
    "lightning.pytorch.accelerators.cuda",
)
NOISE_LOG_LINES = (
    r"💡 Tip: For seamless cloud logging and experiment tracking",
    r"(\[rank: \d+\] )?Seed set to ",
    r"[GTHI]PU available: ",
    r"LOCAL_RANK: \d+ - CUDA_VISIBLE_DEVICES",
    r"You are using a CUDA device .* that has Tensor Cores",
    r"\s*\|\s*Name\s*\|",  # the model summary table
    r"`Trainer.fit` stopped: `max_(epochs|steps)=",
    r"Loaded model weights from the checkpoint at ",
    r"Restoring states from the checkpoint path at ",
    r"Loading `train_dataloader` to estimate number of stepping batches",
)
_NOISE_LINES = re.compile("|".join(f"(?:{p})" for p in NOISE_LOG_LINES), re.S)


class _DropThirdPartyTips(logging.Filter):
    """Drops the log records whose message starts with one of [`NOISE_LOG_LINES`][]."""

    def filter(self, record: logging.LogRecord) -> bool:
        return _NOISE_LINES.match(str(record.getMessage())) is None


def verbose_requested(flag: bool = False) -> bool:
    """``flag`` (a ``--verbose`` argument) or ``WINDOW_CASCADES_VERBOSE=1``."""
    return flag or os.environ.get(VERBOSE_ENV) == "1"


def quiet_third_party(verbose: bool = False) -> None:
    """Filter the third-party messages listed above in this process (nothing when ``verbose``).

    With ``verbose``, sets ``WINDOW_CASCADES_VERBOSE=1`` so that processes this one starts
    (e.g. a DDP launch) keep the messages too. Calling it again adds no duplicate filters.
    """
    if verbose_requested(verbose):
        os.environ[VERBOSE_ENV] = "1"
        return
    os.environ.setdefault("WANDB_QUIET", "true")  # wandb: only what is critical
    for message, category in NOISE_WARNINGS:
        warnings.filterwarnings("ignore", message=message, category=category)
    for name in NOISE_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, _DropThirdPartyTips) for f in logger.filters):
            logger.addFilter(_DropThirdPartyTips())


def add_console_options(parser) -> None:
    """Add ``--no-progress`` and ``--verbose`` to an ``argparse`` parser of one of our commands."""
    parser.add_argument(
        "--no-progress",
        action="store_true",
        help="no progress bars (they are drawn only on a terminal)",
    )
    parser.add_argument(
        "--verbose",
        action="store_true",
        help="keep third-party tips, routine lines (seed, devices, model summary, wandb's "
        "summary) and deprecation warnings (filtered by default)",
    )


def apply_console_options(args) -> None:
    """Apply the options of [`add_console_options`][]: filter the third-party messages unless
    ``--verbose``, and turn the progress bars off with ``--no-progress``."""
    quiet_third_party(args.verbose)
    if args.no_progress:
        from window_cascades.cascade.progress import disable_progress

        disable_progress()
