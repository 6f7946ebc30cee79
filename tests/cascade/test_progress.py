"""Progress on the steps that take minutes: a bar on a terminal, nothing in logs or with
``--no-progress``."""

from __future__ import annotations

import fcntl
import io
import os
import pty
import struct
import subprocess
import sys
import termios

import pytest

from tests.conftest import ROOT
from tests.regression_case import ARGS, write_case
from window_cascades.cascade.progress import (
    NO_PROGRESS_ENV,
    disable_progress,
    progress,
    progress_enabled,
)


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_bars_only_on_a_terminal_and_not_when_switched_off(monkeypatch):
    monkeypatch.delenv(NO_PROGRESS_ENV, raising=False)
    assert progress_enabled(_Terminal()) and not progress_enabled(io.StringIO())
    items = [1, 2, 3]
    monkeypatch.setattr(sys, "stderr", io.StringIO())
    assert progress(items, "x") is items  # not a terminal: the items themselves
    terminal = _Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    assert list(progress(items, "counting", unit="thing")) == items
    assert "counting" in terminal.getvalue()
    disable_progress()  # --no-progress; monkeypatch restores the environment
    assert os.environ[NO_PROGRESS_ENV] == "1" and not progress_enabled(_Terminal())


def _evaluate(tmp_path, name: str, terminal: bool, *extra: str) -> tuple[str, str]:
    """Run evaluate_logits on the regression case; stderr on a pseudo-terminal or a pipe.
    Returns (stdout, stderr)."""
    logits = tmp_path / "logits"
    if not logits.exists():
        write_case(logits)
    env = {k: v for k, v in os.environ.items() if k != NO_PROGRESS_ENV}
    cmd = [
        sys.executable,
        str(ROOT / "scripts" / "evaluate_logits.py"),
        "--logits-dir",
        str(logits),
        *ARGS,
        "--bootstrap",
        "20",
        "--no-plots",
        "--out",
        str(tmp_path / name),
        *extra,
    ]
    if not terminal:
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stderr[-2000:]
        return proc.stdout, proc.stderr
    master, slave = pty.openpty()  # a terminal of 24 lines x 100 columns (a new one has 0 x 0)
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=slave)
    os.close(slave)
    chunks = []
    while True:
        try:
            chunk = os.read(master, 4096)
        except OSError:  # the terminal closed: the process has exited
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(master)
    stdout = proc.stdout.read().decode()
    assert proc.wait(timeout=300) == 0
    return stdout, b"".join(chunks).decode(errors="replace")


@pytest.mark.slow
def test_the_offline_evaluator_shows_progress_on_a_terminal_only(tmp_path):
    _, on_terminal = _evaluate(tmp_path, "tty", True)
    assert "evaluating policies [msp]" in on_terminal and "\rbootstrap" in on_terminal
    _, switched_off = _evaluate(tmp_path, "off", True, "--no-progress")
    assert "evaluating" not in switched_off and "\r" not in switched_off
    stdout, in_a_log = _evaluate(tmp_path, "log", False)
    assert "evaluating" not in stdout + in_a_log and "\r" not in stdout + in_a_log
    # the bars change nothing in the results
    tty, log = (tmp_path / "tty" / "metrics.csv"), (tmp_path / "log" / "metrics.csv")
    assert tty.read_text() == log.read_text()


def test_lightning_bars_of_training_and_caching_follow_the_same_rule(monkeypatch):
    """A member's fit and its logits caching draw Lightning's bar only on a terminal (a SLURM
    log or a benchmark's log file would fill with redrawn bars) and never with --no-progress."""
    from window_cascades.commands.pipeline_steps import cache_logits_args, fit_member_args

    def bar(args: list[str]) -> str:
        return [a for a in args if a.startswith("--trainer.enable_progress_bar=")][-1]

    monkeypatch.delenv(NO_PROGRESS_ENV, raising=False)
    for terminal, expected in ((False, "false"), (True, "true")):
        monkeypatch.setattr(sys, "stdout", _Terminal() if terminal else io.StringIO())
        assert bar(fit_member_args("m.yaml", 0, "out/m0")).endswith(expected)
        assert bar(cache_logits_args("m.yaml", "c.ckpt", "out/logits", "m0")).endswith(expected)
    disable_progress()
    assert bar(fit_member_args("m.yaml", 0, "out/m0")).endswith("false")
    # a user's own override comes last and wins
    args = fit_member_args("m.yaml", 0, "m0", overrides=["--trainer.enable_progress_bar=true"])
    assert bar(args).endswith("true")
