"""Member checkpoints on disk: read safely (``weights_only``), checked, and loaded."""

from __future__ import annotations

import inspect
from pathlib import Path

import torch

from window_cascades.cascade.field_checks import FieldError, integer, mapping
from window_cascades.lightning_modules.cascade_checkpoint import load_checkpoint_file
from window_cascades.lightning_modules.member import MemberModule


def read_member_checkpoint(path: str | Path, model_name: str | None = None) -> dict:
    """Read a member checkpoint safely (``weights_only``) and check what it holds.

    Raises:
        FileNotFoundError: naming the path, when the checkpoint does not exist.
        ValueError: naming the path, when the file is unreadable (truncated, corrupt), not a
            member checkpoint, or (with ``model_name``) of another architecture.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"member checkpoint not found: {path}")
    ckpt = load_checkpoint_file(path, "checkpoint")
    if not isinstance(ckpt, dict) or "state_dict" not in ckpt or "hyper_parameters" not in ckpt:
        raise ValueError(f"{path}: not a MemberModule checkpoint (no state_dict/hyper_parameters)")
    check_member_checkpoint(ckpt, str(path))
    saved = ckpt["hyper_parameters"].get("model_name")
    if model_name is not None and saved != model_name:
        raise ValueError(f"{path} holds a {saved!r} member; this run builds {model_name!r}")
    return ckpt


def check_member_checkpoint(ckpt: dict, where: str) -> None:
    """Refuse a member checkpoint whose hyperparameters or weights cannot be used: a model
    name that is not a string, a class or channel count that is not a positive integer,
    weights that are not tensors or hold NaN/inf (every output would be NaN).

    Raises:
        FieldError: naming ``where`` and the field.
    """
    hparams = mapping(ckpt["hyper_parameters"], where, "hyper_parameters")
    if not isinstance(hparams.get("model_name"), str):
        raise FieldError(
            f"{where}: field 'hyper_parameters.model_name' must be a timm model name, got "
            f"{hparams.get('model_name')!r}"
        )
    for key in ("num_classes", "in_chans"):
        if key in hparams:
            integer(hparams[key], where, f"hyper_parameters.{key}", 1)
    for key, value in mapping(ckpt["state_dict"], where, "state_dict").items():
        if not isinstance(value, torch.Tensor):
            raise FieldError(
                f"{where}: field 'state_dict.{key}' must be a tensor, got {type(value).__name__}"
            )
        if value.is_floating_point() and not bool(torch.isfinite(value).all()):
            raise FieldError(
                f"{where}: field 'state_dict.{key}' holds {int((~torch.isfinite(value)).sum())} "
                "NaN/inf value(s)"
            )


def load_member(path: str | Path) -> MemberModule:
    """Load a member from a Lightning checkpoint without unpickling arbitrary objects.

    Raises:
        FileNotFoundError: naming the path, when the checkpoint does not exist.
        ValueError: when the file is not a member checkpoint or its weights do not fit.
    """
    path = Path(path)
    ckpt = read_member_checkpoint(path)
    accepted = set(inspect.signature(MemberModule.__init__).parameters) - {"self"}
    hparams = {k: v for k, v in ckpt["hyper_parameters"].items() if k in accepted}
    hparams["pretrained"], hparams["weights"] = False, None  # the checkpoint carries them
    member = MemberModule.rebuilt(hparams)  # no dry forward pass, no Lightning context
    try:
        member.load_state_dict(ckpt["state_dict"])
        member.on_load_checkpoint(ckpt)
    except RuntimeError as err:
        raise ValueError(
            f"{path}: weights do not fit {hparams.get('model_name')!r}: {err}"
        ) from None
    return member.eval()
