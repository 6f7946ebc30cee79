"""MNIST-format IDX files: reading, errors, and the notMNIST datamodule by path."""

import gzip
import struct
from pathlib import Path

import pytest
import torch

from tests.conftest import ROOT
from window_cascades.datamodules.idx import read_idx, read_idx_images_labels
from window_cascades.datamodules.idx_images import IDXDataModule

NOTMNIST = ROOT.parent / "shared" / "data" / "notmnist"


def write_idx(path: Path, array: torch.Tensor, compress: bool = False) -> Path:
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(struct.pack(">I", d) for d in array.shape)
    raw = header + array.to(torch.uint8).numpy().tobytes()
    path.write_bytes(gzip.compress(raw) if compress else raw)
    return path


def test_round_trip_plain_and_gzip(tmp_path):
    images = torch.randint(0, 256, (7, 5, 4), dtype=torch.uint8)
    for compress in (False, True):
        path = (
            write_idx(tmp_path / f"x{int(compress)}.gz", images, compress)
            if compress
            else write_idx(tmp_path / "x0", images)
        )
        assert torch.equal(read_idx(path), images)


def test_bad_files_are_named(tmp_path):
    bad = tmp_path / "bad"
    bad.write_bytes(b"\x01\x02\x08\x01")
    with pytest.raises(ValueError, match="bad: not an IDX file"):
        read_idx(bad)
    short = write_idx(tmp_path / "short", torch.zeros(4, 3))
    short.write_bytes(short.read_bytes()[:-2])
    with pytest.raises(ValueError, match="short: IDX data holds 10 bytes, the header promises 12"):
        read_idx(short)
    with pytest.raises(FileNotFoundError, match="missing"):
        read_idx(tmp_path / "missing")
    images = write_idx(tmp_path / "img", torch.zeros(4, 2, 2))
    labels = write_idx(tmp_path / "lab", torch.zeros(3))
    with pytest.raises(ValueError, match="expected 4 labels"):
        read_idx_images_labels(images, labels)


def test_missing_dataset_path_names_the_layout(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"nowhere/images.*t10k-images-idx3-ubyte.gz"):
        IDXDataModule(
            str(tmp_path / "nowhere/images"),
            str(tmp_path / "labels"),
            datasets=[
                {"name": "h", "role": "heldout", "source": "heldout"},
                {"name": "t", "role": "id", "source": "test"},
            ],
        )


@pytest.mark.skipif(not NOTMNIST.is_dir(), reason=f"notMNIST not found in {NOTMNIST}")
def test_notmnist_loads_by_path_with_the_protocol_split():
    dm = IDXDataModule(
        str(NOTMNIST / "t10k-images-idx3-ubyte.gz"),
        str(NOTMNIST / "t10k-labels-idx1-ubyte.gz"),
        datasets=[
            {"name": "held", "role": "heldout", "source": "heldout"},
            {"name": "test", "role": "id", "source": "test"},
            {"name": "digits", "role": "ood", "source": "digits", "size": 1797},
        ],
    )
    dm.setup()
    assert len(dm.train_set) == 5000
    assert (len(dm.eval_sets["held"]), len(dm.eval_sets["test"])) == (2000, 3000)
    assert len(dm.eval_sets["digits"]) == 1797
    x, y, _ = dm.eval_sets["test"][0]
    assert x.shape == (1, 32, 32) and 0 <= int(y) < 10
    counts = torch.bincount(dm.eval_sets["test"].targets, minlength=10)
    assert counts.eq(300).all()  # stratified


def test_extra_ood_set_read_from_idx_files_gets_the_datamodules_preprocessing(tmp_path):
    """A data config line `{source: path, format: idx, ...}` works in the in-memory datamodule
    (e.g. MNIST as an extra OOD set of notMNIST), preprocessed exactly like its own images."""
    gen = torch.Generator().manual_seed(0)
    images = write_idx(tmp_path / "img", torch.randint(0, 256, (60, 28, 28), generator=gen))
    labels = write_idx(tmp_path / "lab", torch.arange(60) % 10)
    extra = write_idx(tmp_path / "mnist_img", torch.randint(0, 256, (7, 28, 28), generator=gen))
    extra_labels = write_idx(tmp_path / "mnist_lab", torch.arange(7) % 10)
    dm = IDXDataModule(
        str(images),
        str(labels),
        image_size=32,
        datasets=[
            {"name": "held", "role": "heldout", "source": "heldout"},
            {"name": "test", "role": "id", "source": "test"},
            {
                "name": "mnist",
                "role": "ood",
                "source": "path",
                "format": "idx",
                "path": str(extra),
                "labels": str(extra_labels),
            },
        ],
    )
    dm.setup()
    same = IDXDataModule(
        str(extra),
        str(extra_labels),
        image_size=32,
        datasets=[
            {"name": "held", "role": "heldout", "source": "heldout"},
            {"name": "test", "role": "id", "source": "test"},
        ],
    ).load_splits()[0]
    assert torch.equal(dm.eval_sets["mnist"].images, same)
    assert dm.eval_sets["mnist"].targets.eq(-1).all()
    assert list(dm.roles) == ["held", "test", "mnist"] and dm.roles.ood == ["mnist"]
