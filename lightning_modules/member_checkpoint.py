"""Member checkpoints on disk: read safely (``weights_only``), checked, and loaded."""

from __future__ import annotations

import contextvars
import inspect
from pathlib import Path

import torch

from lightning_modules.member import MemberModule


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
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - any unreadable file is the same user error
        raise ValueError(
            f"{path}: not a readable checkpoint ({type(err).__name__}: {err})"
        ) from None
    if not isinstance(ckpt, dict) or "state_dict" not in ckpt or "hyper_parameters" not in ckpt:
        raise ValueError(f"{path}: not a MemberModule checkpoint (no state_dict/hyper_parameters)")
    saved = ckpt["hyper_parameters"].get("model_name")
    if model_name is not None and saved != model_name:
        raise ValueError(f"{path} holds a {saved!r} member; this run builds {model_name!r}")
    return ckpt


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
    # built in an empty context: inside a LightningCLI run Lightning's context variable of
    # "given hyperparameters" would otherwise hand this member the cascade's hparams
    member = contextvars.Context().run(MemberModule, **hparams)
    try:
        member.load_state_dict(ckpt["state_dict"])
        member.on_load_checkpoint(ckpt)
    except RuntimeError as err:
        raise ValueError(
            f"{path}: weights do not fit {hparams.get('model_name')!r}: {err}"
        ) from None
    return member.eval()
