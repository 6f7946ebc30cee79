"""Apply a calibrated cascade of members that expect different inputs to a folder of new,
unlabelled images: one row per file, with its path; unreadable files listed with their reason
and the others predicted, or (``--predictions.strict``) the run refused with nothing written."""

from __future__ import annotations

import csv
import json
import math

import numpy as np
import pytest

from tests.conftest import QUICKSTART
from tests.datamodules.test_file_images import folder_data_config, picture, write_folder
from window_cascades.commands.cli import CascadeCLI, MemberCLI
from window_cascades.commands.pipeline_steps import evaluate_cascade


def fit(data: str, out, name: str, seed: int, *extra: str) -> str:
    MemberCLI(
        args=[
            "fit",
            f"--config={QUICKSTART / 'member.yaml'}",
            f"--data={data}",
            f"--seed_everything={seed}",
            "--trainer.max_epochs=2",
            "--trainer.enable_progress_bar=false",
            "--trainer.logger=false",
            f"--trainer.default_root_dir={out / name}",
            f"--checkpoint.dirpath={out / name / 'ckpt'}",
            *extra,
        ]
    )
    return str(out / name / "ckpt" / "last.ckpt")


@pytest.mark.slow  # trains two members
def test_predict_on_an_unlabelled_folder_with_members_of_different_inputs(
    tmp_path, recwarn, capsys
):
    write_folder(tmp_path / "train", 3, 40, 0)
    write_folder(tmp_path / "test", 3, 10, 1)
    incoming = tmp_path / "incoming"
    incoming.mkdir()
    rng = np.random.default_rng(5)
    for k in range(12):
        picture(rng, k % 3).save(incoming / f"shot_{k:02d}.png")
    datasets = [
        {"name": "held", "role": "heldout", "source": "heldout"},
        {"name": "test", "role": "id", "source": "test"},
        {
            "name": "incoming",
            "role": "ood",
            "source": "path",
            "format": "image_folder",
            "path": str(incoming),
        },
    ]
    calibratable = {"datasets": datasets, "heldout_size": 60, "batch_size": 16}
    data_cfg = folder_data_config(tmp_path, "data", **calibratable)
    members = [
        fit(data_cfg, tmp_path, "m0", 0),
        fit(
            data_cfg,
            tmp_path,
            "m1",
            1,
            "--model.resolution=40",
            "--model.normalization={mean: [0.5], std: [0.5]}",
        ),
    ]
    other_cfg = folder_data_config(
        tmp_path, "other", **calibratable, mean=[0.2, 0.3, 0.4], std=[0.25, 0.3, 0.35]
    )
    summaries = []
    for cfg, name in ((data_cfg, "results"), (other_cfg, "other")):
        evaluate_cascade(
            QUICKSTART / "cascade.yaml",
            members,
            tmp_path / name,
            cfg,
            overrides=[
                "--trainer.enable_progress_bar=false",
                "--model.bootstrap=0",
                "--calibration.target=risk@80",
                "--model.coverages=[0.8]",
            ],
        )
        summaries.append(json.loads((tmp_path / name / "summary.json").read_text()))
    # calibration and evaluation see the same member inputs however the data is normalised
    for dataset, policies in summaries[0]["metrics"].items():
        for policy, values in policies.items():
            other = summaries[1]["metrics"][dataset][policy]
            for key, value in values.items():
                if isinstance(value, float) and math.isfinite(value):
                    assert other[key] == pytest.approx(value, abs=1e-4), (dataset, policy, key)
    results = tmp_path / "results"

    def predict(out, *extra: str) -> None:
        CascadeCLI(
            args=[
                "predict",
                f"--config={QUICKSTART / 'predict.yaml'}",
                f"--data={data_cfg}",
                f"--model.members=[{', '.join(members)}]",
                f"--ckpt_path={results / 'cascade.ckpt'}",
                f"--trainer.default_root_dir={tmp_path / 'predict'}",
                f"--predictions.path={out}",
                *extra,
            ]
        )

    recwarn.clear()
    predict(tmp_path / "predictions.csv")
    assert not [w for w in recwarn if "dirpath has changed" in str(w.message)]
    with open(tmp_path / "predictions.csv") as f:
        rows = [r for r in csv.DictReader(f) if r["dataset"] == "incoming"]
    assert [r["path"] for r in rows] == [str(p) for p in sorted(incoming.iterdir())]
    assert {r["exit_stage"] for r in rows} <= {"1", "2"}
    assert all(r["accepted"] in ("0", "1") and r["ood"] in ("0", "1") for r in rows)
    flags = {"accept": ("1", "0"), "reject": ("0", "0"), "ood": ("0", "1")}
    assert all(flags[r["decision"]] == (r["accepted"], r["ood"]) for r in rows)
    assert all(0 <= int(r["prediction"]) < 3 for r in rows)

    assert {r["status"] for r in rows} == {"ok"}

    # the same folder with nothing but the cascade checkpoint (no data config, no members): it
    # records the calibration data's size, crop, resize mode and normalisation, so the same
    # decisions
    CascadeCLI(
        args=[
            "predict",
            f"--ckpt_path={results / 'cascade.ckpt'}",
            f"--predictions.inputs={incoming}",
            f"--predictions.path={tmp_path / 'in.csv'}",
            f"--trainer.default_root_dir={tmp_path / 'predict'}",
            "--trainer.enable_progress_bar=false",
        ]
    )
    with open(tmp_path / "in.csv") as f:
        alone = list(csv.DictReader(f))
    assert [r["path"] for r in alone] == [r["path"] for r in rows]
    for a, r in zip(alone, rows, strict=True):
        assert (a["prediction"], a["exit_stage"], a["decision"]) == (
            r["prediction"],
            r["exit_stage"],
            r["decision"],
        )
        assert float(a["confidence"]) == pytest.approx(float(r["confidence"]), abs=1e-5)

    # unreadable files: listed with their reason, the others predicted as before, one line
    for name in ("shot_07.png", "shot_10.png"):
        broken = incoming / name
        broken.write_bytes(broken.read_bytes()[:60])
    capsys.readouterr()
    predict(tmp_path / "again.csv")
    summary = [line for line in capsys.readouterr().out.splitlines() if "unreadable" in line]
    assert len(summary) == 1 and "2 of " in summary[0] and "shot_07.png" in summary[0]
    with open(tmp_path / "again.csv") as f:
        again = [r for r in csv.DictReader(f) if r["dataset"] == "incoming"]
    bad = [r for r in again if r["status"] == "unreadable"]
    assert [r["path"] for r in bad] == [
        str(incoming / "shot_07.png"),
        str(incoming / "shot_10.png"),
    ]
    assert all(r["reason"].startswith("OSError") and r["prediction"] == "" for r in bad)
    good = {r["path"]: r for r in again if r["status"] == "ok"}
    assert len(good) == 10
    for r in rows:  # a readable file gets the same decision as in the run without bad files
        if r["path"] in good:
            assert good[r["path"]]["prediction"] == r["prediction"]
            assert good[r["path"]]["exit_stage"] == r["exit_stage"]
    # --predictions.strict: the first unreadable file refuses the run, nothing is written
    with pytest.raises(ValueError, match=r"unreadable image .*shot_07\.png"):
        predict(tmp_path / "strict.csv", "--predictions.strict=true")
    assert not (tmp_path / "strict.csv").exists()
