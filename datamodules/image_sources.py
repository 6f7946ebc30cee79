"""Labelled images on disk, in the layouts users have: read lazily, one PIL image at a time.

Formats (``format`` in a config; ``path`` is a folder unless said otherwise):

- ``image_folder``: one sub-folder per class holding images (``path/<class>/<file>``); also an
  OOD folder of images with no class sub-folders (labels -1).
- ``imagenet``: ``path/train/<wnid>/*.JPEG`` and ``path/val/<wnid>/*.JPEG``, or a flat ``val``
  folder with ``path/LOC_val_solution.csv`` (Kaggle's ``ImageId,PredictionString``).
- ``cifar10`` / ``cifar100``: the binary versions (``data_batch_{1..5}.bin`` +
  ``test_batch.bin``; ``train.bin`` + ``test.bin``), never the pickled Python ones.
- ``hf``: a Hugging Face ``datasets`` dataset: a hub name, a ``save_to_disk`` folder, a
  folder of parquet / arrow files, or an image folder read by HF's ``imagefolder`` builder
  (``<split>/<class>/<image>``); ``image`` and ``label`` columns (names configurable).
- ``idx``: MNIST-format files: ``path`` is the images file, ``labels`` the labels file.

Every reader returns a [`LabelledImages`][]: ``dataset[i]`` is (RGB or L PIL image, label).
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset

from window_cascades.datamodules.image_decoding import open_image, to_mode

IMAGE_EXTENSIONS = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".gif", ".tif", ".tiff", ".ppm"}
FORMATS = ("image_folder", "imagenet", "cifar10", "cifar100", "hf", "idx")
"""The ``format`` values a config's data entry may name (the module's docstring describes each)."""


class LabelledImages(Dataset):
    """(PIL image, label) pairs: from files, from an in-memory uint8 array, or from a HF set.

    Args:
        load: Returns image ``i`` as a PIL image, given its index.
        labels: One class index per image (-1 for an unlabelled, OOD image).
        classes: The class names, by class index (empty when the source has none).
        where: The source as the errors and summaries name it (a folder, file or hub name).
        paths: The image files, by index, when the source is files; None otherwise.
    """

    def __init__(self, load, labels: list[int], classes: list[str], where: str, paths=None):
        self._load, self.labels, self.classes, self.where = load, labels, classes, where
        self.paths = paths  # the image files, when the source is files

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> tuple[Image.Image, int]:
        return self._load(i), self.labels[i]


def _files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS)


def _missing(path: Path, layout: str) -> FileNotFoundError:
    return FileNotFoundError(f"dataset path not found: {path} (expected {layout})")


def image_folder(path: str | Path) -> LabelledImages:
    """Images in class sub-folders (sorted names = class indices), or unlabelled images.

    Args:
        path: The folder: ``path/<class>/<image>``, or images directly in it (labels -1).

    Returns:
        The images with their labels, in sorted order of class and file name.

    Raises:
        FileNotFoundError: ``path`` is not a folder.
        ValueError: The folder holds no image files.
    """
    root = Path(path)
    layout = "an image folder: one sub-folder per class holding images, e.g. root/cat/1.jpg"
    if not root.is_dir():
        raise _missing(root, layout)
    classes = sorted(p.name for p in root.iterdir() if p.is_dir())
    if not classes:  # a flat folder of images: an OOD set
        files = _files(root)
        labels = [-1] * len(files)
    else:
        files, labels = [], []
        for k, name in enumerate(classes):
            found = _files(root / name)
            files += found
            labels += [k] * len(found)
    if not files:
        raise ValueError(f"{root}: no images ({sorted(IMAGE_EXTENSIONS)}) found; expected {layout}")
    return LabelledImages(lambda i: open_image(files[i], files), labels, classes, str(root), files)


def imagenet(path: str | Path, split: str) -> LabelledImages:
    """ImageNet's ``train`` or ``val`` split; class indices follow the sorted train wnids.

    Args:
        path: The ImageNet folder, holding ``train/`` and ``val/`` (and, for a flat ``val/``,
            ``LOC_val_solution.csv``).
        split: ``"train"`` or ``"val"``.

    Returns:
        The split's images with their class indices.

    Raises:
        FileNotFoundError: The split's folder or the solution file is missing.
        ValueError: ``split`` is neither, or an image or class folder has no train class.
    """
    root = Path(path)
    layout = "ImageNet: root/train/<wnid>/*.JPEG and root/val/<wnid>/*.JPEG (or flat root/val/ with root/LOC_val_solution.csv)"  # noqa: E501
    if split not in ("train", "val"):
        raise ValueError(f"imagenet split must be 'train' or 'val', got {split!r}")
    if not (root / split).is_dir():
        raise _missing(root / split, layout)
    wnid_dir = root / "train" if (root / "train").is_dir() else root / split
    classes = sorted(p.name for p in wnid_dir.iterdir() if p.is_dir())
    folder = root / split
    if any(p.is_dir() for p in folder.iterdir()):
        data = image_folder(folder)
        index = {c: k for k, c in enumerate(classes)}
        unknown = sorted(set(data.classes) - set(index))
        if unknown:
            raise ValueError(f"{folder}: class folders {unknown[:5]} are not train classes")
        labels = [index[data.classes[y]] for y in data.labels]
        return LabelledImages(data._load, labels, classes, str(folder))
    solution = root / "LOC_val_solution.csv"
    if not solution.is_file():
        raise _missing(solution, layout)
    with solution.open() as f:
        wnid_of = {row["ImageId"]: row["PredictionString"].split()[0] for row in csv.DictReader(f)}
    files = _files(folder)
    index = {c: k for k, c in enumerate(classes)}
    try:
        labels = [index[wnid_of[p.stem]] for p in files]
    except KeyError as err:
        raise ValueError(f"{solution}: no known class for image {err.args[0]}") from None
    return LabelledImages(
        lambda i: open_image(files[i], files), labels, classes, str(folder), files
    )


def cifar(path: str | Path, split: str, variant: str) -> LabelledImages:
    """CIFAR-10/100 binary files: each record is label byte(s) + 3 x 32 x 32 uint8 (CHW).

    Args:
        path: The folder holding the binary files.
        split: ``"train"`` or ``"test"``.
        variant: ``"cifar10"`` or ``"cifar100"`` (CIFAR-100 gives the fine labels).

    Returns:
        The split's images (held in memory) with their class indices.

    Raises:
        FileNotFoundError: A file of the split is missing.
        ValueError: ``split`` is neither, or a file's size is not a whole number of records.
    """
    root = Path(path)
    if variant == "cifar10":
        train = [f"data_batch_{k}.bin" for k in range(1, 6)]
        names = train if split == "train" else ["test_batch.bin"]
        label_bytes, classes = 1, [str(k) for k in range(10)]
    else:
        names, label_bytes, classes = [f"{split}.bin"], 2, [str(k) for k in range(100)]
    layout = f"the {variant} binary version: {', '.join(names)} in one folder"
    if split not in ("train", "test"):
        raise ValueError(f"{variant} split must be 'train' or 'test', got {split!r}")
    records = []
    for name in names:
        file = root / name
        if not file.is_file():
            raise _missing(file, layout)
        raw = np.fromfile(file, dtype=np.uint8)
        width = label_bytes + 3072
        if raw.size % width:
            raise ValueError(f"{file}: size {raw.size} is not a multiple of {width}-byte records")
        records.append(raw.reshape(-1, width))
    table = np.concatenate(records)
    labels = table[:, label_bytes - 1].astype(np.int64).tolist()  # CIFAR-100: the fine label
    images = table[:, label_bytes:].reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
    return LabelledImages(lambda i: Image.fromarray(images[i]), labels, classes, str(root))


def hf_images(
    path: str, split: str, image_key: str = "image", label_key: str | None = "label"
) -> LabelledImages:
    """A ``datasets`` split; ``label_key=None`` (or a missing column) gives labels -1.

    Args:
        path: A hub name, a ``save_to_disk`` folder, a folder of parquet or arrow files, or an
            image folder (``<split>/<class>/<image>``).
        split: The split to read (e.g. ``"train"``, ``"test"``).
        image_key: The column holding the images.
        label_key: The column holding the integer class indices; None for an unlabelled set.

    Returns:
        The split's images (read one at a time, as RGB) with their labels.

    Raises:
        ModuleNotFoundError: Hugging Face ``datasets`` is not installed (it is the ``hf`` extra;
            the message says how to install it).
        ValueError: The image column is missing or a label is not an integer.
        ConnectionError: ``path`` is a hub name and the hub cannot be reached.
    """
    try:
        import datasets
    except ModuleNotFoundError:
        raise ModuleNotFoundError(
            f"format hf ({path}): a Hugging Face dataset needs the datasets package, an "
            "optional extra: pip install 'window-cascades[hf]' (or [all])",
            name="datasets",
        ) from None

    local = Path(path)
    try:
        if local.is_dir() and (local / "dataset_dict.json").is_file():
            data = datasets.load_from_disk(str(local))[split]
        elif local.is_dir() and (local / "state.json").is_file():
            data = datasets.load_from_disk(str(local))
        elif local.is_dir():
            kind = "parquet" if list(local.rglob("*.parquet")) else "arrow"
            files = sorted(str(p) for p in local.rglob(f"*{split}*.{kind}")) or sorted(
                str(p) for p in local.rglob(f"*.{kind}")
            )
            if files:
                data = datasets.load_dataset(kind, data_files=files, split="train")
            else:  # HF's image-folder builder: <split>/<class>/<image>, labels from folders
                data = datasets.load_dataset("imagefolder", data_dir=str(local), split=split)
        else:
            data = datasets.load_dataset(path, split=split)
    except (FileNotFoundError, ValueError) as err:
        raise type(err)(f"Hugging Face dataset {path!r} (split {split!r}): {err}") from None
    except ConnectionError as err:
        raise ConnectionError(
            f"Hugging Face dataset {path!r} needs the hub and it cannot be reached ({err}); "
            "download it once and give its local folder instead"
        ) from None
    if image_key not in data.column_names:
        raise ValueError(f"{path}: no image column {image_key!r}; columns: {data.column_names}")
    has_labels = label_key is not None and label_key in data.column_names
    labels = list(data[label_key]) if has_labels else [-1] * len(data)
    wrong = next((y for y in labels if isinstance(y, bool) or not isinstance(y, int)), None)
    if wrong is not None:
        raise ValueError(
            f"{path}: field {label_key!r} must hold integer class indices, found {wrong!r} "
            "(labels are never truncated to integers)"
        )
    feature = data.features.get(label_key) if has_labels else None
    classes = list(getattr(feature, "names", []) or [])

    def load(i: int) -> Image.Image:
        img = data[i][image_key]
        return to_mode(img, "RGB") if isinstance(img, Image.Image) else Image.fromarray(img)

    return LabelledImages(load, labels, classes, path)


def idx_images(path: str | Path, labels: str | Path | None) -> LabelledImages:
    """MNIST-format IDX images and their labels.

    Args:
        path: The IDX images file (e.g. ``t10k-images-idx3-ubyte``, gzipped or not).
        labels: The IDX labels file beside it.

    Returns:
        The images (held in memory, greyscale) with their class indices.

    Raises:
        ValueError: ``labels`` is None.
    """
    from window_cascades.datamodules.idx import read_idx_images_labels

    if labels is None:
        raise ValueError(f"format idx needs 'labels' (the labels file) next to path {path}")
    images, y = read_idx_images_labels(Path(path), Path(labels))
    arr = images.numpy()
    classes = [str(k) for k in range(int(y.max()) + 1)] if y.numel() else []
    return LabelledImages(lambda i: Image.fromarray(arr[i]), y.tolist(), classes, str(path))


def open_source(entry: dict, default_split: str) -> LabelledImages:
    """Open ``{format, path, split?, labels?, image_key?, label_key?}`` from a config.

    Args:
        entry: A config's data entry: ``format`` (one of [`FORMATS`][]) and ``path``, with
            the format's optional keys.
        default_split: The split read when the entry names none.

    Returns:
        The images of the entry with their labels.

    Raises:
        ValueError: The format is unknown or ``path`` is missing.
    """
    fmt, path = entry.get("format"), entry.get("path")
    if fmt not in FORMATS:
        raise ValueError(f"format {fmt!r} is not one of {list(FORMATS)} (in {entry})")
    if not path:
        raise ValueError(f"missing 'path' in {entry}")
    split = entry.get("split", default_split)
    if fmt == "image_folder":
        return image_folder(path)
    if fmt == "imagenet":
        return imagenet(path, split)
    if fmt in ("cifar10", "cifar100"):
        return cifar(path, split, fmt)
    if fmt == "hf":
        keys = entry.get("image_key", "image"), entry.get("label_key", "label")
        return hf_images(path, split, *keys)
    return idx_images(path, entry.get("labels"))


def as_tensor(img: Image.Image) -> torch.Tensor:
    """A PIL image as a float (C, H, W) tensor in [0, 1].

    Args:
        img: An 8-bit image (greyscale gives one channel).

    Returns:
        The image as a float tensor of shape (C, H, W), values in [0, 1].
    """
    arr = np.asarray(img, dtype=np.uint8)
    t = torch.from_numpy(arr.copy()).float().div(255)
    return t.unsqueeze(0) if t.ndim == 2 else t.permute(2, 0, 1)
