"""A member's input options, checked: the resolution, normalisation, crop and resize mode a
member is configured with (``model.*``), and the normalisation and crop a datamodule serves.

Each function takes a value as written in a config or a datamodule and returns it checked and
in one form (per-channel float tuples, a fraction, a size), or raises a ``ValueError`` that
names the option. [`window_cascades.lightning_modules.member_input`][] builds a member's input from
them.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

Normalization = tuple[tuple[float, ...], tuple[float, ...]]  # (mean, std), one per channel
INTERPOLATIONS = ("bilinear", "bicubic")
"""The interpolations a member's resize may use."""


def as_normalization(value, in_chans: int, where: str) -> Normalization:
    """``{"mean": [...], "std": [...]}`` or ``(mean, std)`` as per-channel float tuples.

    A single value is used for every channel; ``std`` must be positive.

    Raises:
        ValueError: naming ``where`` and what was expected.
    """
    if isinstance(value, dict):
        unknown = set(value) - {"mean", "std"}
        if unknown or len(value) != 2:
            raise ValueError(f"{where} takes {{mean: [...], std: [...]}}, got keys {sorted(value)}")
        value = (value["mean"], value["std"])
    if not isinstance(value, Sequence) or isinstance(value, str) or len(value) != 2:
        raise ValueError(f"{where} must be 'auto' or {{mean: [...], std: [...]}}, got {value!r}")
    out = []
    for name, part in zip(("mean", "std"), value, strict=True):
        values = [part] if isinstance(part, (int, float)) else list(part)
        if len(values) == 1:
            values = values * in_chans
        if len(values) != in_chans or not all(isinstance(v, (int, float)) for v in values):
            raise ValueError(
                f"{where}: {name} must be {in_chans} number(s), one per input channel, got {part!r}"
            )
        out.append(tuple(float(v) for v in values))
    if min(out[1]) <= 0:
        raise ValueError(f"{where}: std must be positive, got {list(out[1])}")
    return out[0], out[1]


def timm_normalization(model: torch.nn.Module, in_chans: int) -> Normalization:
    """The mean and std of the model's own timm data config (``pretrained_cfg``); for a grey
    member (``in_chans`` 1) of an RGB config, the mean over channels (timm sums the first
    convolution's RGB weights for one channel)."""
    cfg = getattr(model, "pretrained_cfg", None) or {}
    mean, std = cfg.get("mean"), cfg.get("std")
    if mean is None or std is None:
        raise ValueError(
            f"{type(model).__name__} has no mean/std in its timm data config: give "
            "model.normalization as {mean: [...], std: [...]}"
        )
    if in_chans != len(mean):
        mean, std = [sum(mean) / len(mean)], [sum(std) / len(std)]
    return as_normalization((mean, std), in_chans, "model.normalization auto")


def check_interpolation(value, where: str) -> str:
    """One of [`INTERPOLATIONS`][]."""
    if value not in INTERPOLATIONS:
        raise ValueError(f"{where} must be one of {list(INTERPOLATIONS)} or 'auto', got {value!r}")
    return value


def check_resolution(
    model: torch.nn.Module, name: str, in_chans: int, size: int, try_it: bool = True
) -> None:
    """Refuse a size that is not a positive number of pixels, and (``try_it``) one the model
    cannot take (one dry forward pass at that size).

    Raises:
        ValueError: naming ``model.resolution``, the model and its reason.
    """
    if not isinstance(size, int) or isinstance(size, bool) or size < 1:
        raise ValueError(
            f"model.resolution must be a positive number of pixels or 'auto', got {size!r}"
        )
    if not try_it:
        return
    was_training = model.training
    try:
        with torch.no_grad():
            model.eval()(torch.zeros(1, in_chans, size, size))
    except Exception as err:  # noqa: BLE001 - every architecture fails in its own way
        raise ValueError(
            f"{name} cannot take {size} x {size} px inputs (model.resolution): "
            f"{type(err).__name__}: {str(err).splitlines()[0][:200]}"
        ) from None
    finally:
        model.train(was_training)


def check_crop_pct(value, where: str) -> float:
    """A crop fraction in (0, 1]."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value <= 1:
        raise ValueError(f"{where} must be a fraction in (0, 1] or 'auto', got {value!r}")
    return float(value)


def normalization_dict(normalization: Normalization | None) -> dict | None:
    """``{"mean": [...], "std": [...]}`` (for checkpoints and JSON), or None."""
    if normalization is None:
        return None
    return {"mean": list(normalization[0]), "std": list(normalization[1])}


def datamodule_crop_pct(datamodule) -> float | None:
    """The datamodule's ``crop_pct`` (the fraction of the source its evaluation images show;
    optional in the data contract), checked; None when it does not say."""
    value = getattr(datamodule, "crop_pct", None)
    if value is None:
        return None
    return check_crop_pct(value, f"{type(datamodule).__name__}.crop_pct")


def datamodule_normalization(datamodule, in_chans: int) -> Normalization | None:
    """The datamodule's ``normalization`` ((mean, std) per channel of the images it serves;
    optional in the data contract), checked; None when it does not say."""
    value = getattr(datamodule, "normalization", None)
    if value is None:
        return None
    return as_normalization(value, in_chans, f"{type(datamodule).__name__}.normalization")
