"""Cascade checkpoints on disk (``cascade.ckpt``): read safely and checked before use.

[`read_cascade_checkpoint`][] is what ``evaluate_cascade.py test|predict --ckpt_path`` runs
before anything is built or written: the file is read with ``weights_only=True`` (a pickled
object is never unpickled), and a file that cannot be read (truncated, pickled, another
format) or whose fitted cascade or data input cannot be applied is refused in one line naming
the file (and the field). Lightning would otherwise print torch's traceback, which suggests
``weights_only=False``, or apply NaN policy bounds with exit status 0.
"""

from __future__ import annotations

import re
from pathlib import Path

import torch

from window_cascades.cascade.field_checks import (
    FieldError,
    finite_number,
    integer,
    mapping,
    sequence,
)
from window_cascades.cascade.fitted import CHECKPOINT_KEY
from window_cascades.cascade.fitted_checks import check_fitted_cascade
from window_cascades.lightning_modules.member_specs import MEMBER_SPECS, check_member_specs

__all__ = [
    "DATA_INPUT_KEY",
    "check_data_input",
    "check_fitted_cascade",
    "check_loaded_cascade",
    "checkpoint_members",
    "embedded_members",
    "load_checkpoint_file",
    "read_cascade_checkpoint",
]

DATA_INPUT_KEY = "data_input"
"""The entry of a cascade checkpoint that records the data's normalisation and crop."""


def load_checkpoint_file(path: str | Path, what: str = "checkpoint") -> dict:
    """``torch.load(path, weights_only=True)`` on the CPU, any failure as one line.

    Raises:
        FileNotFoundError: naming the path.
        ValueError: naming the path, when the file is truncated, corrupt, holds pickled
            objects or is not a dict.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{what} not found: {path}")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - any unreadable file is the same user error
        raise ValueError(
            f"{path}: not a readable {what} ({_load_failure(err)}); give a file written by this "
            "project"
        ) from None
    if not isinstance(ckpt, dict):
        raise ValueError(f"{path}: not a {what} (holds a {type(ckpt).__name__}, not a dict)")
    return ckpt


def _load_failure(err: Exception) -> str:
    """Why ``torch.load(weights_only=True)`` failed, in a few words (torch's own message is
    several lines and suggests ``weights_only=False``, which would run the file's code)."""
    text = str(err)
    if "Unsupported global" in text or "GLOBAL" in text:
        return "it holds pickled Python objects, which are never loaded"
    if "central directory" in text or "zip archive" in text:
        return "incomplete: truncated, or not a zip archive written by torch.save"
    detail = text.split("WeightsUnpickler error:")[-1] if "WeightsUnpickler" in text else text
    lines = [line.strip() for line in detail.splitlines() if line.strip()]
    return f"not a file written by torch.save: {(lines or [type(err).__name__])[0][:120]}"


def check_data_input(data: object, where: str) -> None:
    """The normalisation (finite mean, positive finite std), crop, image size and resize mode
    of the images the cascade was calibrated on."""
    data = mapping(data, where, DATA_INPUT_KEY)
    norm = data.get("normalization")
    if norm is not None:
        norm = mapping(norm, where, f"{DATA_INPUT_KEY}.normalization")
        for part, low in (("mean", None), ("std", 0.0)):
            field = f"{DATA_INPUT_KEY}.normalization.{part}"
            for c, v in enumerate(sequence(norm.get(part), where, field)):
                finite_number(v, where, f"{field}[{c}]", low, None, low_open=low is not None)
    if data.get("crop_pct") is not None:
        finite_number(data["crop_pct"], where, f"{DATA_INPUT_KEY}.crop_pct", 0.0, 1.0, True)
    if data.get("input_size") is not None:
        integer(data["input_size"], where, f"{DATA_INPUT_KEY}.input_size", 1)
    if data.get("interpolation") not in (None, "bilinear", "bicubic"):
        raise FieldError(
            f"{where}: field '{DATA_INPUT_KEY}.interpolation' must be 'bilinear' or 'bicubic', "
            f"got {data['interpolation']!r}"
        )


def checkpoint_members(state_dict: dict) -> int | None:
    """How many members a cascade checkpoint's weights hold (keys ``members.<k>.``)."""
    found = {int(m.group(1)) for k in state_dict if (m := re.match(r"members\.(\d+)\.", str(k)))}
    return len(found) or None


def read_cascade_checkpoint(path: str | Path) -> dict:
    """Read a cascade checkpoint safely and check what a run applies from it.

    Raises:
        FileNotFoundError: naming the path.
        ValueError: naming the path (and field): an unreadable file, no ``state_dict``, a
            fitted cascade or data input that cannot be applied (see
            [`window_cascades.cascade.fitted_checks.check_fitted_cascade`][]).
    """
    ckpt = load_checkpoint_file(path, "cascade checkpoint")
    where = str(path)
    state = ckpt.get("state_dict")
    if not isinstance(state, dict):
        raise FieldError(f"{where}: not a cascade checkpoint (no 'state_dict')")
    if not isinstance(ckpt.get("pytorch-lightning_version"), str):
        raise FieldError(
            f"{where}: not a Lightning checkpoint (field 'pytorch-lightning_version' missing)"
        )
    if ckpt.get(CHECKPOINT_KEY) is not None:
        check_fitted_cascade(ckpt[CHECKPOINT_KEY], where, checkpoint_members(state))
    if ckpt.get(DATA_INPUT_KEY) is not None:
        check_data_input(ckpt[DATA_INPUT_KEY], where)
    _check_embedded_members(ckpt, where)
    return ckpt


def embedded_members(ckpt: dict) -> list[dict] | None:
    """The members a cascade checkpoint embeds (``hyper_parameters.member_specs``), or None
    for a checkpoint written before members were embedded."""
    specs = (ckpt.get("hyper_parameters") or {}).get(MEMBER_SPECS)
    return list(specs) if specs else None


def _check_embedded_members(ckpt: dict, where: str) -> None:
    hparams = ckpt.get("hyper_parameters")
    if isinstance(hparams, dict) and hparams.get(MEMBER_SPECS):
        check_member_specs(
            hparams[MEMBER_SPECS], where, checkpoint_members(ckpt.get("state_dict") or {})
        )


def check_loaded_cascade(ckpt: dict, where: str) -> None:
    """Check a cascade checkpoint Lightning restores (also one loaded outside the command, with
    ``load_from_checkpoint``): its fitted cascade, when not empty, and its data input.

    Raises:
        FieldError: naming ``where`` and the field.
    """
    data = ckpt.get(CHECKPOINT_KEY)
    if data:
        check_fitted_cascade(data, where, checkpoint_members(ckpt.get("state_dict") or {}))
    if ckpt.get(DATA_INPUT_KEY) is not None:
        check_data_input(ckpt[DATA_INPUT_KEY], where)
