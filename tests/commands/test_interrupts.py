"""SIGTERM during a member's fit or the cascade's evaluation: a non-zero status and one line,
nothing marked finished; SIGUSR1 keeps its preemption path
(tests/lightning_modules/callbacks/test_preemption.py)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import QUICKSTART, QUIET, ROOT
from window_cascades.commands.interrupts import SIGTERM_EXIT_CODE


def start(script: str, args: list[str], marker: Path) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}  # the test's callback: tests.signal_helpers
    env.pop("WINDOW_CASCADES_TRACEBACK", None)
    callback = [
        "--trainer.callbacks+=tests.signal_helpers.MarkAndSlow",
        f"--trainer.callbacks.marker={marker}",
    ]
    return subprocess.Popen(
        [sys.executable, str(ROOT / "scripts" / script), *args, *callback],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def terminate_at_marker(proc: subprocess.Popen, marker: Path, timeout: float = 600) -> str:
    """Wait for ``marker`` (the run is mid-loop), send SIGTERM, return stderr."""
    deadline = time.monotonic() + timeout
    while not marker.exists():
        assert proc.poll() is None, proc.communicate()[1][-3000:]
        assert time.monotonic() < deadline, "the run never reached its marker"
        time.sleep(0.1)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=300)
    return err


@pytest.mark.slow
def test_sigterm_during_fit_and_evaluation_exits_non_zero(tmp_path, small_data_config):
    data_cfg = small_data_config(tmp_path / "data.yaml", train_limit=128)
    member = [
        "fit",
        f"--config={QUICKSTART / 'member.yaml'}",
        f"--data={data_cfg}",
        "--trainer.logger=false",
        "--trainer.max_epochs=1",
        *QUIET,
    ]
    # two clean members to evaluate with (1 epoch of 2 batches each, seeds 0 and 1)
    for seed in (0, 1):
        done = subprocess.run(
            [
                sys.executable,
                str(ROOT / "scripts" / "train_member.py"),
                *member,
                f"--seed_everything={seed}",
                f"--checkpoint.dirpath={tmp_path / f'm{seed}'}",
                f"--trainer.default_root_dir={tmp_path}",
            ],
            cwd=ROOT,
            env={**os.environ},
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert done.returncode == 0, done.stderr[-3000:]
    members = f"[{tmp_path / 'm0' / 'last.ckpt'}, {tmp_path / 'm1' / 'last.ckpt'}]"
    for attempt in range(2):  # timing-dependent: more than once
        marker = tmp_path / f"fit{attempt}.marker"
        fit = start(
            "train_member.py",
            [
                *member,
                "--trainer.max_epochs=3",
                f"--checkpoint.dirpath={tmp_path / f'cut{attempt}'}",
                f"--trainer.default_root_dir={tmp_path}",
            ],
            marker,
        )
        err = terminate_at_marker(fit, marker)
        assert fit.returncode == SIGTERM_EXIT_CODE, err[-3000:]
        notices = [line for line in err.splitlines() if "interrupted by SIGTERM" in line]
        assert notices == [
            f"error: fit interrupted by SIGTERM before it finished; exiting with "
            f"status {SIGTERM_EXIT_CODE} (run it again to resume or redo it)"
        ]

    results = tmp_path / "results"
    marker = tmp_path / "test.marker"
    test = start(
        "evaluate_cascade.py",
        [
            "test",
            f"--config={QUICKSTART / 'cascade.yaml'}",
            f"--data={data_cfg}",
            f"--model.members={members}",
            f"--results.dir={results}",
            f"--trainer.default_root_dir={tmp_path}",  # Lightning's config.yaml goes there
            "--trainer.logger=false",
            "--model.bootstrap=0",
            "--trainer.enable_progress_bar=false",
            "--calibration.target=risk@80",  # members of 2 batches reach no cov@5
        ],
        marker,
    )
    err = terminate_at_marker(test, marker)
    assert test.returncode == SIGTERM_EXIT_CODE, err[-3000:]
    assert "error: test interrupted by SIGTERM" in err
    assert not results.exists() or not any(results.iterdir())  # no results swapped in

    # a cascade test whose SIGTERM arrives once its results are complete, at the swap: they
    # are swapped in, and the run ends with status 0 and a note, not "run it again"
    marker = tmp_path / "swap.marker"
    env = {
        **os.environ,
        "WINDOW_CASCADES_FAULT": "swap:wait",
        "WINDOW_CASCADES_FAULT_MARKER": str(marker),
    }
    results = tmp_path / "results_swapped"
    swapped = subprocess.Popen(
        [
            sys.executable,
            str(ROOT / "scripts" / "evaluate_cascade.py"),
            "test",
            f"--config={QUICKSTART / 'cascade.yaml'}",
            f"--data={data_cfg}",
            f"--model.members={members}",
            f"--results.dir={results}",
            f"--trainer.default_root_dir={tmp_path}",
            "--trainer.logger=false",
            "--model.bootstrap=0",
            "--trainer.enable_progress_bar=false",
            "--calibration.target=risk@80",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 600
    while not marker.exists():
        assert swapped.poll() is None, swapped.communicate()[1][-3000:]
        assert time.monotonic() < deadline
        time.sleep(0.1)
    swapped.send_signal(signal.SIGTERM)
    time.sleep(0.5)
    marker.unlink()
    _, err = swapped.communicate(timeout=300)
    assert swapped.returncode == 0, err[-3000:]
    assert f"note: SIGTERM arrived after test had written {results} in full; kept" in err
    assert (results / "cascade.ckpt").is_file() and "interrupted" not in err

    # predict stops at the next batch too (Lightning's prediction loop never checks): the
    # member's cached logits and the cascade's predictions are not written
    images = tmp_path / "images"
    images.mkdir()
    from PIL import Image

    for k in range(40):
        Image.new("L", (8, 8), color=k * 5).save(images / f"{k:02d}.png")
    for name, script, args in (
        (
            "predict",
            "train_member.py",
            [
                "predict",
                f"--config={QUICKSTART / 'member.yaml'}",
                f"--data={data_cfg}",
                f"--ckpt_path={tmp_path / 'm0' / 'last.ckpt'}",
                f"--cache.logits_dir={tmp_path / 'logits'}",
                "--cache.member=m0",
                f"--trainer.default_root_dir={tmp_path}",
                "--trainer.enable_progress_bar=false",
            ],
        ),
        (
            "predict",
            "evaluate_cascade.py",
            [
                "predict",
                f"--ckpt_path={results / 'cascade.ckpt'}",
                f"--predictions.inputs={images}",
                f"--predictions.path={tmp_path / 'predictions.csv'}",
                "--predictions.batch_size=2",
                "--trainer.logger=false",
                "--trainer.enable_progress_bar=false",
            ],
        ),
    ):
        marker = tmp_path / f"{script}.predict.marker"
        proc = start(script, args, marker)
        err = terminate_at_marker(proc, marker)
        assert proc.returncode == SIGTERM_EXIT_CODE, err[-3000:]
        assert f"error: {name} interrupted by SIGTERM" in err
    assert not (tmp_path / "logits" / "m0" / "meta.json").exists()
    assert not (tmp_path / "predictions.csv").exists()
