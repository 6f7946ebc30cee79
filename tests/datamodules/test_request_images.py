"""Images sent as bytes to a served cascade: the same tensors as ``cascade predict`` makes of
the same files; what must not be decoded is refused with its HTTP status and one line."""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import pytest
import torch
from PIL import Image

from window_cascades.datamodules.predict_files import PredictFilesDataModule
from window_cascades.datamodules.request_images import (
    ImagePreparation,
    RequestImageError,
    image_format,
)

GREY = ImagePreparation(32, 1.0, "bilinear", (0.5,), (0.5,))
RGB = ImagePreparation(24, 0.875, "bicubic", (0.485, 0.456, 0.406), (0.229, 0.224, 0.225))


def encoded(array: np.ndarray, fmt: str, **kwargs) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, fmt, **kwargs)
    return buf.getvalue()


def noisy(height: int, width: int, channels: int = 3, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    shape = (height, width, channels) if channels > 1 else (height, width)
    return rng.integers(0, 255, shape, dtype=np.uint8)


def png_header_only(width: int, height: int) -> bytes:
    """A PNG whose header declares ``width`` x ``height`` and whose data is empty."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = struct.pack(">I", zlib.crc32(kind + data))
        return struct.pack(">I", len(data)) + kind + data + crc

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b""))
        + chunk(b"IEND", b"")
    )


@pytest.mark.parametrize("preparation", [GREY, RGB], ids=["grey", "rgb"])
def test_a_sent_image_is_the_tensor_predict_makes_of_the_same_file(tmp_path, preparation):
    files = {
        "a.png": encoded(noisy(40, 28, 3, 1), "PNG"),
        "b.jpg": encoded(noisy(50, 61, 3, 2), "JPEG", quality=90),
        "c.png": encoded(noisy(9, 9, 1, 3), "PNG"),  # grey source
        "d.png": encoded(noisy(30, 30, 4, 4), "PNG"),  # RGBA source
    }
    for name, body in files.items():
        (tmp_path / name).write_bytes(body)
    dm = PredictFilesDataModule(
        str(tmp_path),
        preparation.size,
        list(preparation.mean),
        list(preparation.std),
        preparation.crop_pct,
        preparation.interpolation,
    )
    dm.setup()
    dataset = dm.eval_sets["inputs"]
    expected = torch.stack([dataset[i][0] for i in range(len(dataset))])
    arrays = [preparation.prepare(files[name]) for name in sorted(files)]
    assert all(a.dtype == np.uint8 and a.shape[:2] == (preparation.size,) * 2 for a in arrays)
    assert torch.equal(preparation.to_batch(arrays), expected)


def test_what_must_not_be_decoded_is_refused_with_its_status():
    good = encoded(noisy(28, 28), "PNG")
    cases = {
        b"hello, server": (400, "not an image: the 13 bytes start with no image signature"),
        b"": (400, "not an image"),
        b"GIF89a" + b"\0" * 40: (415, "image format gif is not accepted (accepted: png, jpeg)"),
        b"BM" + b"\0" * 40: (415, "image format bmp is not accepted"),
        b"RIFF\0\0\0\0WEBPVP8 ": (415, "image format webp is not accepted"),
        png_header_only(50_000, 50_000): (413, "image is 50000 x 50000 = 2,500,000,000 pixels"),
        png_header_only(5000, 4000): (413, "more than the limit of 16,777,216 (--max_pixels)"),
        encoded(noisy(4, 30), "PNG"): (400, "image is 30 x 4 pixels; its sides must be at least 8"),
        good[: len(good) // 2]: (400, "unreadable png image: OSError"),
        b"\xff\xd8\xff" + b"\0" * 100: (400, "unreadable jpeg image"),
    }
    for body, (status, reason) in cases.items():
        with pytest.raises(RequestImageError) as caught:
            GREY.prepare(body)
        assert caught.value.status == status and reason in str(caught.value), body[:20]
        assert "\n" not in str(caught.value)
    assert GREY.prepare(good).shape == (32, 32, 1)
    only_png = ImagePreparation(32, 1.0, "bilinear", (0.5,), (0.5,), formats=("png",))
    with pytest.raises(RequestImageError, match="image format jpeg is not accepted"):
        only_png.prepare(encoded(noisy(28, 28), "JPEG"))


def test_signatures_and_settings():
    assert image_format(b"\x89PNG\r\n\x1a\n...") == "png"
    assert image_format(b"\xff\xd8\xff\xe0") == "jpeg"
    assert image_format(b"II*\x00") == "tiff" and image_format(b"text") is None
    for kwargs, message in [
        ({"formats": ("png", "gif")}, "--formats png,gif: expected one or more of png, jpeg"),
        ({"max_pixels": 0}, "--max_pixels 0: expected a whole number >= 1"),
        ({"min_side": 2.5}, "--min_side 2.5"),
    ]:
        with pytest.raises(ValueError, match=message):
            ImagePreparation(32, 1.0, "bilinear", (0.5,), (0.5,), **kwargs)
