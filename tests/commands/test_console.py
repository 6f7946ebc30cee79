"""Quiet by default: third-party tips, hints and deprecation warnings that do not concern the
user's run are filtered in our commands, and shown with ``--verbose``."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
import yaml

from tests.conftest import QUICKSTART, ROOT
from window_cascades.commands.cli_entry import split_verbose
from window_cascades.commands.console import VERBOSE_ENV, quiet_third_party

# What each message starts with, as Lightning and PyTorch print it.
NOISE = {
    "litlogger tip": "💡 Tip: For seamless cloud logging and experiment tracking",
    "srun hint": "The `srun` command is available on your system but is not used",
    "LeafSpec deprecation": "`isinstance(treespec, LeafSpec)` is deprecated",
    "LightningCLI args warning": "LightningCLI's args parameter is intended",
    "tensorboardX notice": "Starting from v1.9.0, `tensorboardX` has been removed as a dependency",
}

# Lightning's routine lines of every step, shown only with --verbose.
ROUTINE = {
    "seed": "Seed set to",
    "devices": "GPU available:",
    "model summary": "| Name",
    "end of fit": "`Trainer.fit` stopped: `max_epochs=",
}


def _fake_srun(tmp_path: Path) -> dict:
    """An environment with an ``srun`` on PATH (Lightning hints at it when one exists) and no
    SLURM job variables, as on a cluster's login node."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    srun = bin_dir / "srun"
    srun.write_text("#!/bin/sh\nexit 1\n")
    srun.chmod(0o755)
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLURM_")}
    env.pop(VERBOSE_ENV, None)
    env.update(PATH=f"{bin_dir}:{env['PATH']}", WANDB_MODE="offline")
    return env


def _tiny_pipeline(tmp_path: Path, small_data_config) -> Path:
    data = small_data_config(tmp_path / "data.yaml")
    cfg = {
        "out": str(tmp_path / "out"),
        "seeds": [0, 1],
        "member_config": str(QUICKSTART / "member.yaml"),
        "cascade_config": str(QUICKSTART / "cascade.yaml"),
        "member_args": [f"--data={data}", "--trainer.max_epochs=2"],
        "cascade_args": [f"--data={data}"],
    }
    path = tmp_path / "pipeline.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


@pytest.mark.slow
def test_a_quick_start_pipeline_prints_no_third_party_noise(tmp_path, small_data_config):
    """The quick start's command (tiny: 2 members of 2 epochs, as the tests' members) on a
    machine with srun installed: its stdout and stderr hold none of the messages; the run
    itself still reports."""
    config = _tiny_pipeline(tmp_path, small_data_config)
    proc = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "run_pipeline.py"), "--config", str(config)],
        cwd=tmp_path,
        env=_fake_srun(tmp_path),
        capture_output=True,
        text=True,
        timeout=900,
    )
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output[-3000:]
    assert (tmp_path / "out" / "results" / "metrics.csv").is_file()
    for what, start in {**NOISE, **ROUTINE}.items():
        assert start not in output, f"{what} printed:\n{output[-3000:]}"
    # the run itself still reports: one line per epoch of each member (no bars in a log)
    assert "\r" not in output
    epochs = [line for line in proc.stdout.splitlines() if line.startswith("epoch ")]
    assert [line.split(":")[0] for line in epochs] == ["epoch 1/2", "epoch 2/2"] * 2, epochs
    assert all("val/loss" in line and "train/loss" in line for line in epochs)
    assert "Results written to:" in proc.stdout


@pytest.mark.slow
def test_verbose_keeps_the_third_party_messages(tmp_path, small_data_config):
    """``--verbose`` on a member's fit shows Lightning's tip, the srun hint and the deprecation
    that the same command filters without it."""
    data = small_data_config(tmp_path / "data.yaml", train_limit=64)
    args = [
        sys.executable,
        str(ROOT / "scripts" / "train_member.py"),
        "fit",
        f"--config={QUICKSTART / 'member.yaml'}",
        f"--data={data}",
        "--trainer.max_epochs=1",
        f"--trainer.default_root_dir={tmp_path / 'm'}",
        f"--checkpoint.dirpath={tmp_path / 'ck'}",
        f"--trainer.logger.init_args.save_dir={tmp_path / 'logs'}",
        "--trainer.enable_progress_bar=false",
    ]
    env = _fake_srun(tmp_path)
    outputs = {}
    for flag in ([], ["--verbose"]):
        proc = subprocess.run(
            [*args, *flag], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600
        )
        assert proc.returncode == 0, proc.stderr[-3000:]
        outputs[bool(flag)] = proc.stdout + proc.stderr
    for what in ("litlogger tip", "srun hint", "LeafSpec deprecation"):
        assert NOISE[what] not in outputs[False], what
        assert NOISE[what] in outputs[True], what
    for what, start in ROUTINE.items():  # Lightning's routine lines, only with --verbose
        assert start not in outputs[False], what
        assert start in outputs[True], what


def test_the_filters_are_narrow(monkeypatch):
    """Only the listed messages are filtered: another FutureWarning or UserWarning from the
    same libraries, and other Lightning info lines, still show."""
    monkeypatch.delenv(VERBOSE_ENV, raising=False)
    monkeypatch.setenv("WANDB_QUIET", "unset below; restored after the test")
    monkeypatch.delenv("WANDB_QUIET")
    logger = logging.getLogger("lightning.pytorch.utilities.rank_zero")
    monkeypatch.setattr(logger, "filters", [])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        quiet_third_party()
        warnings.warn(NOISE["LeafSpec deprecation"] + ", use ...", FutureWarning, stacklevel=1)
        warnings.warn(NOISE["srun hint"] + ". HINT: ...", UserWarning, stacklevel=1)
        warnings.warn(NOISE["tensorboardX notice"] + " of ...", UserWarning, stacklevel=1)
        warnings.warn("`foo` is deprecated, use `bar`", FutureWarning, stacklevel=1)
        warnings.warn("The dataloader does not have many workers", UserWarning, stacklevel=1)
        # the same text under another category is not ours to hide
        warnings.warn(NOISE["LeafSpec deprecation"], RuntimeWarning, stacklevel=1)
    assert [str(w.message) for w in caught] == [
        "`foo` is deprecated, use `bar`",
        "The dataloader does not have many workers",
        NOISE["LeafSpec deprecation"],
    ]
    records = [
        logging.LogRecord(logger.name, logging.INFO, __file__, 1, msg, None, None)
        for msg in (
            NOISE["litlogger tip"] + " try ...",
            "GPU available: False, used: False",
            "`Trainer.fit` stopped: `max_epochs=6` reached.",
            "`Trainer.fit` stopped: No training batches.",  # not routine: still shown
            "Restored all states from the checkpoint at m0/last.ckpt",  # a resume: shown
        )
    ]
    assert [logger.filter(r) for r in records] == [False, False, False, True, True]
    assert os.environ["WANDB_QUIET"] == "true"  # wandb's run summary only with --verbose
    with warnings.catch_warnings():
        quiet_third_party()
    assert len(logger.filters) == 1  # calling it twice adds no second filter


def test_verbose_sets_the_environment_for_child_processes(monkeypatch):
    monkeypatch.delenv(VERBOSE_ENV, raising=False)
    monkeypatch.setenv("WANDB_QUIET", "unset below; restored after the test")
    monkeypatch.delenv("WANDB_QUIET")
    logger = logging.getLogger("lightning.pytorch.utilities.rank_zero")
    monkeypatch.setattr(logger, "filters", [])
    quiet_third_party(verbose=True)
    assert os.environ[VERBOSE_ENV] == "1" and logger.filters == []


def test_bare_verbose_is_ours_and_a_valued_one_is_lightnings():
    """``--verbose`` alone (which LightningCLI refuses: its ``test --verbose`` takes a value)
    asks for the third-party messages; ``--verbose false`` stays the test subcommand's."""
    assert split_verbose(["fit", "--verbose"]) == (["fit"], True)
    assert split_verbose(["test", "--verbose", "--config", "c.yaml"]) == (
        ["test", "--config", "c.yaml"],
        True,
    )
    assert split_verbose(["test", "--verbose", "false"]) == (["test", "--verbose", "false"], False)
    assert split_verbose(["test", "--verbose=true"]) == (["test", "--verbose=true"], False)
