"""``predict`` over a ``source: path`` image folder read into an in-memory datamodule (IDX,
digits): every row carries its file in ``path``; an unreadable file is listed with its reason
and the others predicted, ``--predictions.strict`` refuses with nothing written; other stages
still refuse the file at setup."""

from __future__ import annotations

import pytest
import torch
import yaml

from tests.datamodules.test_idx_images import write_idx
from tests.lightning_modules.test_cascade_data_input import (
    predict,
    rows,
    write_cascade,
    write_images,
)
from window_cascades.datamodules.idx_images import IDXDataModule
from window_cascades.datamodules.image_decoding import UnreadableImageError


def idx_config(tmp_path, incoming) -> dict:
    gen = torch.Generator().manual_seed(0)
    images = write_idx(tmp_path / "img", torch.randint(0, 256, (40, 28, 28), generator=gen))
    labels = write_idx(tmp_path / "lab", torch.arange(40) % 10)
    return {
        "class_path": "window_cascades.datamodules.IDXDataModule",
        "init_args": {
            "images": str(images),
            "labels": str(labels),
            "image_size": 32,
            "batch_size": 4,
            "datasets": [
                {"name": "held", "role": "heldout", "source": "heldout"},
                {"name": "test", "role": "id", "source": "test"},
                {
                    "name": "incoming",
                    "role": "ood",
                    "source": "path",
                    "format": "image_folder",
                    "path": str(incoming),
                },
            ],
        },
    }


@pytest.mark.slow  # trains members: the fast loop leaves it to the full suite
def test_unreadable_files_of_a_path_source_are_listed_or_refused(tmp_path, capsys):
    cascade = write_cascade(tmp_path)
    incoming = tmp_path / "incoming"
    files = write_images(incoming, [f"shot_{k}.png" for k in range(5)])
    broken = incoming / "shot_3.png"
    broken.write_bytes(broken.read_bytes()[:60])
    config = idx_config(tmp_path, incoming)
    (tmp_path / "data.yaml").write_text(yaml.safe_dump(config))
    args = [
        f"--ckpt_path={cascade}",
        f"--data={tmp_path / 'data.yaml'}",
        "--trainer.enable_progress_bar=false",
    ]
    capsys.readouterr()
    assert predict(*args, f"--predictions.path={tmp_path / 'p.csv'}") == 0
    found = rows(tmp_path / "p.csv")
    mine = [r for r in found if r["dataset"] == "incoming"]
    assert [r["path"] for r in mine] == files
    assert [r["status"] for r in mine] == ["ok", "ok", "ok", "unreadable", "ok"]
    assert mine[3]["reason"].startswith("OSError") and mine[3]["prediction"] == ""
    assert all(r["prediction"] != "" for r in found if r["status"] == "ok")
    assert {r["path"] for r in found if r["dataset"] != "incoming"} == {""}  # no files there
    summary = [line for line in capsys.readouterr().out.splitlines() if "files unreadable" in line]
    assert len(summary) == 1 and "1 of " in summary[0] and str(broken) in summary[0]
    # strict: refused naming the file, nothing written
    capsys.readouterr()
    strict = tmp_path / "strict.csv"
    assert predict(*args, f"--predictions.path={strict}", "--predictions.strict=true") == 2
    errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and f"unreadable image {broken}" in errors[0], errors
    assert not strict.exists()
    # stages other than predict still refuse the file when the data is set up
    dm = IDXDataModule(**{k: v for k, v in config["init_args"].items()})
    with pytest.raises(UnreadableImageError, match="shot_3.png"):
        dm.setup("test")
