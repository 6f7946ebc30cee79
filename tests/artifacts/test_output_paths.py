"""Every output path is checked before any work: the wrong kind, read-only, under a file,
inside or holding an input; the message names the option and the path."""

from __future__ import annotations

import os

import pytest
import torch

from tests.conftest import QUICKSTART
from window_cascades.artifacts.output_paths import (
    OutputPathError,
    check_output_dir,
    check_output_file,
    data_input_paths,
)
from window_cascades.commands.cli_entry import CASCADE, MEMBER, run_command
from window_cascades.commands.offline import main


@pytest.fixture
def read_only(tmp_path):
    """A read-only folder holding one file (write bits restored afterwards for cleanup)."""
    folder = tmp_path / "ro"
    folder.mkdir()
    (folder / "metrics.csv").write_text("x\n")
    os.chmod(folder, 0o555)
    yield folder
    os.chmod(folder, 0o755)


def test_output_files_and_folders_of_the_wrong_kind_or_read_only(tmp_path, read_only):
    (tmp_path / "a_dir").mkdir()
    (tmp_path / "a_file").write_text("x")
    cases = [
        (check_output_file, tmp_path / "a_dir", r"--o .*a_dir is a folder; expected a file"),
        (check_output_dir, tmp_path / "a_file", r"--o .*a_file is a file; expected a folder"),
        (
            check_output_file,
            tmp_path / "a_file" / "p.csv",
            r"--o .*p\.csv: .*a_file is a file, so the file cannot be created under it",
        ),
        (
            check_output_dir,
            tmp_path / "a_file" / "x" / "out",
            r"--o .*out: .*a_file is a file, so the folder cannot be created",
        ),
        (check_output_dir, read_only, r"--o .*ro is a read-only folder; choose another path"),
        (
            check_output_file,
            read_only / "p.csv",
            r"--o .*p\.csv: no permission to write in its folder",
        ),
        (
            check_output_dir,
            read_only / "new" / "out",
            r"--o .*out: no permission to write in .*ro \(to create its folder\)",
        ),
    ]
    for check, path, message in cases:
        with pytest.raises(OutputPathError, match=message):
            check(path, "--o")
    os.chmod(tmp_path / "a_file", 0o444)
    with pytest.raises(OutputPathError, match=r"a_file is read-only"):
        check_output_file(tmp_path / "a_file", "--o")
    # what is fine: new paths (parents created later), an existing writable file or folder
    check_output_file(tmp_path / "new" / "deeper" / "p.csv", "--o")
    check_output_dir(tmp_path / "a_dir", "--o")
    check_output_dir(tmp_path / "fresh", "--o")


def test_outputs_inside_or_holding_an_input_are_refused(tmp_path):
    images = tmp_path / "images"
    (images / "cat").mkdir(parents=True)
    inputs = [("--data.datasets[0].path", str(images))]
    with pytest.raises(
        OutputPathError, match=r"--o .*images/preds\.csv is inside the input folder"
    ):
        check_output_file(images / "preds.csv", "--o", inputs)
    with pytest.raises(OutputPathError, match=r"--o .*images/cat/run is inside the input folder"):
        check_output_dir(images / "cat" / "run", "--o", inputs)
    with pytest.raises(OutputPathError, match=r"--o .* holds the input --data.datasets\[0\]\.path"):
        check_output_dir(tmp_path, "--o", inputs)
    ckpt = tmp_path / "cascade.ckpt"
    ckpt.write_bytes(b"x")
    with pytest.raises(OutputPathError, match=r"is the input --ckpt_path"):
        check_output_file(ckpt, "--o", [("--ckpt_path", str(ckpt))])
    check_output_file(tmp_path / "preds.csv", "--o", inputs)
    data = {
        "train": {"path": "/d/train", "format": "image_folder"},
        "batch_size": 4,
        "datasets": [{"name": "a", "source": "heldout"}, {"name": "b", "path": "/d/b"}],
    }
    assert data_input_paths(data) == [
        ("--data.train.path", "/d/train"),
        ("--data.datasets[1].path", "/d/b"),
    ]


def test_offline_out_read_only_or_holding_the_logits_is_one_line(tmp_path, read_only, capsys):
    base = ["--members", "m0", "m1", "--heldout", "h", "--id", "t", "--quiet"]
    logits = tmp_path / "run" / "logits"
    logits.mkdir(parents=True)
    for out, logits_dir, message in [
        (read_only, tmp_path, rf"error: --out {read_only} is a read-only folder"),
        (tmp_path / "run", logits, r"error: --out .*run holds the input --logits-dir"),
    ]:
        assert main([*base, "--logits-dir", str(logits_dir), "--out", str(out)]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "Errno" not in err and ".old-" not in err
        assert __import__("re").match(message, err), err
    assert sorted(p.name for p in read_only.iterdir()) == ["metrics.csv"]


def test_cascade_and_member_commands_check_their_outputs_before_any_work(
    tmp_path, read_only, capsys
):
    members = "--model.members=[/nowhere/m0.ckpt, /nowhere/m1.ckpt]"
    (tmp_path / "preds").mkdir()
    (tmp_path / "logits").write_text("x")
    hparams = {"model_name": "resnet10t", "num_classes": 10, "in_chans": 1}  # a valid member record
    torch.save({"state_dict": {}, "hyper_parameters": hparams}, tmp_path / "m0.ckpt")
    runs = [
        (
            CASCADE,
            [
                "predict",
                f"--config={QUICKSTART / 'predict.yaml'}",
                members,
                f"--predictions.path={tmp_path / 'preds'}",
            ],
            rf"--predictions.path {tmp_path / 'preds'} is a folder; expected a file path",
        ),
        (
            CASCADE,
            [
                "test",
                f"--config={QUICKSTART / 'cascade.yaml'}",
                members,
                f"--results.dir={read_only}",
            ],
            rf"--results.dir {read_only} is a read-only folder",
        ),
        (
            MEMBER,
            [
                "predict",
                f"--config={QUICKSTART / 'member.yaml'}",
                f"--ckpt_path={tmp_path / 'm0.ckpt'}",
                f"--cache.logits_dir={tmp_path / 'logits'}",
            ],
            rf"--cache.logits_dir {tmp_path / 'logits'} is a file; expected a folder",
        ),
    ]
    for spec, args, message in runs:
        assert run_command(spec, args) == 2
        err = capsys.readouterr().err
        # Lightning logs the seed it sets (in-process, its INFO line reaches stderr); that is
        # all that may come before the refusal
        lines = [line for line in err.splitlines() if not line.startswith("INFO: Seed set to")]
        assert lines[0].startswith(f"error: {message}"), err
        assert "Traceback" not in err and len(lines) == 2  # the line and the --traceback hint
