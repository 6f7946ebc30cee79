"""``window-cascades``: one command whose subcommands are the user commands of ``scripts/``."""

from __future__ import annotations

import subprocess
import sys

import pytest

from commands.window_cascades import SUBCOMMANDS, main
from tests.conftest import ROOT
from tests.regression_case import ARGS, write_case


def test_help_lists_every_subcommand_and_mistakes_are_one_line(capsys):
    assert main(["--help"]) == 0
    shown = capsys.readouterr().out
    assert all(f"  {name} " in shown for name in SUBCOMMANDS)
    assert main([]) == 2  # no subcommand: the same list, and a usage error
    assert main(["evaluate_logits"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [
        "error: unknown subcommand 'evaluate_logits' (did you mean 'evaluate-logits'?); "
        "expected one of pipeline, member, cascade, evaluate-logits, readme-table"
    ]


@pytest.mark.slow  # six processes
def test_each_subcommand_runs_its_command_with_its_options(tmp_path):
    """Run as a user does, in a process of its own from another folder: the offline evaluator
    through the command writes what ``scripts/evaluate_logits.py`` writes; every other
    subcommand answers --help with its own program name."""
    logits = write_case(tmp_path / "logits")
    command = [sys.executable, "-m", "commands.window_cascades"]
    env = {"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"}
    done = subprocess.run(
        [*command, "evaluate-logits", "--logits-dir", str(logits), *ARGS, "--no-plots",
         "--gain-shares", "--out", str(tmp_path / "out")],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    script = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "evaluate_logits.py"), "--logits-dir",
         str(logits), *ARGS, "--no-plots", "--gain-shares", "--out", str(tmp_path / "script")],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert script.returncode == 0, script.stderr[-2000:]
    for name in ("metrics.csv", "summary.json"):
        assert (tmp_path / "out" / name).read_text() == (tmp_path / "script" / name).read_text()
    for name in ("pipeline", "member", "cascade", "readme-table"):
        shown = subprocess.run(
            [*command, name, "--help"], cwd=tmp_path, env=env, capture_output=True, text=True,
            timeout=300,
        )  # fmt: skip
        assert shown.returncode == 0, (name, shown.stderr[-2000:])
        assert f"window-cascades {name}" in shown.stdout, (name, shown.stdout[:500])
