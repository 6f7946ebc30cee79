"""Member checkpoints on disk: read safely (``weights_only``), checked, and loaded; and the
members a cascade checkpoint embeds (``window_cascades.lightning_modules.member_specs``),
written from a loaded member and rebuilt without its file."""

from __future__ import annotations

import inspect
from pathlib import Path

import torch

from window_cascades.cascade.field_checks import FieldError, integer, mapping
from window_cascades.lightning_modules.cascade_checkpoint import load_checkpoint_file
from window_cascades.lightning_modules.input_options import INTERPOLATIONS
from window_cascades.lightning_modules.member import MemberModule
from window_cascades.lightning_modules.member_input import INPUT_KEY, MemberInput
from window_cascades.lightning_modules.member_specs import SPEC_HPARAMS, member_name


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


def _accepted_hparams(hparams: dict) -> dict:
    """The hyperparameters ``MemberModule`` takes, with the weights' sources switched off (the
    checkpoint carries the weights)."""
    accepted = set(inspect.signature(MemberModule.__init__).parameters) - {"self"}
    kept = {k: v for k, v in hparams.items() if k in accepted}
    kept["pretrained"], kept["weights"] = False, None
    return kept


def load_member(path: str | Path) -> MemberModule:
    """Load a member from a Lightning checkpoint without unpickling arbitrary objects.

    Raises:
        FileNotFoundError: naming the path, when the checkpoint does not exist.
        ValueError: when the file is not a member checkpoint or its weights do not fit.
    """
    path = Path(path)
    ckpt = read_member_checkpoint(path)
    hparams = _accepted_hparams(ckpt["hyper_parameters"])
    member = MemberModule.rebuilt(hparams)  # no dry forward pass, no Lightning context
    try:
        member.load_state_dict(ckpt["state_dict"])
        member.on_load_checkpoint(ckpt)
    except RuntimeError as err:
        raise ValueError(
            f"{path}: weights do not fit {hparams.get('model_name')!r}: {err}"
        ) from None
    return member.eval()


def member_spec(member: MemberModule, path: str | Path, sha256: str | None) -> dict:
    """The plain-data record of a loaded member that a cascade checkpoint embeds
    (``window_cascades.lightning_modules.member_specs``): its name, file, SHA-256, the
    ``MemberModule`` arguments that rebuild its model (not compiled, no weights to fetch) and
    the input it recorded at fit.

    Args:
        member: the member as ``load_member`` returned it (before a cascade sets its data
            input).
        path: the member's checkpoint file.
        sha256: the file's SHA-256 (hex).

    Returns:
        a dict of strings, numbers, booleans, None, lists and dicts.
    """
    hparams = _accepted_hparams(dict(member.hparams))
    hparams["compile"] = False
    hparams["resize"] = member.input.interpolation  # "auto" resolved, as the member applies it
    return {
        "name": member_name(path),
        "path": str(path),
        "sha256": sha256,
        SPEC_HPARAMS: hparams,
        INPUT_KEY: member.input.record(),
    }


def build_member(spec: dict) -> MemberModule:
    """The member a spec (``member_spec``, checked by
    ``window_cascades.lightning_modules.member_specs.check_member_specs``) describes, in
    eval mode, with untrained weights: the cascade checkpoint's ``members.<k>.*`` weights are
    loaded over it."""
    hparams = {**_accepted_hparams(spec[SPEC_HPARAMS]), "compile": False}
    member = MemberModule.rebuilt(hparams)
    member.input = member.input.restored(spec.get(INPUT_KEY), hparams["in_chans"])
    return member.eval()


def recorded_member_input(hparams: dict, record: dict | None) -> MemberInput:
    """A member's input from its hyperparameters (channels, resize mode) and the input record
    it keeps (``member_input``), without building the model: what ``cascade predict`` and
    ``serve`` need to prepare new images as those the cascade was calibrated on (see
    ``window_cascades.lightning_modules.cascade_data_input.prediction_input``)."""
    resize = hparams.get("resize", "bilinear")
    interpolation = resize if resize in INTERPOLATIONS else "bilinear"
    return MemberInput(interpolation=interpolation).restored(record, int(hparams["in_chans"]))


def checkpoint_member_inputs(specs: list[dict] | None, member_paths: list[str]) -> list:
    """The members' inputs: from ``member_paths`` when given (member files, read safely),
    else from a cascade checkpoint's embedded members (``specs``)."""
    if member_paths:
        found = []
        for path in member_paths:
            ckpt = read_member_checkpoint(path)
            found.append(recorded_member_input(ckpt["hyper_parameters"], ckpt.get(INPUT_KEY)))
        return found
    return [recorded_member_input(s[SPEC_HPARAMS], s.get(INPUT_KEY)) for s in specs or []]
