"""Decoding one image file of a dataset, safely: only the decoders of
[`ALLOWED_FORMATS`][] may open it (identified by content, so an EPS or PDF file named
``.png`` is refused, never handed to a plugin that starts an external program such as
Ghostscript), the size its header declares is checked against a pixel limit before decoding (a
decompression bomb is refused, naming the file), high bit depths are scaled to 8 bits rather
than clipped ([`to_mode`][]), and an undecodable file is named with a count of the dataset's
other files like it."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

import numpy as np
from PIL import Image

ALLOWED_FORMATS = ("PNG", "JPEG", "BMP", "WEBP", "TIFF", "GIF", "PPM")
"""Pillow's decoders an image file may be opened with (the formats of the image extensions the
datamodules list: .png, .jpg/.jpeg, .bmp, .webp, .tif/.tiff, .gif, .ppm). None of them runs an
external program; a file whose content is another format (EPS, PDF, PSD, ...) is unreadable,
whatever its name."""

SIXTEEN_BIT_MODES = ("I;16", "I;16L", "I;16B", "I;16N")


class UnreadableImageError(ValueError):
    """An image file that cannot be decoded (named, with the count of others like it, counted
    only when the message is shown).

    Args:
        path: The file.
        reason: Why it cannot be decoded (``OSError: ...``).
        files: The dataset's files, among which the message counts the others like it.

    Attributes:
        path: The file.
        reason: Why it cannot be decoded (``OSError: ...``).
    """

    def __init__(self, path: Path | str, reason: str | None = None, files: list | None = None):
        super().__init__(path, reason)
        self.path, self.reason, self._files = path, reason, files or []

    def __reduce__(self):  # raised in a dataloader worker, shown in the main process
        return (UnreadableImageError, (self.path, self.reason, self._files))

    def __str__(self) -> str:
        if self.reason is None:  # re-raised from a worker with its message only
            return str(self.path)
        return (
            f"unreadable image {self.path} ({self.reason}); "
            f"{_count_other_unreadable(self.path, self._files)}. Remove or replace it"
        )


SCAN_SECONDS = 30.0


MAX_PIXELS_ENV = "WINDOW_CASCADES_MAX_IMAGE_PIXELS"
DEFAULT_MAX_PIXELS = 64_000_000  # 8000 x 8000; ImageNet's largest image has about 32 million


class ImageTooLargeError(ValueError):
    """An image whose header declares more pixels than [`max_image_pixels`][] allows."""


def max_image_pixels() -> int:
    """The largest image (width x height, pixels) a dataset may hold: ``DEFAULT_MAX_PIXELS``,
    or the environment variable ``WINDOW_CASCADES_MAX_IMAGE_PIXELS`` (a positive integer).

    Decoding is refused above it: a 12000 x 12000 image takes 2 GB to decode, and a small
    file can declare 50000 x 50000 (a decompression bomb).
    """
    text = os.environ.get(MAX_PIXELS_ENV)
    if text is None:
        return DEFAULT_MAX_PIXELS
    try:
        value = int(text.replace("_", ""))
    except ValueError:
        value = 0
    if value < 1:
        raise ValueError(f"{MAX_PIXELS_ENV}={text!r}: expected a positive number of pixels")
    return value


@contextlib.contextmanager
def _size_checked_by_us():
    """PIL's own decompression-bomb check off (it raises above 179 million pixels with a
    message naming no file, and only warns below); [`_decode`][] checks the size itself."""
    saved = Image.MAX_IMAGE_PIXELS
    Image.MAX_IMAGE_PIXELS = None
    try:
        yield
    finally:
        Image.MAX_IMAGE_PIXELS = saved


def to_mode(img: Image.Image, mode: str) -> Image.Image:
    """``img`` in ``mode`` (``RGB`` or ``L``), its full range kept.

    Pillow's own conversion clips integer images with more than 8 bits to 0..255 (a 16-bit grey
    PNG of values 0..65535 becomes black and white), so those are scaled first: 16-bit modes
    (``I;16*``) and 32-bit integer images (``I``, as older Pillow versions open 16-bit PNGs)
    map 0..65535 to 0..255 (values outside are clipped), floating-point images (``F``) in
    [0, 1] map to 0..255 (others are clipped to 0..255). Every other mode (palette ``P``,
    ``LA``, ``RGBA``, ``CMYK``, 1-bit, ...) converts with Pillow.

    Args:
        img: a decoded image.
        mode: the mode a member takes, ``RGB`` (3 channels) or ``L`` (grey).

    Returns:
        The converted image (``img`` itself when it already is in ``mode``).
    """
    if img.mode == mode:
        return img
    if img.mode in SIXTEEN_BIT_MODES or img.mode in ("I", "F"):
        values = np.asarray(img, dtype=np.float64)
        if img.mode == "F" and np.nanmax(values, initial=0.0) <= 1.0:
            values = values * 255.0
        elif img.mode != "F":
            values = values / 257.0  # 65535 -> 255 exactly
        grey = np.clip(np.nan_to_num(np.rint(values)), 0, 255).astype(np.uint8)
        img = Image.fromarray(grey)  # uint8: mode L
    return img.convert(mode)


def _decode(path: Path, mode: str | None = "RGB") -> Image.Image | None:
    """Decode ``path`` with a decoder of [`ALLOWED_FORMATS`][] (converted to ``mode`` by
    [`to_mode`][]; None: only checked) after checking the size its header declares against
    [`max_image_pixels`][].

    Raises:
        ImageTooLargeError: naming the file, its size, the limit and how to raise it.
        PIL.UnidentifiedImageError: not an image of an allowed format (an ``OSError``).
    """
    limit = max_image_pixels()
    with _size_checked_by_us(), Image.open(path, formats=ALLOWED_FORMATS) as img:
        width, height = img.size
        if width * height > limit:
            raise ImageTooLargeError(
                f"image {path} is {width} x {height} = {width * height:,} pixels, more than the "
                f"limit of {limit:,} (decoding it would take about "
                f"{width * height * 3 / 2**30:.1f} GB); set {MAX_PIXELS_ENV} to a larger number "
                "of pixels to read it"
            )
        img.load()  # decoded while the file is open (every failure raised here)
        return None if mode is None else to_mode(img, mode)


def _unreadable(path: Path) -> bool:
    try:
        _decode(path, None)
        return False
    except ImageTooLargeError:
        return False  # decodable; refused for its size only
    except Exception:  # any decoder failure (zlib.error, struct.error, EOFError, ...)
        return True


def _count_other_unreadable(path: Path, files: list[Path], budget: float = SCAN_SECONDS) -> str:
    """How many of the dataset's other ``files`` fail to decode too (at most ``budget`` s)."""
    import time

    others = [p for p in files if p != path]
    start, bad, seen = time.monotonic(), 0, 0
    for p in others:
        if time.monotonic() - start > budget:
            return f"at least {bad} more among the first {seen} of {len(others)} other files"
        bad += _unreadable(p)
        seen += 1
    if bad:
        return f"{bad} more among the {len(others)} other files of this dataset"
    return f"no other unreadable file among the {len(others)} of this dataset"


def open_image(path: Path, files: list[Path]) -> Image.Image:
    """Decode ``path`` (one of ``files``, its dataset) as RGB; a clear error if it cannot be.

    Args:
        path: The image file.
        files: Its dataset's files (an error counts the others that cannot be decoded).

    Raises:
        ImageTooLargeError: its header declares more pixels than [`max_image_pixels`][].
        UnreadableImageError: any other failure to decode it (not an image of an allowed
            format, truncated, corrupt: whatever the decoder raised).
    """
    try:
        return _decode(path)
    except ImageTooLargeError:
        raise
    except Exception as err:  # every decoder failure is this file's, never the run's
        raise UnreadableImageError(path, f"{type(err).__name__}: {err}", files) from None


def image_error(path: str | Path) -> str | None:
    """Why the image file ``path`` cannot be decoded (``OSError: ...``; ``too large: ...`` over
    the pixel limit, checked before decoding), or None if it can.

    Args:
        path: The image file.
    """
    try:
        _decode(Path(path), None)
        return None
    except ImageTooLargeError as err:
        return f"too large: {err}"
    except Exception as err:
        return f"{type(err).__name__}: {err}"
