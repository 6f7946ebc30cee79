"""A member's ``<dir>/<member>/meta.json`` beside its cached logits
(``window_cascades.artifacts.cached_logits``): its model name, MACs and params (batch 1, at the
input size), the number of classes, the SHA-256 of its checkpoint and the caching run's
``generation``; written atomically, read checked."""

from __future__ import annotations

import math
from pathlib import Path

from window_cascades.artifacts.atomic import write_json
from window_cascades.artifacts.cached_logits import GENERATION_KEY
from window_cascades.cascade.field_checks import FieldError, integer, load_json_file, mapping


def save_member_meta(directory: str | Path, member: str, meta: dict) -> Path:
    """Write ``<directory>/<member>/meta.json`` atomically."""
    path = Path(directory) / member / "meta.json"
    write_json(path, meta)
    return path


def load_member_meta(directory: str | Path, member: str) -> dict:
    """Read ``<directory>/<member>/meta.json`` and check its required fields."""
    path = Path(directory) / member / "meta.json"
    if not path.is_file():
        raise FileNotFoundError(f"member metadata not found: {path}")
    meta = load_json_file(path)
    check_member_meta(meta, str(path))
    return meta


MAX_MACS = 1e18  # per sample; far above any model, low enough that sums stay finite


def check_member_meta(meta: object, where: str) -> None:
    """Refuse a ``meta.json`` whose fields cannot be used, naming ``where`` and the field:
    ``model_name`` a string, ``macs`` a finite number in (0, 1e18] (per sample; 1 counts in
    member units), ``params`` and ``num_classes`` integers (>= 0 and >= 1).

    Raises:
        FieldError: a ``ValueError`` naming the file and field.
    """
    meta = mapping(meta, where, "meta.json")
    for key in ("model_name", "macs", "params", "num_classes"):
        if key not in meta:
            raise FieldError(f"{where}: missing field {key!r}")
    if not isinstance(meta["model_name"], str):
        raise FieldError(
            f"{where}: field 'model_name' must be a string, got {meta['model_name']!r}"
        )
    macs = meta["macs"]
    if not (
        isinstance(macs, (int, float))
        and not isinstance(macs, bool)
        and math.isfinite(float(macs) if abs(macs) < 1e308 else math.inf)
        and 0 < macs <= MAX_MACS
    ):
        raise FieldError(
            f"{where}: field 'macs' must be a positive number, finite and at most {MAX_MACS:g} "
            f"(MACs per sample, or 1 to count in member units), got {macs!r}"
        )
    integer(meta["params"], where, "params", 0)
    integer(meta["num_classes"], where, "num_classes", 1)
    generation = meta.get(GENERATION_KEY)
    if generation is not None and not (isinstance(generation, str) and generation):
        raise FieldError(
            f"{where}: field {GENERATION_KEY!r} must be a non-empty string (the caching run's "
            f"id), got {generation!r}"
        )
