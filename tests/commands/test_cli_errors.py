"""A LightningCLI error is one line naming the file that set the key, with the closest key:
a trainer key typo in a config file (directly, and through the pipeline's member_args), a
Union that does not validate, Lightning's accelerator refusal and wandb's usage errors."""

from __future__ import annotations

from argparse import ArgumentError

import yaml

from tests.conftest import QUICKSTART
from window_cascades.commands.cli_entry import MEMBER, run_command
from window_cascades.commands.cli_errors import key_origin, one_line
from window_cascades.commands.pipeline_command import main as pipeline

HINT = "(add --traceback for the full traceback)"


def write(path, data) -> str:
    path.write_text(yaml.safe_dump(data))
    return str(path)


def test_key_origin_names_the_last_source_that_set_the_key(tmp_path):
    (tmp_path / "data.yaml").write_text("init_args: {root: here}\n")
    cfg = write(tmp_path / "member.yaml", {"trainer": {"max_epoch": 3}, "data": "data.yaml"})
    assert key_origin(["fit", "--config", cfg], "trainer.max_epoch") == cfg
    assert key_origin(["fit", f"--config={cfg}", "--trainer.max_epoch=2"], "trainer.max_epoch") == (
        "--trainer.max_epoch"
    )
    assert key_origin(["fit", "--config", cfg], "data") == str(tmp_path / "data.yaml")
    assert key_origin(["fit", "--config", cfg], "model.lr") is None


def test_an_unknown_trainer_key_is_one_line_with_the_file_and_the_closest_key(tmp_path):
    cfg = write(tmp_path / "member.yaml", {"trainer": {"max_epoch": 3}})
    err = ArgumentError(None, "Group 'trainer' does not accept option 'max_epoch'.\nusage: ...")
    line = one_line(err, ["fit", "--config", cfg])
    assert line == f"{cfg}: unknown key 'trainer.max_epoch' (did you mean 'trainer.max_epochs'?)"


def test_a_union_that_does_not_validate_gives_its_one_real_error(tmp_path):
    message = (
        "Does not validate against any of the Union subtypes\n"
        "Subtypes: [<class 'NoneType'>, <class 'window_cascades.datamodules.x.ImageData'>]\n"
        "Errors:\n"
        "  - Expected a <class 'NoneType'>\n"
        "  - IDX file not found: /data/digits/train-images-idx3-ubyte\n"
        "Given value type: <class 'jsonargparse.Namespace'>"
    )
    line = one_line(ArgumentError(None, message), [])
    assert "\n" not in line and line.endswith(
        "IDX file not found: /data/digits/train-images-idx3-ubyte"
    )


def test_lightning_and_wandb_errors_are_one_line():
    misconfiguration = type("MisconfigurationException", (Exception,), {})
    err = misconfiguration("No supported gpu backend found!\nmore lines")
    line = one_line(err, ["fit", "--trainer.accelerator=gpu"])
    assert "\n" not in line and line.startswith("--trainer.accelerator: No supported gpu backend")
    assert "--trainer.accelerator=auto" in line
    usage = type("UsageError", (Exception,), {"__module__": "wandb.errors"})
    line = one_line(usage("api_key not configured (no-tty).\ncall wandb.login(key=...)"))
    assert line.startswith("wandb: api_key not configured (no-tty).") and "wandb login" in line


def test_a_trainer_typo_in_a_config_file_ends_in_one_line_naming_it(tmp_path, capsys):
    cfg = write(tmp_path / "member.yaml", {"trainer": {"max_epoch": 3}})
    assert (
        run_command(MEMBER, ["fit", f"--config={QUICKSTART / 'member.yaml'}", "--config", cfg]) == 2
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and err[1] == HINT, err  # the error, and how to see the traceback
    assert cfg in err[0] and "max_epoch" in err[0] and "max_epochs" in err[0]
    assert "usage" not in err[0]


def test_a_trainer_typo_in_the_pipelines_member_args_names_the_pipeline_file(tmp_path, capsys):
    config = write(
        tmp_path / "exp.yaml",
        {
            "out": str(tmp_path / "out"),
            "seeds": [0, 1],
            "member_config": str(QUICKSTART / "member.yaml"),
            "cascade_config": str(QUICKSTART / "cascade.yaml"),
            "member_args": ["--trainer.max_epoch=1"],
        },
    )
    assert pipeline(["--config", config]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and err[1] == HINT, err  # the error, and how to see the traceback
    assert config in err[0] and "max_epoch" in err[0] and "max_epochs" in err[0]
    assert not (tmp_path / "out" / "members" / "m0" / "checkpoints").exists()
