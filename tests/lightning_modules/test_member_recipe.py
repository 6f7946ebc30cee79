"""Members carry their recipe: a finished member is reused only for the same recipe, a changed
one is refused with the differing keys named (or retrained with overwrite), and a member that
never trained leaves no "finished" record."""

from __future__ import annotations

import json

import pytest

from tests.conftest import QUICKSTART
from window_cascades.commands.member_training import member_checkpoint, member_dir, train_member
from window_cascades.lightning_modules.member_recipe import differing_keys, recipe_sha256


def pipeline_cfg(tmp_path, data, *member_args: str) -> dict:
    return {
        "out": str(tmp_path / "out"),
        "seeds": [0],
        "logger": "csv",
        "member_config": str(QUICKSTART / "member.yaml"),
        "member_args": [
            f"--data={data}",
            "--trainer.enable_progress_bar=false",
            "--trainer.enable_model_summary=false",
            *member_args,
        ],
    }


@pytest.mark.slow  # trains members: the fast loop leaves it to the full suite
def test_a_finished_member_is_reused_only_for_its_recipe(tmp_path, small_data_config, capsys):
    data = small_data_config(tmp_path / "data.yaml", train_limit=128)
    cfg = pipeline_cfg(tmp_path, data, "--trainer.max_epochs=1")
    last = train_member(cfg, 0)
    finished = json.loads((member_dir(cfg, 0) / "finished.json").read_text())
    recipe = finished["recipe"]
    assert finished["recipe_sha256"] == recipe_sha256(recipe) and finished["global_step"] > 0
    assert recipe["seed_everything"] == 0 and recipe["trainer"]["max_epochs"] == 1
    assert recipe["model"]["lr"] == 0.05 and recipe["data"]["init_args"]["train_limit"] == 128
    stamp = last.stat().st_mtime_ns

    # the same recipe (where and how visibly it runs does not count): skipped
    quiet = pipeline_cfg(
        tmp_path,
        data,
        "--trainer.max_epochs=1",
        "--data.init_args.num_workers=0",
        "--trainer.log_every_n_steps=1",
    )
    capsys.readouterr()
    assert train_member(quiet, 0) == last and last.stat().st_mtime_ns == stamp
    assert "already trained" in capsys.readouterr().out

    # another recipe: refused with the keys named, nothing touched
    changed = pipeline_cfg(tmp_path, data, "--trainer.max_epochs=2", "--model.lr=0.01")
    with pytest.raises(
        ValueError,
        match=r"member m0 .* another recipe \(model\.lr, "
        r"trainer\.max_epochs differ\); pass --overwrite to retrain it",
    ):
        train_member(changed, 0)
    assert last.stat().st_mtime_ns == stamp
    with pytest.raises(ValueError, match=r"seed_everything differ"):
        train_member({**quiet, "seeds": [5]}, 0)
    # with overwrite: retrained to the new recipe
    train_member(changed, 0, overwrite=True)
    finished = json.loads((member_dir(cfg, 0) / "finished.json").read_text())
    assert (
        finished["recipe"]["trainer"]["max_epochs"] == 2
        and finished["recipe"]["model"]["lr"] == 0.01
    )
    assert finished["epochs"] == 2 and last.stat().st_mtime_ns != stamp


def test_a_member_of_zero_epochs_leaves_no_finished_record(tmp_path, small_data_config):
    data = small_data_config(tmp_path / "data.yaml", train_limit=64)
    cfg = pipeline_cfg(tmp_path, data, "--trainer.max_epochs=0")
    with pytest.raises(ValueError, match=r"--trainer\.max_epochs 0: a member fit needs"):
        train_member(cfg, 0)
    assert not (member_dir(cfg, 0) / "finished.json").exists()
    assert not member_checkpoint(cfg, 0).exists()


def test_differing_keys_are_dotted_and_include_keys_of_one_side():
    a = {"model": {"lr": 0.05, "name": "r"}, "trainer": {"max_epochs": 1}}
    b = {"model": {"lr": 0.01, "name": "r"}, "trainer": {"max_epochs": 1, "precision": 16}}
    assert differing_keys(a, b) == ["model.lr", "trainer.precision"]
    assert differing_keys(a, a) == []
