"""Cached features beside cached logits: ``<dir>/<member>/features/<dataset>.safetensors`` and
the member's final linear layer, ``<dir>/<member>/head.safetensors``.

A member's features (its penultimate, pooled activations: what its final linear layer reads)
are cached by the same run as its logits (``member predict`` with ``--cache.features true``),
with the same ``generation`` id in every header, rows in the logits' order. ``features`` is
N x D (float32, or float16 with ``--cache.features_dtype float16``: half the disk, scores within
about 4e-3 relative, rankings unchanged); ``head.safetensors`` holds ``weight`` (C x D) and
``bias`` (C), so that logits = features @ weight.T + bias.

Features made elsewhere are read too: the same files without a generation, or
``features/<dataset>.npz`` (array ``features``) or ``features/<dataset>.npy``, and
``head.safetensors`` or ``head.npz`` (arrays ``weight`` and ``bias``); NumPy files are read with
``allow_pickle=False``. The reader checks shapes, finiteness, that every dataset has as many
rows as its logits, and that the head reproduces the cached held-out logits from the features
(which catches a head of another model and rows in another order).
"""

from __future__ import annotations

from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from window_cascades.artifacts.atomic import write_with
from window_cascades.artifacts.cached_logits import GENERATION_KEY, read_numpy
from window_cascades.uncertainty.feature_scores import LinearHead

FEATURES_FOLDER = "features"
HEAD_FILE = "head"
FEATURE_DTYPES = {"float32": torch.float32, "float16": torch.float16}
"""The precisions features are cached in (``--cache.features_dtype``)."""
SUFFIXES = (".safetensors", ".npz", ".npy")


def save_cached_features(
    directory: str | Path,
    member: str,
    dataset: str,
    features: torch.Tensor,
    generation: str | None = None,
    dtype: str = "float32",
) -> Path:
    """Write ``<directory>/<member>/features/<dataset>.safetensors`` atomically.

    Args:
        directory: the cache's root.
        member: the member's folder name.
        dataset: the dataset's name.
        features: N x D features.
        generation: the caching run's id (as in the logits' files).
        dtype: ``float32`` or ``float16``.

    Returns:
        The file's path.

    Raises:
        ValueError: an unknown dtype, or features that do not fit it (float16 overflows above
            65,504).
    """
    if dtype not in FEATURE_DTYPES:
        raise ValueError(f"features dtype {dtype!r}: expected one of {list(FEATURE_DTYPES)}")
    path = Path(directory) / member / FEATURES_FOLDER / f"{dataset}.safetensors"
    stored = features.detach().to(FEATURE_DTYPES[dtype]).contiguous()
    check_features(stored, str(path))
    metadata = {GENERATION_KEY: generation} if generation else None
    write_with(path, lambda tmp: save_file({"features": stored}, str(tmp), metadata=metadata))
    return path


def save_head(
    directory: str | Path, member: str, head: LinearHead, generation: str | None = None
) -> Path:
    """Write ``<directory>/<member>/head.safetensors`` (``weight``, ``bias``, float32)."""
    path = Path(directory) / member / f"{HEAD_FILE}.safetensors"
    tensors = {
        "weight": head.weight.detach().float().contiguous(),
        "bias": head.bias.detach().float().contiguous(),
    }
    metadata = {GENERATION_KEY: generation} if generation else None
    write_with(path, lambda tmp: save_file(tensors, str(tmp), metadata=metadata))
    return path


def check_features(features: torch.Tensor, where: str, rows: int | None = None) -> None:
    """Refuse features that are not a finite N x D float array (with ``rows`` rows)."""
    if features.ndim != 2 or not features.is_floating_point():
        raise ValueError(
            f"{where}: features must be an N x D float array, got shape {tuple(features.shape)} "
            f"of {features.dtype}"
        )
    if rows is not None and features.shape[0] != rows:
        raise ValueError(
            f"{where}: {features.shape[0]} rows of features, but the logits have {rows}: the "
            "features must be of the same samples in the same order"
        )
    bad = ~torch.isfinite(features)
    if bad.any():
        row = int(torch.nonzero(bad)[0, 0])
        hint = (
            " (float16 overflows above 65,504: cache them with --cache.features_dtype float32)"
            if features.dtype == torch.float16
            else ""
        )
        raise ValueError(
            f"{where}: features contain {int(bad.sum())} NaN/Inf values (first in row {row}){hint}"
        )


def _find(base: Path, stem: str, what: str) -> Path | None:
    found = [base / f"{stem}{s}" for s in SUFFIXES if (base / f"{stem}{s}").is_file()]
    if len(found) > 1:
        raise ValueError(f"{base}: {what} in several files ({', '.join(f.name for f in found)})")
    return found[0] if found else None


def _read(path: Path, generation: str | None, meta: Path) -> dict[str, torch.Tensor]:
    """The tensors of one file; a safetensors file of another caching run is refused."""
    if path.suffix != ".safetensors":
        arrays = read_numpy(path, "features", ("features", "weight", "bias"))
        if path.suffix == ".npz" and path.stem != HEAD_FILE:
            missing = {"features"} - set(arrays)
            if missing:
                raise ValueError(f"{path}: missing array 'features' (found {sorted(arrays)})")
        return arrays
    try:
        with safe_open(str(path), framework="pt") as f:
            found = (f.metadata() or {}).get(GENERATION_KEY)
            tensors = {key: f.get_tensor(key) for key in f.keys()}
    except (SafetensorError, OSError, ValueError) as err:
        raise ValueError(f"{path}: not a readable safetensors file ({err})") from None
    if generation is not None and found != generation:
        raise ValueError(
            f"{path}: written by another caching run than {meta} (generation {found or 'none'}, "
            f"meta.json says {generation}); cache this member's logits and features again"
        )
    return tensors


def has_features(directory: str | Path, member: str, dataset: str) -> bool:
    """Whether a features file of ``member`` on ``dataset`` exists (any supported format)."""
    base = Path(directory) / member / FEATURES_FOLDER
    return any((base / f"{dataset}{s}").is_file() for s in SUFFIXES)


def features_file(directory: str | Path, member: str, dataset: str) -> Path:
    """The one file holding ``member``'s features on ``dataset``.

    Raises:
        FileNotFoundError: naming the expected file and how to make it.
    """
    base = Path(directory) / member / FEATURES_FOLDER
    path = _find(base, dataset, f"features of {dataset!r}")
    if path is None:
        raise FileNotFoundError(
            f"cached features not found: {base / dataset}.safetensors (feature scores read the "
            "members' features: cache them with `member predict ... --cache.features true`, or "
            "write features/<dataset>.npz with an array 'features')"
        )
    return path


def load_cached_features(
    directory: str | Path,
    member: str,
    dataset: str,
    generation: str | None = None,
    rows: int | None = None,
) -> torch.Tensor:
    """One member's N x D features on one dataset (float16 and float32 kept as stored,
    bfloat16 and float64 as float32), checked.

    Args:
        directory: the cache's root.
        member: the member's folder.
        dataset: the dataset's name.
        generation: the caching run ``meta.json`` names (a file of another run is refused).
        rows: the number of samples its logits have (checked).
    """
    path = features_file(directory, member, dataset)
    tensors = _read(path, generation, Path(directory) / member / "meta.json")
    if "features" not in tensors:
        raise ValueError(f"{path}: missing tensor 'features' (found {sorted(tensors)})")
    features = tensors["features"]
    if features.is_floating_point() and features.dtype not in (torch.float16, torch.float32):
        features = features.float()
    check_features(features, str(path), rows)
    return features


def load_head(directory: str | Path, member: str, generation: str | None = None) -> LinearHead:
    """The member's final linear layer (``head.safetensors`` or ``head.npz``), float32.

    Raises:
        FileNotFoundError: no head file (the message says what reads it and how to write one).
        ValueError: missing or misshapen ``weight``/``bias``, or NaN/Inf values.
    """
    base = Path(directory) / member
    path = _find(base, HEAD_FILE, "the head")
    if path is None or path.suffix == ".npy":
        raise FileNotFoundError(
            f"final linear layer not found: {base / HEAD_FILE}.safetensors (react, ash, scale, "
            "vim and fdbd recompute logits from the features: cache them with --cache.features "
            "true, or write head.npz with arrays 'weight' (C x D) and 'bias' (C))"
        )
    tensors = _read(path, generation, base / "meta.json")
    for key in ("weight", "bias"):
        if key not in tensors:
            raise ValueError(f"{path}: missing tensor {key!r} (found {sorted(tensors)})")
    weight, bias = tensors["weight"].float(), tensors["bias"].float()
    if weight.ndim != 2 or bias.shape != (weight.shape[0],):
        raise ValueError(
            f"{path}: expected weight C x D and bias C, got {tuple(weight.shape)} and "
            f"{tuple(bias.shape)}"
        )
    if not (torch.isfinite(weight).all() and torch.isfinite(bias).all()):
        raise ValueError(f"{path}: weight or bias contain NaN/Inf")
    return LinearHead(weight, bias)


def check_head_reproduces_logits(
    head: LinearHead, features: torch.Tensor, logits: torch.Tensor, where: str
) -> None:
    """Refuse a head and features that do not give the cached logits (another model's head,
    rows in another order, features of another layer): the largest difference must stay below
    1e-3 (float32 features; 2e-2 for float16) of the logits' largest magnitude (at least 1).

    Raises:
        ValueError: naming ``where``, the difference and the tolerance.
    """
    if head.weight.shape[1] != features.shape[1]:
        raise ValueError(
            f"{where}: the head reads {head.weight.shape[1]} features, the cached features have "
            f"{features.shape[1]}"
        )
    if head.weight.shape[0] != logits.shape[1]:
        raise ValueError(
            f"{where}: the head gives {head.weight.shape[0]} classes, the logits have "
            f"{logits.shape[1]}"
        )
    rows = slice(0, min(4096, logits.shape[0]))
    recomputed = head.logits(features[rows].float())
    scale = max(1.0, float(logits[rows].abs().max()))
    tolerance = (2e-2 if features.dtype != torch.float32 else 1e-3) * scale
    worst = float((recomputed - logits[rows].double()).abs().max()) if logits.shape[0] else 0.0
    if worst > tolerance:
        raise ValueError(
            f"{where}: features @ weight.T + bias differ from the cached logits by up to "
            f"{worst:.3g} (tolerance {tolerance:.3g}): the head, the features and the logits are "
            "not of the same model and samples; cache them together again"
        )
