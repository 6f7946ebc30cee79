"""The members a cascade checkpoint embeds, as plain data: one *member spec* per member.

A cascade checkpoint (``cascade.ckpt``) holds every member's weights (``state_dict`` keys
``members.<k>.*``). To rebuild the members from it alone (copied to another machine, no member
file beside it), it also records, in ``hyper_parameters["member_specs"]`` (``MEMBER_SPECS``),
what each member file held besides its weights::

    {"name": "m0",                              # the member's name (its run folder)
     "path": "outputs/.../m0/checkpoints/last.ckpt",  # where the file was at calibration
     "sha256": "9f8e...",                       # the file's SHA-256 (hex), its fingerprint
     "hyper_parameters": {"model_name": "resnet10t", "num_classes": 10, "in_chans": 1, ...},
     "member_input": {"resolution": 32, "normalization": {...}, ...}}

Only strings, numbers, booleans, None, lists and dicts: the checkpoint loads with
``torch.load(weights_only=True)``, and nothing is unpickled. ``check_member_specs`` refuses
a spec that cannot be used, in one line naming the file and the field, before any member is
built; ``window_cascades.lightning_modules.member_checkpoint`` writes (``member_spec``) and
builds (``build_member``) them.
"""

from __future__ import annotations

import re
from pathlib import Path

from window_cascades.cascade.field_checks import FieldError, integer, mapping, sequence
from window_cascades.lightning_modules.input_options import INTERPOLATIONS
from window_cascades.lightning_modules.member_input import INPUT_KEY, MemberInput

MEMBER_SPECS = "member_specs"  # cascade checkpoint hyper_parameters: the embedded members
SPEC_HPARAMS = "hyper_parameters"  # a spec's MemberModule arguments
_SHA256 = re.compile(r"[0-9a-f]{64}")


def member_name(path: str | Path) -> str:
    """A member's short name from its checkpoint path: the run folder of
    ``<run>/checkpoints/last.ckpt`` (the pipeline's layout, e.g. ``m0``), else the file's stem.

    >>> member_name("outputs/quickstart/members/m0/checkpoints/last.ckpt")
    'm0'
    >>> member_name("/models/b0.ckpt")
    'b0'
    """
    path = Path(path)
    if path.parent.name == "checkpoints" and path.parent.parent.name:
        return path.parent.parent.name
    return path.stem


def spec_names(specs: list[dict]) -> list[str]:
    """The members' names, in cascade order (``m1``, ``m2``, ... where a spec has none)."""
    return [str(s.get("name") or f"m{k + 1}") for k, s in enumerate(specs)]


def check_member_specs(specs: object, where: str, count: int | None = None) -> list[dict]:
    """Refuse embedded members that cannot be rebuilt, before any is.

    Each spec must be a mapping with ``hyper_parameters`` (``model_name`` a timm model name,
    ``num_classes`` an integer >= 2, ``in_chans`` an integer >= 1, ``resize`` ``bilinear`` or
    ``bicubic`` when given), a ``member_input`` record that
    ``window_cascades.lightning_modules.member_input.MemberInput.restored`` reads, and a
    ``sha256`` of 64 hex digits (or None).

    Args:
        specs: the value of ``hyper_parameters.member_specs``.
        where: the file they were read from, for messages.
        count: the number of members the checkpoint's weights hold (None: not checked).

    Returns:
        the specs, as a list.

    Raises:
        FieldError: naming ``where`` and the field (``member_specs[k].<field>``).
    """
    import timm

    specs = sequence(specs, where, MEMBER_SPECS)
    if count is not None and len(specs) != count:
        raise FieldError(
            f"{where}: field '{MEMBER_SPECS}' describes {len(specs)} member(s), but the "
            f"checkpoint's weights hold {count}"
        )
    for k, spec in enumerate(specs):
        field = f"{MEMBER_SPECS}[{k}]"
        spec = mapping(spec, where, field)
        hparams = mapping(spec.get(SPEC_HPARAMS), where, f"{field}.{SPEC_HPARAMS}")
        name = hparams.get("model_name")
        if not isinstance(name, str) or not timm.is_model(name.split(".")[0]):
            raise FieldError(
                f"{where}: field '{field}.{SPEC_HPARAMS}.model_name' must be a timm model name "
                f"(this timm {timm.__version__} knows it), got {name!r}"
            )
        integer(hparams.get("num_classes"), where, f"{field}.{SPEC_HPARAMS}.num_classes", 2)
        in_chans = integer(hparams.get("in_chans"), where, f"{field}.{SPEC_HPARAMS}.in_chans", 1)
        resize = hparams.get("resize", "bilinear")
        if resize not in (*INTERPOLATIONS, "auto"):
            raise FieldError(
                f"{where}: field '{field}.{SPEC_HPARAMS}.resize' must be one of "
                f"{list(INTERPOLATIONS)}, got {resize!r}"
            )
        record = spec.get(INPUT_KEY)
        if record is not None:
            mapping(record, where, f"{field}.{INPUT_KEY}")
            if record.get("resolution") is not None:
                integer(record["resolution"], where, f"{field}.{INPUT_KEY}.resolution", 1)
            try:
                MemberInput().restored(record, in_chans)
            except (ValueError, TypeError, KeyError) as err:
                raise FieldError(f"{where}: field '{field}.{INPUT_KEY}': {err}") from None
        digest = spec.get("sha256")
        if digest is not None and not (isinstance(digest, str) and _SHA256.fullmatch(digest)):
            raise FieldError(
                f"{where}: field '{field}.sha256' must be 64 hex digits or null, got "
                f"{str(digest)[:70]!r}"
            )
    return list(specs)
