"""A member's folder is claimed like a results folder (one run per member), and a run that
trained nothing leaves no recipe that refuses the corrected run."""

from __future__ import annotations

import subprocess
import sys

import pytest
import yaml

from tests.conftest import QUICKSTART, ROOT
from window_cascades.commands.pipeline_command import main as pipeline


def experiment(tmp_path, data_cfg=None) -> str:
    cfg = {
        "out": str(tmp_path / "exp"),
        "seeds": [0, 1],
        "member_config": str(QUICKSTART / "member.yaml"),
        "cascade_config": str(QUICKSTART / "cascade.yaml"),
    }
    if data_cfg is not None:
        cfg["member_args"] = [f"--data={data_cfg}", "--trainer.enable_progress_bar=false"]
    path = tmp_path / "exp.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return str(path)


def test_a_member_being_trained_elsewhere_is_refused_in_one_line(tmp_path, capsys):
    """`--step member --member 1` while another run (here: a process holding the claim, as a
    whole pipeline does while it trains m1) works on m1: refused before anything is built."""
    member = tmp_path / "exp" / "members" / "m1"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; sys.path.insert(0, sys.argv[2]);"
            "from window_cascades.artifacts.folder_claim import claim_output_folder;"
            "claim_output_folder(sys.argv[1], 'member m1'); print('claimed', flush=True);"
            "time.sleep(120)",
            str(member),
            str(ROOT),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "claimed"
        code = pipeline(["--config", experiment(tmp_path), "--step", "member", "--member", "1"])
        err = capsys.readouterr().err
        assert code == 2, err
        first = err.splitlines()[0]
        assert first.startswith(f"error: member m1 {member} is in use by another run (pid ")
        assert str(holder.pid) in first
        assert not (member / "checkpoints").exists()
    finally:
        holder.kill()
        holder.wait()


@pytest.mark.slow  # builds a member twice and trains it for one step
def test_a_refused_fit_leaves_no_recipe_that_refuses_the_corrected_run(
    tmp_path, small_data_config, capsys
):
    data_cfg = small_data_config(tmp_path / "data.yaml", train_limit=64)
    config = experiment(tmp_path, data_cfg)
    member = ["--config", config, "--step", "member", "--member", "0"]
    assert pipeline([*member, "--member-arg=--trainer.max_epochs=0"]) == 2
    assert "--trainer.max_epochs 0: a member fit needs" in capsys.readouterr().err
    assert (tmp_path / "exp" / "members" / "m0" / "recipe.json").is_file()
    # the corrected run: not "trained to another recipe"; it trains (one step) and records it
    assert pipeline([*member, "--member-arg=--trainer.max_steps=1"]) == 0, capsys.readouterr()
    out = capsys.readouterr().out
    assert "member m0: replacing the recipe of an earlier run that trained nothing" in out
    assert (tmp_path / "exp" / "members" / "m0" / "finished.json").is_file()
    assert not list((tmp_path / "exp" / "members").glob(".m0.lock"))  # released
