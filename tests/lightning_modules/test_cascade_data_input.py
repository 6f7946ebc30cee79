"""``predict --predictions.inputs``: a calibrated cascade applied to a folder, a file list or one
image with nothing but its checkpoint (no data config, no ``--model.members``): one row per
file with its path; unreadable files listed and the others predicted, or (``strict``) the run
refused with nothing written; one-line errors naming the option and the path. Untrained
members and a hand-written fitted cascade keep it to seconds."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from tests.end_to_end.test_hostile_files import fitted_dict
from window_cascades.commands import window_cascades
from window_cascades.commands.cli_entry import CASCADE, run_command
from window_cascades.datamodules.predict_files import input_files
from window_cascades.lightning_modules.cascade_module import CascadeModule
from window_cascades.lightning_modules.member import MemberModule


def write_cascade(folder) -> str:
    """Two untrained members (grey, 10 classes) and a calibrated cascade of them whose data
    input says 32 px grey images, normalised 0.5 / 0.5, whole (crop 1)."""
    members = []
    for seed in (0, 1):
        torch.manual_seed(seed)
        member = MemberModule(num_classes=10)
        members.append(str(folder / f"m{seed}.ckpt"))
        torch.save(
            {"state_dict": member.state_dict(), "hyper_parameters": dict(member.hparams)},
            members[-1],
        )
    cascade = CascadeModule(members=members)
    cascade.set_data_input(((0.5,), (0.5,)), 1.0)
    cascade.data_image_size, cascade.data_interpolation = 32, "bilinear"
    ckpt = {
        "state_dict": cascade.state_dict(),
        "hyper_parameters": dict(cascade.hparams),
        "pytorch-lightning_version": "2.6.0",
        "fitted_cascade": fitted_dict(),
    }
    cascade.on_save_checkpoint(ckpt)
    torch.save(ckpt, folder / "cascade.ckpt")
    return str(folder / "cascade.ckpt")


def write_images(folder, names: list[str]) -> list[str]:
    rng = np.random.default_rng(0)
    paths = []
    for name in names:
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        size = (40, 28) if name.endswith(".jpg") else (36, 36)
        Image.fromarray(rng.integers(0, 255, (*size, 3), dtype=np.uint8)).save(path)
        paths.append(str(path))
    return paths


def predict(*args: str) -> int:
    return run_command(CASCADE, ["predict", *args])


def rows(path) -> list[dict]:
    with open(path) as f:
        return list(csv.DictReader(f))


@pytest.fixture
def cascade(tmp_path) -> str:
    return write_cascade(tmp_path)


def test_a_folder_is_predicted_with_only_the_cascade_checkpoint(tmp_path, cascade, capsys):
    files = write_images(tmp_path / "new", ["b.png", "a.jpg", "sub/c.png"])
    (tmp_path / "new" / "notes.txt").write_text("not an image\n")
    out = tmp_path / "out" / "predictions.csv"
    args = [
        f"--ckpt_path={cascade}",
        f"--predictions.inputs={tmp_path / 'new'}",
        f"--predictions.path={out}",
    ]
    assert predict(*args) == 0
    found = rows(out)
    assert [r["path"] for r in found] == sorted(files)  # the folder's images, sorted, only
    assert [r["index"] for r in found] == ["0", "1", "2"]
    assert {r["dataset"] for r in found} == {"inputs"} and {r["status"] for r in found} == {"ok"}
    assert all(0 <= int(r["prediction"]) < 10 and r["exit_stage"] in ("1", "2") for r in found)
    assert (out.parent / "lightning_logs").is_dir()  # the run's config next to the predictions
    # the same through window-cascades, and as one image
    again = tmp_path / "again.csv"
    assert (
        window_cascades.main(["cascade", "predict", *args[:2], f"--predictions.path={again}"]) == 0
    )
    assert rows(again) == found
    one = tmp_path / "one.csv"
    assert predict(args[0], f"--predictions.inputs={files[0]}", f"--predictions.path={one}") == 0
    assert [r["path"] for r in rows(one)] == [files[0]]
    assert (
        rows(one)[0]["prediction"] == next(r for r in found if r["path"] == files[0])["prediction"]
    )


def test_a_file_list_unreadable_files_and_strict(tmp_path, cascade, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)  # list entries are relative to the current folder
    write_images(tmp_path, ["imgs/x.png", "imgs/y.png", "imgs/z.png"])
    (tmp_path / "imgs" / "y.png").write_bytes((tmp_path / "imgs" / "y.png").read_bytes()[:50])
    listed = ["imgs/z.png", "imgs/y.png", "# a comment", "", "imgs/x.png"]
    (tmp_path / "files.txt").write_text("\n".join(listed) + "\n")
    args = [f"--ckpt_path={cascade}", "--predictions.inputs=files.txt"]
    capsys.readouterr()
    assert predict(*args, "--predictions.path=p.csv") == 0
    found = rows(tmp_path / "p.csv")
    assert [r["path"] for r in found] == ["imgs/z.png", "imgs/y.png", "imgs/x.png"]  # list order
    assert [r["status"] for r in found] == ["ok", "unreadable", "ok"]
    assert found[1]["reason"].startswith("OSError") and found[1]["prediction"] == ""
    summary = [line for line in capsys.readouterr().out.splitlines() if "files unreadable" in line]
    assert len(summary) == 1 and "1 of 3 files" in summary[0] and "imgs/y.png" in summary[0]
    # strict: refused in one line naming the file, nothing written
    assert predict(*args, "--predictions.path=s.csv", "--predictions.strict=true") == 2
    errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "unreadable image imgs/y.png" in errors[0]
    assert not (tmp_path / "s.csv").exists()


def test_hostile_files_in_a_folder_are_rows_or_counted_never_the_run(
    tmp_path, cascade, capsys, monkeypatch
):
    """An EPS named .png (never handed to Ghostscript), an image over the pixel limit and a
    truncated one are one unreadable row each; a text file and a link to a file outside the
    folder are skipped and counted in the summary line; --predictions.strict refuses the run at
    the first of them in one line."""
    from tests.datamodules.test_image_decoding import EPS
    from window_cascades.datamodules.image_decoding import MAX_PIXELS_ENV

    monkeypatch.setenv(MAX_PIXELS_ENV, str(40 * 40))
    folder = tmp_path / "drop"
    write_images(folder, ["a_good.png", "c_truncated.png"])
    (folder / "c_truncated.png").write_bytes((folder / "c_truncated.png").read_bytes()[:60])
    Image.new("RGB", (60, 60)).save(folder / "b_big.png")
    (folder / "d_eps.png").write_bytes(EPS)
    (folder / "notes.txt").write_text("not an image\n")
    outside = write_images(tmp_path / "private", ["secret.png"])[0]
    (folder / "e_link.png").symlink_to(outside)
    out = tmp_path / "p.csv"
    args = [f"--ckpt_path={cascade}", f"--predictions.inputs={folder}"]
    capsys.readouterr()
    assert predict(*args, f"--predictions.path={out}") == 0
    found = {Path(r["path"]).name: r for r in rows(out)}
    assert sorted(found) == ["a_good.png", "b_big.png", "c_truncated.png", "d_eps.png"]
    assert found["a_good.png"]["status"] == "ok" and found["a_good.png"]["decision"]
    reasons = {name: r["reason"] for name, r in found.items() if r["status"] == "unreadable"}
    assert reasons["b_big.png"].startswith(f"too large: image {folder / 'b_big.png'} is 60 x 60")
    assert reasons["c_truncated.png"].startswith("OSError")
    assert reasons["d_eps.png"].startswith("UnidentifiedImageError: cannot identify image file")
    assert all(found[name]["prediction"] == "" for name in reasons)
    out_lines = capsys.readouterr().out.splitlines()
    wrote = [line.split("\r")[-1] for line in out_lines if "PredictionsWriter: wrote" in line]
    assert wrote == [
        f"CascadePredictionsWriter: wrote {out} (4 rows; skipped 1 file that is not an image "
        f"(.txt: 1) and 1 link to files outside {folder})"
    ]
    assert any("3 of 4 files unreadable" in line for line in out_lines)
    assert (
        predict(*args, f"--predictions.path={tmp_path / 's.csv'}", "--predictions.strict=true") == 2
    )
    errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "b_big.png is 60 x 60" in errors[0], errors
    assert not (tmp_path / "s.csv").exists()


def test_bad_inputs_are_refused_in_one_line_naming_the_option(tmp_path, cascade, capsys):
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "readme.md").write_text("no images here\n")
    write_images(tmp_path, ["ok.png"])
    (tmp_path / "list.txt").write_text(f"{tmp_path / 'ok.png'}\n{tmp_path / 'gone.png'}\n")
    (tmp_path / "blank.txt").write_text("# nothing\n\n")
    cases = {
        str(tmp_path / "empty"): "no images",
        str(tmp_path / "nowhere"): "not found; expected a folder of images",
        str(tmp_path / "list.txt"): "1 listed file(s) not found (line 2: ",
        str(tmp_path / "blank.txt"): "lists no image paths",
    }
    out = tmp_path / "p.csv"
    for inputs, expected in cases.items():
        code = predict(
            f"--ckpt_path={cascade}", f"--predictions.inputs={inputs}", f"--predictions.path={out}"
        )
        errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error")]
        assert code == 2 and len(errors) == 1, (inputs, errors)
        assert f"--predictions.inputs {inputs}: " in errors[0] and expected in errors[0], errors
        assert not out.exists()
    # the output inside the input folder; no data at all; datasets with inputs
    folder = tmp_path / "imgs"
    write_images(folder, ["a.png"])
    for extra, expected in [
        (
            [f"--predictions.inputs={folder}", f"--predictions.path={folder / 'p.csv'}"],
            "is inside the input folder --predictions.inputs",
        ),
        ([f"--predictions.path={out}"], "predict needs the new data: --predictions.inputs"),
        (
            [f"--predictions.inputs={folder}", f"--predictions.path={out}", "--ckpt_path="],
            "give --ckpt_path, the calibrated cascade's checkpoint",
        ),
        (
            [
                f"--predictions.inputs={folder}",
                f"--predictions.path={out}",
                "--predictions.datasets=[a]",
            ],
            "give one of the two",
        ),
    ]:
        assert predict(f"--ckpt_path={cascade}", *extra) == 2
        errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error")]
        assert len(errors) == 1 and expected in errors[0], errors
    assert not out.exists() and not (folder / "p.csv").exists()


def test_moved_members_are_named_and_can_be_given(tmp_path, cascade, capsys):
    write_images(tmp_path, ["new/a.png"])
    moved = tmp_path / "moved"
    moved.mkdir()
    for name in ("m0.ckpt", "m1.ckpt"):
        shutil.move(tmp_path / name, moved / name)
    args = [
        f"--ckpt_path={cascade}",
        f"--predictions.inputs={tmp_path / 'new'}",
        f"--predictions.path={tmp_path / 'p.csv'}",
    ]
    assert predict(*args) == 2
    err = capsys.readouterr().err
    assert f"its member {tmp_path / 'm0.ckpt'} (and 1 more) is not found" in err
    members = f"--model.members=[{moved / 'm0.ckpt'}, {moved / 'm1.ckpt'}]"
    assert predict(*args, members) == 0
    assert len(rows(tmp_path / "p.csv")) == 1


def test_input_files_lists_a_folder_recursively_and_sorted(tmp_path):
    write_images(tmp_path, ["d/2.png", "d/10.PNG", "d/a/1.webp"])
    assert [p.relative_to(tmp_path / "d").as_posix() for p in input_files(tmp_path / "d")] == [
        "10.PNG",
        "2.png",
        "a/1.webp",
    ]


def test_the_preparation_comes_from_the_checkpoint_else_the_members():
    from window_cascades.lightning_modules.cascade_data_input import prediction_input
    from window_cascades.lightning_modules.member_input import MemberInput

    grey = ((0.5,), (0.5,))
    record = {
        "normalization": {"mean": [0.2], "std": [0.3]},
        "crop_pct": 0.9,
        "input_size": 48,
        "interpolation": "bicubic",
    }
    members = [
        MemberInput(size=32, data_normalization=grey, data_crop_pct=1.0),
        MemberInput(size=40),
    ]
    assert prediction_input(record, members, "c.ckpt") == {
        "input_size": 48,
        "crop_pct": 0.9,
        "interpolation": "bicubic",
        "mean": [0.2],
        "std": [0.3],
    }
    # a checkpoint written before the size was recorded: the members' largest resolution
    older = {"normalization": record["normalization"], "crop_pct": None}
    assert prediction_input(older, members, "c.ckpt") == {
        "input_size": 40,
        "crop_pct": 1.0,
        "interpolation": "bilinear",
        "mean": [0.2],
        "std": [0.3],
    }
    with pytest.raises(ValueError, match=r"--ckpt_path c.ckpt: neither .* image size and "):
        prediction_input(None, [MemberInput()], "c.ckpt")


def test_a_malformed_recorded_size_or_resize_mode_is_refused(tmp_path):
    from window_cascades.cascade.field_checks import FieldError
    from window_cascades.lightning_modules.cascade_checkpoint import read_cascade_checkpoint

    good = write_cascade(tmp_path)
    ckpt = torch.load(good, weights_only=True)
    assert ckpt["data_input"]["input_size"] == 32
    for field, value in (("input_size", 0), ("input_size", 3.5), ("interpolation", "nearest")):
        bad = tmp_path / f"bad_{field}.ckpt"
        torch.save({**ckpt, "data_input": {**ckpt["data_input"], field: value}}, bad)
        with pytest.raises(FieldError, match=rf"bad_{field}.ckpt: field 'data_input.{field}'"):
            read_cascade_checkpoint(bad)


def test_inputs_replace_the_data_config_of_a_predict_config(tmp_path, cascade, capsys):
    """``--config predict.yaml`` names the quick-start data config: with
    ``--predictions.inputs`` only the files are predicted, and one line says so."""
    from tests.conftest import QUICKSTART

    files = write_images(tmp_path / "new", ["a.png", "b.png"])
    out = tmp_path / "p.csv"
    assert (
        predict(
            f"--config={QUICKSTART / 'predict.yaml'}",
            f"--ckpt_path={cascade}",
            f"--predictions.inputs={tmp_path / 'new'}",
            f"--predictions.path={out}",
            f"--trainer.default_root_dir={tmp_path / 'run'}",
        )
        == 0
    )
    assert [(r["dataset"], r["path"]) for r in rows(out)] == [("inputs", f) for f in files]
    assert "the data config (--data) is not used" in capsys.readouterr().out
    assert (tmp_path / "run" / "config.yaml").is_file()
