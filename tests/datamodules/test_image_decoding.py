"""Decoding an image file: only allow-listed decoders (an EPS named ``.png`` never reaches
Ghostscript), every decoder failure one unreadable file, and 16-bit, 32-bit, float and palette
images converted with their full range (a 16-bit digit decodes as its 8-bit original)."""

from __future__ import annotations

import struct
import subprocess
import zlib

import numpy as np
import pytest
import torch
from PIL import Image
from sklearn.datasets import load_digits

from window_cascades.datamodules.contract import UNREADABLE
from window_cascades.datamodules.image_decoding import (
    ALLOWED_FORMATS,
    MAX_PIXELS_ENV,
    ImageTooLargeError,
    UnreadableImageError,
    image_error,
    open_image,
    to_mode,
)
from window_cascades.datamodules.image_sources import IMAGE_EXTENSIONS
from window_cascades.datamodules.predict_files import PredictFilesDataModule

EPS = b"""%!PS-Adobe-3.0 EPSF-3.0
%%BoundingBox: 0 0 8 8
%%EndComments
newpath 0 0 moveto 8 8 lineto stroke
showpage
%%EOF
"""


def digit_three() -> np.ndarray:
    """scikit-learn's first handwritten "3", as 8-bit grey (0..16 scaled to 0..255), 8 x 8."""
    digits = load_digits()
    image = digits.images[list(digits.target).index(3)]
    return np.rint(image * 255 / 16).astype(np.uint8)


def test_every_listed_image_extension_has_an_allowed_decoder():
    Image.init()
    assert {Image.EXTENSION[ext] for ext in IMAGE_EXTENSIONS} <= set(ALLOWED_FORMATS)
    assert not {"EPS", "PDF", "PSD", "MPEG"} & set(ALLOWED_FORMATS)


def test_an_eps_file_named_png_is_unreadable_and_never_starts_a_process(tmp_path, monkeypatch):
    fake = tmp_path / "photo.png"
    fake.write_bytes(EPS)
    with Image.open(fake) as img:  # by content, Pillow alone would take it as EPS
        assert img.format == "EPS"
    started = []

    def no_process(*args, **kwargs):
        started.append(args)
        raise AssertionError("an external program was started")

    monkeypatch.setattr(subprocess, "Popen", no_process)
    monkeypatch.setattr(subprocess, "check_call", no_process)
    with pytest.raises(UnreadableImageError, match=r"photo\.png \(UnidentifiedImageError: "):
        open_image(fake, [fake])
    assert image_error(fake).startswith("UnidentifiedImageError: cannot identify image file")
    assert started == []


@pytest.mark.parametrize(
    "failure",
    [
        struct.error("unpack requires a buffer of 4 bytes"),
        zlib.error("Error -3 while decompressing data"),
        EOFError(),
        subprocess.CalledProcessError(1, ["gs"]),
        KeyError("tile"),
    ],
    ids=lambda e: type(e).__name__,
)
def test_every_decoder_failure_is_one_unreadable_file(tmp_path, monkeypatch, failure):
    path = tmp_path / "x.png"
    Image.new("RGB", (4, 4)).save(path)

    def broken_load(self):
        raise failure

    monkeypatch.setattr(Image.Image, "load", broken_load)
    monkeypatch.setattr("PIL.ImageFile.ImageFile.load", broken_load)
    with pytest.raises(UnreadableImageError, match=type(failure).__name__):
        open_image(path, [path])
    assert image_error(path).startswith(type(failure).__name__)


def test_a_16_bit_digit_decodes_as_its_8_bit_original(tmp_path):
    """A 16-bit grey PNG (each 8-bit value times 257) was clipped to black and white by
    Pillow's conversion; it decodes to the 8-bit image, bit for bit, as do a palette PNG of
    the same values, a 32-bit integer TIFF of the 16-bit values and a float TIFF in [0, 1]."""
    three = digit_three()
    assert len(np.unique(three)) > 5  # grey levels that clipping would lose
    Image.fromarray(three).save(tmp_path / "eight.png")
    Image.fromarray(three.astype(np.uint16) * 257).save(tmp_path / "sixteen.png")
    palette = Image.fromarray(three).convert("P")
    palette.save(tmp_path / "palette.png")
    Image.fromarray(three.astype(np.int32) * 257).save(tmp_path / "wide.tif")
    Image.fromarray(three.astype(np.float32) / 255).save(tmp_path / "float.tif")
    with Image.open(tmp_path / "sixteen.png") as img:
        assert img.mode.startswith("I")  # really 16 bits on disk
        assert set(np.unique(np.asarray(img.convert("L")))) <= {0, 255}  # Pillow's clipping
    with Image.open(tmp_path / "palette.png") as img:
        assert img.mode == "P"
    files = sorted(tmp_path.iterdir())
    original = np.asarray(open_image(tmp_path / "eight.png", files))
    assert original.shape == (8, 8, 3) and np.array_equal(original[..., 0], three)
    for name in ("sixteen.png", "palette.png", "wide.tif", "float.tif"):
        decoded = np.asarray(open_image(tmp_path / name, files))
        assert np.array_equal(decoded, original), name
        grey = np.asarray(to_mode(Image.open(tmp_path / name), "L"))
        assert np.array_equal(grey, three), name
    # and what a member is given: the same tensor from the predict datamodule
    module = PredictFilesDataModule(
        str(tmp_path), input_size=16, mean=[0.5], std=[0.25], batch_size=8
    )
    module.setup("predict")
    dataset = module.eval_sets["inputs"]
    names = [p.name for p in module.files]
    x = {name: dataset[names.index(name)][0] for name in names}
    for name in ("sixteen.png", "palette.png", "wide.tif", "float.tif"):
        assert torch.equal(x[name], x["eight.png"]), name


def test_out_of_range_wide_and_float_values_are_clipped_not_wrapped():
    wide = Image.fromarray(np.array([[-5, 0, 65535, 10**6]], dtype=np.int32))
    assert np.asarray(to_mode(wide, "L")).tolist() == [[0, 0, 255, 255]]
    hot = Image.fromarray(np.array([[-1.0, 0.0, 100.0, 400.0]], dtype=np.float32))
    assert np.asarray(to_mode(hot, "L")).tolist() == [[0, 0, 100, 255]]


def test_an_oversized_file_is_one_unreadable_sample_when_predicting(tmp_path, monkeypatch):
    monkeypatch.setenv(MAX_PIXELS_ENV, "100")
    Image.new("RGB", (20, 20), (200, 10, 10)).save(tmp_path / "big.png")
    Image.new("RGB", (8, 8), (10, 200, 10)).save(tmp_path / "small.png")
    module = PredictFilesDataModule(str(tmp_path), input_size=8, mean=[0.5] * 3, std=[0.5] * 3)
    module.setup("predict")
    dataset = module.eval_sets["inputs"]
    with pytest.raises(ImageTooLargeError, match="20 x 20 = 400 pixels"):
        dataset[0]  # training and --predictions.strict: refused, naming the file
    dataset.skip_unreadable = True  # predict's default
    assert dataset[0][1] == UNREADABLE and dataset[1][1] == -1
    assert image_error(tmp_path / "big.png").startswith("too large: image ")
    assert image_error(tmp_path / "small.png") is None
