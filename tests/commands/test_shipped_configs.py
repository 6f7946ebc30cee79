"""Shipped configs: the user's copy in ./configs/<name> wins over the shipped one (with a
notice); step configs are read relative to the pipeline file (the earlier current-folder rule
with a notice); init of a step config is refused in one line; ``init | head`` ends quietly."""

from __future__ import annotations

import os
import subprocess
import sys

import yaml

from window_cascades.commands.pipeline_config import load_pipeline_config
from window_cascades.commands.shipped_configs import (
    find_pipeline_config,
    init_main,
    step_config_path,
)


def test_the_users_copy_in_configs_wins_over_the_shipped_config(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    path, shipped = find_pipeline_config("quickstart")
    assert shipped and capsys.readouterr().err == ""
    assert init_main(["quickstart"]) == 0
    copy = tmp_path / "configs" / "quickstart" / "pipeline.yaml"
    data = yaml.safe_load(copy.read_text())
    data["seeds"] = [7, 8, 9]
    copy.write_text(yaml.safe_dump(data))
    capsys.readouterr()
    path, shipped = find_pipeline_config("quickstart")
    assert not shipped and path.resolve() == copy.resolve()
    assert "note: --config quickstart: using configs/quickstart/pipeline.yaml" in (
        capsys.readouterr().err
    )
    assert load_pipeline_config(path)["seeds"] == [7, 8, 9]


def test_step_configs_are_read_relative_to_the_pipeline_file(tmp_path, monkeypatch, capsys):
    exp = tmp_path / "exp"
    exp.mkdir()
    (exp / "member.yaml").write_text("trainer: {}\n")
    pipeline = exp / "pipeline.yaml"
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    assert step_config_path(pipeline, "member.yaml") == exp / "member.yaml"
    assert capsys.readouterr().err == ""
    # the earlier rule: found only relative to the current folder, used with a notice
    (elsewhere / "old.yaml").write_text("trainer: {}\n")
    assert step_config_path(pipeline, "old.yaml") == elsewhere.joinpath("old.yaml").relative_to(
        elsewhere
    )
    err = capsys.readouterr().err
    assert "read relative to the current folder (the earlier rule)" in err
    assert "../elsewhere/old.yaml" in err


def test_init_of_a_step_config_is_one_line(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    try:
        status = init_main(["quickstart/member"])
    except SystemExit as stop:  # argparse's error
        status = stop.code
    assert status == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert "no shipped experiment 'quickstart/member'" in err and "quickstart" in err
    assert not (tmp_path / "configs").exists()


def test_init_into_a_closed_pipe_ends_quietly(tmp_path):
    """``window-cascades init --force | head -1``: the reader has gone (here before the first
    line), so every write fails; the command ends with status 141 and no traceback."""
    read, write = os.pipe()
    os.close(read)
    try:
        init = subprocess.run(
            [sys.executable, "-m", "window_cascades", "init", "--force"],
            cwd=tmp_path,
            stdout=write,
            stderr=subprocess.PIPE,
            text=True,
            timeout=120,
        )
    finally:
        os.close(write)
    assert init.returncode == 141, init.stderr
    assert "Traceback" not in init.stderr and "BrokenPipeError" not in init.stderr
