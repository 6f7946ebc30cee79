"""Reading MNIST-format IDX files (optionally gzip-compressed), without unpickling anything.

IDX layout: a 4-byte magic number (two zero bytes, a type code, the number of dimensions),
one big-endian uint32 per dimension, then the data in row-major order. Only unsigned bytes
(type code 0x08), the type of MNIST-style images and labels, are read here.
"""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import torch


def read_idx(path: str | Path) -> torch.Tensor:
    """The array stored in an IDX file, as a uint8 tensor of the stored shape.

    Args:
        path: The IDX file (gzip-compressed when its name ends in ``.gz``).

    Returns:
        The stored array.

    Raises:
        FileNotFoundError: naming the path.
        ValueError: naming the file, for a bad magic number, type or truncated data.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"IDX file not found: {path}")
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            raw = f.read()
    except (OSError, EOFError) as err:
        raise ValueError(f"{path}: cannot be read ({err})") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0:
        raise ValueError(f"{path}: not an IDX file (bad magic number)")
    dtype, ndim = raw[2], raw[3]
    if dtype != 0x08:
        raise ValueError(f"{path}: IDX type 0x{dtype:02x} is not supported (expected 0x08, ubyte)")
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise ValueError(f"{path}: truncated IDX header")
    shape = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    count = int(np.prod(shape)) if shape else 0
    if len(raw) - header != count:
        raise ValueError(
            f"{path}: IDX data holds {len(raw) - header} bytes, the header promises {count} "
            f"(shape {shape})"
        )
    data = np.frombuffer(raw, dtype=np.uint8, count=count, offset=header).reshape(shape)
    return torch.from_numpy(data.copy())


def read_idx_images_labels(
    images_path: str | Path, labels_path: str | Path
) -> tuple[torch.Tensor, torch.Tensor]:
    """(N, H, W) uint8 images and (N,) int64 labels, checked to match in length.

    Args:
        images_path: The IDX images file (``*-images-idx3-ubyte[.gz]``).
        labels_path: The IDX labels file (``*-labels-idx1-ubyte[.gz]``).

    Returns:
        (the images, the labels).
    """
    images, labels = read_idx(images_path), read_idx(labels_path)
    if images.ndim != 3:
        raise ValueError(
            f"{images_path}: expected N x H x W images, got shape {tuple(images.shape)}"
        )
    if labels.ndim != 1 or labels.shape[0] != images.shape[0]:
        raise ValueError(
            f"{labels_path}: expected {images.shape[0]} labels to match {images_path}, "
            f"got shape {tuple(labels.shape)}"
        )
    return images, labels.long()
