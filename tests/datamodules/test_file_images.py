"""Datasets on disk in every supported layout, built small here (no downloads)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from tests.conftest import ROOT
from window_cascades.datamodules import ImageFilesDataModule

SIZE = 24
EVAL = [
    {"name": "held", "role": "heldout", "source": "heldout"},
    {"name": "test", "role": "id", "source": "test"},
    {"name": "test_jpeg", "role": "shift", "source": "test", "corruption": "jpeg", "severity": 5},
    {"name": "noise", "role": "ood", "source": "uniform_noise", "size": 6},
]


def picture(rng: np.random.Generator, label: int) -> Image.Image:
    """A 40 x 40 RGB image whose mean colour depends on the label (learnable, real PNG/JPEG)."""
    base = np.zeros((40, 40, 3), np.float64)
    base[..., label % 3] = 160
    return Image.fromarray(np.clip(base + rng.normal(0, 30, base.shape), 0, 255).astype(np.uint8))


def write_folder(root, classes: int, per_class: int, seed: int, ext: str = ".png") -> None:
    rng = np.random.default_rng(seed)
    for k in range(classes):
        (root / f"class_{k}").mkdir(parents=True)
        for j in range(per_class):
            picture(rng, k).save(root / f"class_{k}" / f"{j}{ext}")


def folder_data_config(root, name: str, **init_args) -> str:
    """An ``ImageFilesDataModule`` config (YAML, written to ``root/<name>.yaml``) on the image
    folders ``root/train`` and ``root/test`` of 3 classes, at 32 px; ``init_args`` override."""
    import yaml

    data = {
        "class_path": "window_cascades.datamodules.ImageFilesDataModule",
        "init_args": {
            "train": {"format": "image_folder", "path": str(root / "train")},
            "test": {"format": "image_folder", "path": str(root / "test")},
            "datasets": EVAL,
            "num_classes": 3,
            "preprocess_as": "resnet10t",
            "input_size": 32,
            "heldout_size": 6,
            "batch_size": 10,
            "num_workers": 0,
            **init_args,
        },
    }
    path = root / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data))
    return str(path)


def module(train: dict, test: dict, datasets=EVAL, **kw) -> ImageFilesDataModule:
    dm = ImageFilesDataModule(
        train=train,
        test=test,
        datasets=datasets,
        num_classes=3,
        input_size=SIZE,
        heldout_size=6,
        num_workers=0,
        **kw,
    )
    dm.setup("fit")
    return dm


def check_module(dm: ImageFilesDataModule, n_train: int, n_test: int) -> None:
    assert len(dm.train_set) == n_train - 6 and len(dm.eval_sets["held"]) == 6
    assert len(dm.eval_sets["test"]) == n_test
    x, y, i = dm.eval_sets["test"][1]
    assert x.shape == (3, SIZE, SIZE) and 0 <= y < 3 and i == 1
    shifted, y2, _ = dm.eval_sets["test_jpeg"][1]
    assert y2 == y and not torch.equal(shifted, x)
    assert torch.equal(shifted, dm.eval_sets["test_jpeg"][1][0])  # deterministic per sample
    ood = dm.eval_sets["noise"][0]
    assert ood[0].shape == (3, SIZE, SIZE) and ood[1] == -1
    # held-out and training images are disjoint, and the split is fixed by the seed
    assert not set(dm.train_set.indices) & set(dm.eval_sets["held"].indices)
    batch = next(iter(dm.train_dataloader()))
    assert batch[0].shape == (min(dm.batch_size, n_train - 6), 3, SIZE, SIZE)


def test_image_folders_with_an_unlabelled_ood_folder(tmp_path):
    write_folder(tmp_path / "train", 3, 8, 0)
    write_folder(tmp_path / "test", 3, 3, 1, ".jpg")
    (tmp_path / "textures").mkdir()
    picture(np.random.default_rng(2), 0).save(tmp_path / "textures" / "a.png")
    datasets = [
        *EVAL,
        {
            "name": "textures",
            "role": "ood",
            "source": "path",
            "format": "image_folder",
            "path": str(tmp_path / "textures"),
        },
    ]
    dm = module(
        {"format": "image_folder", "path": str(tmp_path / "train")},
        {"format": "image_folder", "path": str(tmp_path / "test")},
        datasets,
    )
    check_module(dm, 24, 9)
    assert len(dm.eval_sets["textures"]) == 1 and dm.eval_sets["textures"][0][1] == -1
    labels = [dm.eval_sets["test"][i][1] for i in range(9)]
    assert labels == [0, 0, 0, 1, 1, 1, 2, 2, 2]
    # each sample's file, for predictions.csv
    assert dm.eval_sets["textures"].path(0) == str(tmp_path / "textures" / "a.png")
    assert dm.eval_sets["test"].path(8).startswith(str(tmp_path / "test"))


def test_training_crops_are_seeded_per_epoch_and_sample(tmp_path, monkeypatch):
    write_folder(tmp_path / "train", 3, 4, 0)
    write_folder(tmp_path / "test", 3, 2, 1)
    monkeypatch.setenv("PL_GLOBAL_SEED", "7")
    src = {"format": "image_folder", "path": str(tmp_path / "train")}
    test = {"format": "image_folder", "path": str(tmp_path / "test")}
    a, b = module(src, test), module(src, test)
    assert torch.equal(a.train_set[0][0], b.train_set[0][0])
    a.train_set.set_epoch(1)
    assert not torch.equal(a.train_set[0][0], b.train_set[0][0])


def test_imagenet_layout_with_flat_val_and_solution_csv(tmp_path):
    rng = np.random.default_rng(0)
    wnids = ["n01440764", "n01443537", "n01484850"]
    for k, wnid in enumerate(wnids):
        (tmp_path / "train" / wnid).mkdir(parents=True)
        for j in range(5):
            picture(rng, k).save(tmp_path / "train" / wnid / f"{wnid}_{j}.JPEG")
    (tmp_path / "val").mkdir()
    rows = ["ImageId,PredictionString"]
    for j, k in enumerate([2, 0, 1, 2]):
        picture(rng, k).save(tmp_path / "val" / f"ILSVRC2012_val_{j:08d}.JPEG")
        rows.append(f"ILSVRC2012_val_{j:08d},{wnids[k]} 1 2 3 4")
    (tmp_path / "LOC_val_solution.csv").write_text("\n".join(rows) + "\n")
    src = {"format": "imagenet", "path": str(tmp_path)}
    dm = module({**src, "split": "train"}, {**src, "split": "val"})
    check_module(dm, 15, 4)
    assert [dm.eval_sets["test"][i][1] for i in range(4)] == [2, 0, 1, 2]


@pytest.mark.parametrize("variant", ["cifar10", "cifar100"])
def test_cifar_binary_files(tmp_path, variant):
    rng = np.random.default_rng(0)
    label_bytes = 1 if variant == "cifar10" else 2

    def records(n: int) -> bytes:
        labels = rng.integers(0, 3, (n, label_bytes), dtype=np.uint8)
        pixels = rng.integers(0, 256, (n, 3072), dtype=np.uint8)
        return np.concatenate([labels, pixels], axis=1).tobytes()

    names = ([f"data_batch_{k}.bin" for k in range(1, 6)], ["test_batch.bin"])
    if variant == "cifar100":
        names = (["train.bin"], ["test.bin"])
    for name in names[0]:
        (tmp_path / name).write_bytes(records(4 if variant == "cifar10" else 20))
    (tmp_path / names[1][0]).write_bytes(records(5))
    dm = ImageFilesDataModule(
        train={"format": variant, "path": str(tmp_path)},
        test={"format": variant, "path": str(tmp_path)},
        datasets=EVAL,
        num_classes=10 if variant == "cifar10" else 100,
        input_size=SIZE,
        heldout_size=6,
        num_workers=0,
    )
    dm.setup("fit")
    check_module(dm, 20, 5)


def test_hf_datasets_from_disk_and_parquet(tmp_path):
    import datasets

    rng = np.random.default_rng(0)
    features = datasets.Features(
        {"image": datasets.Image(), "label": datasets.ClassLabel(names=["a", "b", "c"])}
    )

    def split(n: int) -> datasets.Dataset:
        labels = [k % 3 for k in range(n)]
        return datasets.Dataset.from_dict(
            {"image": [picture(rng, k) for k in labels], "label": labels}, features=features
        )

    dd = datasets.DatasetDict({"train": split(12), "test": split(6)})
    dd.save_to_disk(str(tmp_path / "saved"))
    src = {"format": "hf", "path": str(tmp_path / "saved")}
    check_module(module({**src, "split": "train"}, {**src, "split": "test"}), 12, 6)
    (tmp_path / "pq").mkdir()
    dd["train"].to_parquet(str(tmp_path / "pq" / "train-00000.parquet"))
    dd["test"].to_parquet(str(tmp_path / "pq" / "test-00000.parquet"))
    src = {"format": "hf", "path": str(tmp_path / "pq")}
    check_module(module({**src, "split": "train"}, {**src, "split": "test"}), 12, 6)


def test_hf_imagefolder_builder_on_a_local_folder(tmp_path):
    write_folder(tmp_path / "train", 3, 6, 0)
    write_folder(tmp_path / "test", 3, 2, 1)
    src = {"format": "hf", "path": str(tmp_path)}
    dm = module({**src, "split": "train"}, {**src, "split": "test"})
    check_module(dm, 18, 6)
    assert sorted(dm.eval_sets["test"][i][1] for i in range(6)) == [0, 0, 1, 1, 2, 2]


@pytest.mark.slow  # ~25 s: the hub client retries before it gives up offline
def test_hf_hub_name_offline_is_a_clear_error(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    with pytest.raises((ConnectionError, FileNotFoundError, ValueError), match="no-such/dataset"):
        module({"format": "hf", "path": "no-such/dataset"}, {"format": "hf", "path": "x"})


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ({"format": "image_folder"}, "one sub-folder per class"),
        ({"format": "imagenet", "split": "train"}, "root/train/<wnid>"),
        ({"format": "cifar10"}, "data_batch_1.bin"),
        ({"format": "cifar100"}, "train.bin"),
    ],
)
def test_missing_dataset_path_names_the_path_and_the_layout(tmp_path, source, expected):
    missing = tmp_path / "nowhere"
    with pytest.raises(FileNotFoundError, match=expected) as err:
        module({**source, "path": str(missing)}, {**source, "path": str(tmp_path / "elsewhere")})
    assert str(missing) in str(err.value)


def test_notmnist_idx_files_load_by_path(tmp_path):
    import shutil

    root = ROOT.parent / "shared" / "data" / "notmnist"
    if not root.is_dir():
        pytest.skip(f"{root} not present (the shared benchmark data sits beside the clone)")
    src = {
        "format": "idx",
        "path": str(root / "t10k-images-idx3-ubyte.gz"),
        "labels": str(root / "t10k-labels-idx1-ubyte.gz"),
    }
    common = dict(datasets=EVAL[:2], num_classes=10, input_size=28, in_chans=1, num_workers=0)
    with pytest.raises(ValueError, match="train and test read the same images"):
        ImageFilesDataModule(train=src, test=src, heldout_size=2000, **common)
    copy = {**src, "path": str(shutil.copy(src["path"], tmp_path / "images.gz"))}  # another file
    dm = ImageFilesDataModule(train=src, test=copy, heldout_size=2000, **common)
    dm.setup("fit")
    assert len(dm.train_set) == 8000 and dm.eval_sets["test"][0][0].shape == (1, 28, 28)


@pytest.mark.slow  # trains a member: the fast loop leaves it to the full suite
def test_member_trains_on_an_image_folder_through_the_cli(tmp_path):
    from tests.conftest import QUICKSTART
    from window_cascades.commands.cli import MemberCLI

    write_folder(tmp_path / "train", 3, 12, 0)
    write_folder(tmp_path / "test", 3, 4, 1)
    folder_data_config(tmp_path, "data", preprocess_as="efficientnet_b0")
    cli = MemberCLI(
        args=[
            "fit",
            f"--config={QUICKSTART / 'member.yaml'}",
            f"--data={tmp_path / 'data.yaml'}",
            "--trainer.max_epochs=1",
            "--trainer.enable_progress_bar=false",
            f"--trainer.default_root_dir={tmp_path}",
            f"--trainer.logger.save_dir={tmp_path}",
            f"--checkpoint.dirpath={tmp_path / 'ckpt'}",
        ]
    )
    # the member (resnet10t) and the preprocessing (efficientnet_b0's) differ, with a logger
    assert cli.model.model.num_classes == 3 and cli.model.hparams.in_chans == 3
    assert cli.trainer.global_step == 3  # 30 training images / batch 10
    assert (tmp_path / "ckpt" / "last.ckpt").is_file()


def test_a_corrupt_image_is_named_with_the_count_of_others(tmp_path):
    write_folder(tmp_path / "train", 3, 4, 0)
    write_folder(tmp_path / "test", 3, 2, 1)
    for name in ("class_1/0.png", "class_2/1.png"):  # truncated files
        path = tmp_path / "test" / name
        path.write_bytes(path.read_bytes()[:60])
    dm = module(
        {"format": "image_folder", "path": str(tmp_path / "train")},
        {"format": "image_folder", "path": str(tmp_path / "test")},
    )
    first_bad = 2  # class_0 holds 2 images, then class_1/0.png
    with pytest.raises(ValueError, match=r"unreadable image .*class_1/0\.png.*1 more among the 5"):
        dm.eval_sets["test"][first_bad]
    dm.eval_sets["test"][0]  # the readable ones still load
