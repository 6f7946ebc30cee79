"""Images sent to a served cascade as bytes: checked, decoded and prepared exactly as
``cascade predict`` prepares image files.

``ImagePreparation.prepare`` takes the bytes of one image (an HTTP request's body, a
multipart file or a base64 string of a JSON list) and refuses, with ``RequestImageError``
(a ``ValueError`` carrying the HTTP status it calls for and a one-line reason), what a server
must not decode:

* bytes that are not an image (no known signature): 400;
* an image format outside the accepted ones (``png`` and ``jpeg`` by default; GIF, BMP,
  TIFF and WebP are recognised and refused by name): 415;
* an image whose header declares more pixels than ``max_pixels`` (a decompression bomb: a few
  bytes can declare 50000 x 50000), checked before any pixel is decoded: 413;
* an image with a side shorter than ``min_side`` pixels: 400;
* a file that fails to decode (truncated, corrupt): 400.

An accepted image is decoded to RGB, converted to the cascade's channels (grey ``L`` or
``RGB``) and resized and centre-cropped with timm's evaluation geometry
(``window_cascades.datamodules.prepared_images.eval_resize_crop``), the steps and order of
``PredictFilesDataModule``; it comes back as a small ``uint8`` array (H x W x C) to send to the
model's process. ``ImagePreparation.to_batch`` makes the normalised N x C x H x W batch
from such arrays with the operations of ``ToTensor`` and the datasets' normalisation, so a
served image is the same tensor as the same file in ``cascade predict``. Nothing is written
to disk.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from PIL import JpegImagePlugin, PngImagePlugin

from window_cascades.datamodules.prepared_images import INTERPOLATIONS, eval_resize_crop

#: accepted formats: name -> (PIL's image class of the format, the file signatures). The
#: class reads the header only; ``Image.open`` would first apply PIL's own pixel limit, a
#: process-wide setting, with a message naming neither the image's size nor the option.
FORMATS: dict[str, tuple[type, tuple[bytes, ...]]] = {
    "png": (PngImagePlugin.PngImageFile, (b"\x89PNG\r\n\x1a\n",)),
    "jpeg": (JpegImagePlugin.JpegImageFile, (b"\xff\xd8\xff",)),
}
#: formats recognised only to be refused by name (their signatures)
REFUSED_FORMATS: dict[str, tuple[bytes, ...]] = {
    "gif": (b"GIF87a", b"GIF89a"),
    "bmp": (b"BM",),
    "tiff": (b"II*\x00", b"MM\x00*"),
    "ico": (b"\x00\x00\x01\x00",),
}
DEFAULT_MAX_PIXELS = 4096 * 4096
DEFAULT_MIN_SIDE = 8  # the quick start's digits are 8 x 8


class RequestImageError(ValueError):
    """An image a served cascade refuses: the HTTP status it calls for and a one-line reason.

    Args:
        status: 400 (not an image, unreadable, too small), 413 (too many pixels) or 415 (a
            format outside the accepted ones).
        reason: the one-line reason the answer gives.

    Attributes:
        status: the HTTP status.
    """

    def __init__(self, status: int, reason: str):
        super().__init__(reason)
        self.status = status


def image_format(body: bytes) -> str | None:
    """The image format the bytes' signature names (``png``, ``jpeg``, ``gif``, ``bmp``,
    ``tiff``, ``ico``, ``webp``), or None.

    Args:
        body: the request's bytes (only the first few are read).
    """
    for name, (_, signatures) in FORMATS.items():
        if body.startswith(signatures):
            return name
    for name, signatures in REFUSED_FORMATS.items():
        if body.startswith(signatures):
            return name
    if body[:4] == b"RIFF" and body[8:12] == b"WEBP":
        return "webp"
    return None


@dataclass(frozen=True)
class ImagePreparation:
    """How a served cascade prepares an image: as the images the cascade was calibrated on
    (the cascade checkpoint's data input, as ``cascade predict`` reads it), with the server's
    limits.

    Attributes:
        size: the side of the square image the cascade is given, in pixels.
        crop_pct: the share of the resized image kept by the centre crop, in (0, 1].
        interpolation: ``bilinear`` or ``bicubic`` (the resize).
        mean: per-channel mean of the normalisation (1 value: grey images; 3: RGB).
        std: per-channel standard deviation of the normalisation, > 0.
        formats: the accepted formats (names of ``FORMATS``).
        max_pixels: the most pixels (width x height) an image's header may declare.
        min_side: the shortest side accepted, in pixels.

    Raises:
        ValueError: for settings that cannot be used (naming the option).
    """

    size: int
    crop_pct: float
    interpolation: str
    mean: tuple[float, ...]
    std: tuple[float, ...]
    formats: tuple[str, ...] = ("png", "jpeg")
    max_pixels: int = DEFAULT_MAX_PIXELS
    min_side: int = DEFAULT_MIN_SIDE

    def __post_init__(self) -> None:
        unknown = [f for f in self.formats if f not in FORMATS]
        if unknown or not self.formats:
            raise ValueError(
                f"--formats {','.join(self.formats)}: expected one or more of {', '.join(FORMATS)}"
            )
        if self.interpolation not in INTERPOLATIONS:
            raise ValueError(f"interpolation must be one of {list(INTERPOLATIONS)}")
        if len(self.mean) not in (1, 3) or len(self.std) != len(self.mean):
            raise ValueError(f"mean and std must have 1 or 3 values each: {self.mean}, {self.std}")
        for option, value in (("--max_pixels", self.max_pixels), ("--min_side", self.min_side)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{option} {value!r}: expected a whole number >= 1")

    @property
    def mode(self) -> str:
        """The PIL mode of the cascade's images: ``L`` (grey) or ``RGB``."""
        return "L" if len(self.mean) == 1 else "RGB"

    @property
    def channels(self) -> int:
        return len(self.mean)

    def prepare(self, body: bytes) -> np.ndarray:
        """One image's bytes, checked and prepared (see the module docstring).

        Args:
            body: the image file's bytes as sent.

        Returns:
            ``size`` x ``size`` x channels ``uint8`` pixels.

        Raises:
            RequestImageError: with the status and the reason.
        """
        found = image_format(body)
        if found is None:
            raise RequestImageError(
                400,
                f"not an image: the {len(body)} bytes start with no image signature "
                f"(accepted: {', '.join(self.formats)})",
            )
        if found not in self.formats:
            raise RequestImageError(
                415, f"image format {found} is not accepted (accepted: {', '.join(self.formats)})"
            )
        image_class = FORMATS[found][0]
        try:
            with image_class(io.BytesIO(body)) as img:
                width, height = img.size
                if width * height > self.max_pixels:
                    raise RequestImageError(
                        413,
                        f"image is {width} x {height} = {width * height:,} pixels, more than the "
                        f"limit of {self.max_pixels:,} (--max_pixels)",
                    )
                if min(width, height) < self.min_side:
                    raise RequestImageError(
                        400,
                        f"image is {width} x {height} pixels; its sides must be at least "
                        f"{self.min_side} (--min_side)",
                    )
                rgb = img.convert("RGB")  # as cascade predict decodes a file, then its mode
        except RequestImageError:
            raise
        except Exception as err:  # noqa: BLE001 - every decoder failure is the sender's file
            text = str(err).splitlines()[0][:120] if str(err) else ""
            raise RequestImageError(
                400, f"unreadable {found} image: {type(err).__name__}: {text}"
            ) from None
        image = eval_resize_crop(self.size, self.crop_pct, self.interpolation)(
            rgb.convert(self.mode)
        )
        pixels = np.array(image, dtype=np.uint8)
        return pixels[:, :, None] if pixels.ndim == 2 else pixels

    def to_batch(self, images: Sequence[np.ndarray], device: str | torch.device = "cpu"):
        """The normalised N x C x H x W float batch of prepared images ([`prepare`][]), the
        same tensor ``ToTensor`` and the datasets' normalisation make of the same image.

        Args:
            images: prepared images, each ``size`` x ``size`` x channels ``uint8``.
            device: where the batch is made.
        """
        x = torch.stack([torch.from_numpy(np.ascontiguousarray(a)) for a in images])
        x = x.permute(0, 3, 1, 2).contiguous().to(device=device, dtype=torch.float32).div(255)
        mean = torch.tensor(self.mean, device=device).view(1, -1, 1, 1)
        std = torch.tensor(self.std, device=device).view(1, -1, 1, 1)
        return (x - mean) / std
