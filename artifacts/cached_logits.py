"""Cached logits: ``<dir>/<member>/<dataset>.safetensors`` plus ``<dir>/<member>/meta.json``.

Each safetensors file holds ``logits`` (N x C, float) and ``targets`` (N, int64, -1 where
unlabelled). ``meta.json`` (``window_cascades.artifacts.member_meta``) holds the member's model
name, MACs and params (batch 1, at the input size), the number of classes and the SHA-256 of its
checkpoint. Loading never unpickles and checks everything a downstream computation relies on.

A member's cached logits are one unit: each caching run draws a ``generation`` id, stores it in
every safetensors file's header metadata and, last, in ``meta.json``. A run interrupted between
files leaves files of two generations (or new files beside the old ``meta.json``); the reader
refuses such a mix, naming the file and ``meta.json``, instead of evaluating it.

Logits made elsewhere are read too (``meta.json`` is then optional, see
``window_cascades.artifacts.experiment_logits``): ``<dataset>.safetensors`` with
float16/bfloat16/float32/ float64 logits, ``<dataset>.npz`` with arrays ``logits`` and ``targets``,
or ``<dataset>.npy`` with the logits alone (targets from ``<dataset>.targets.npy`` when present,
else unlabelled). NumPy files are read with ``allow_pickle=False``; logits are kept in their stored
precision (float64 read as float32) and computed on in float32.
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from window_cascades.artifacts.atomic import write_with


@dataclass
class CachedLogits:
    """Logits and targets of one member on one dataset.

    Attributes:
        logits: N x C logits.
        targets: N integer labels (int64), -1 for an unlabelled sample.
    """

    logits: torch.Tensor
    targets: torch.Tensor


def file_sha256(path: str | Path) -> str:
    """Hex SHA-256 of a file's bytes.

    Args:
        path: the file.
    """
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def check_logits(logits: torch.Tensor, targets: torch.Tensor, where: str) -> None:
    """Raise ValueError naming ``where`` unless logits are finite N x C and targets fit them.

    Args:
        logits: N x C floating-point logits.
        targets: N integer labels (-1 unlabelled), each below C.
        where: what to name in the message (the file, or the argument).
    """
    if logits.ndim != 2:
        raise ValueError(f"{where}: logits must be N x C, got shape {tuple(logits.shape)}")
    if logits.shape[1] < 2:
        raise ValueError(
            f"{where}: logits have {logits.shape[1]} class(es); a classifier's confidence needs "
            "at least 2 (with one, accuracy is 1 and every ranking metric meaningless)"
        )
    if targets.shape != (logits.shape[0],):
        raise ValueError(
            f"{where}: targets must have shape ({logits.shape[0]},), got {tuple(targets.shape)}"
        )
    bad = ~torch.isfinite(logits)
    if bad.any():
        row = int(torch.nonzero(bad)[0, 0])
        raise ValueError(
            f"{where}: logits contain {int(bad.sum())} NaN/Inf values (first in row {row})"
        )
    if targets.numel() and (targets.min() < -1 or targets.max() >= logits.shape[1]):
        raise ValueError(
            f"{where}: targets must be -1 (unlabelled) or in [0, {logits.shape[1] - 1}], "
            f"found values in [{int(targets.min())}, {int(targets.max())}]"
        )


def new_generation() -> str:
    """A fresh id for one caching run of one member (see the module docstring)."""
    return uuid.uuid4().hex


def save_cached_logits(
    directory: str | Path,
    member: str,
    dataset: str,
    logits: torch.Tensor,
    targets: torch.Tensor,
    generation: str | None = None,
) -> Path:
    """Write ``<directory>/<member>/<dataset>.safetensors`` atomically; return its path.

    ``generation``: the caching run's id ([`new_generation`][]), stored in the file's header
    and checked against ``meta.json`` when read back.

    Args:
        directory: the logits folder (one sub-folder per member).
        member: the member's folder name.
        dataset: the dataset's name (the file's stem).
        logits: N x C logits (stored in their dtype: float16, bfloat16, float32 or float64).
        targets: N integer labels, -1 for an unlabelled sample.
        generation: the caching run's id ([`new_generation`][]), stored in the file's header and
            checked against ``meta.json`` when read back; None: none.
    """
    path = Path(directory) / member / f"{dataset}.safetensors"
    check_logits(logits, targets, str(path))
    tensors = {"logits": logits.float().contiguous(), "targets": targets.long().contiguous()}
    metadata = {GENERATION_KEY: generation} if generation else None
    write_with(path, lambda tmp: save_file(tensors, str(tmp), metadata=metadata))
    return path


GENERATION_KEY = "generation"


LOGITS_SUFFIXES = (".safetensors", ".npz", ".npy")


def find_logits_file(directory: str | Path, member: str, dataset: str) -> Path:
    """The one file holding ``member``'s logits on ``dataset`` (any supported format).

    Args:
        directory: the logits folder.
        member: the member's folder name.
        dataset: the dataset's name.
    """
    base = Path(directory) / member
    found = [base / f"{dataset}{suffix}" for suffix in LOGITS_SUFFIXES]
    found = [f for f in found if f.is_file()]
    if not found:
        raise FileNotFoundError(
            f"cached logits not found: {base / dataset}.safetensors (expected "
            f"<dir>/<member>/<dataset> with one of {', '.join(LOGITS_SUFFIXES)})"
        )
    if len(found) > 1:
        raise ValueError(
            f"{base}: logits of {dataset!r} in several files ({', '.join(f.name for f in found)})"
            "; keep one"
        )
    return found[0]


def _read_safetensors(path: Path) -> tuple[dict[str, torch.Tensor], str | None]:
    """The file's tensors and the caching run's ``generation`` from its header (or None)."""
    try:
        with safe_open(str(path), framework="pt") as f:
            generation = (f.metadata() or {}).get(GENERATION_KEY)
            return {key: f.get_tensor(key) for key in f.keys()}, generation
    except (SafetensorError, OSError, ValueError) as err:
        raise ValueError(f"{path}: not a readable safetensors file ({err})") from None


def logits_generation(path: str | Path) -> str | None:
    """The caching run (``generation``) in a ``.safetensors`` file's header, read without its
    tensors; None for a file without one (or of another format).

    Args:
        path: a cached logits or features file.
    """
    path = Path(path)
    if path.suffix != ".safetensors":
        return None
    try:
        with safe_open(str(path), framework="pt") as f:
            return (f.metadata() or {}).get(GENERATION_KEY)
    except (SafetensorError, OSError, ValueError):
        return None


def read_numpy(
    path: Path, what: str = "logits", float_keys: tuple[str, ...] = ("logits",)
) -> dict[str, torch.Tensor]:
    """The arrays of a ``.npz`` file (a ``.npy`` file's one array named ``what``), never
    unpickled; the arrays named in ``float_keys`` must be floating point, the others integer.

    Args:
        path: the ``.npz`` or ``.npy`` file.
        what: the name a ``.npy`` file's one array is given.
        float_keys: the arrays that must be floating point.
    """
    import numpy as np

    try:
        loaded = np.load(path, allow_pickle=False)
        arrays = dict(loaded) if path.suffix == ".npz" else {what: loaded}
    except ValueError as err:
        if "pickle" in str(err):
            raise ValueError(
                f"{path}: holds pickled objects, which are never loaded; save plain numeric "
                "arrays (np.savez(path, logits=..., targets=...))"
            ) from None
        raise ValueError(f"{path}: not a readable NumPy file ({err})") from None
    except (OSError, EOFError) as err:
        raise ValueError(f"{path}: not a readable NumPy file ({err})") from None
    out = {}
    for key, array in arrays.items():
        kind = "f" if key in float_keys else "iu"
        if array.dtype.kind not in kind:
            expected = "floating point" if key in float_keys else "integer"
            raise ValueError(f"{path}: {key!r} must be {expected}, got dtype {array.dtype}")
        out[key] = torch.from_numpy(np.ascontiguousarray(array))
    return out


KEPT_DTYPES = (torch.float16, torch.bfloat16, torch.float32)


def check_generation(
    path: Path, found: str | None, generation: str | None, meta_read: bool, member_dir: Path
) -> None:
    """Refuse a logits file of another caching run than the member's ``meta.json`` names.

    Args:
        path: the logits file.
        found: the generation in its header (None: none).
        generation: the generation ``meta.json`` names (None: none).
        meta_read: ``meta.json`` was read (so a file with a generation while it names none is
            refused too).
        member_dir: the member's folder (holding ``meta.json``).
    """
    meta = member_dir / "meta.json"
    if generation is not None and found != generation:
        raise ValueError(
            f"{path}: written by another caching run than {meta} (generation {found or 'none'}, "
            f"meta.json says {generation}): this member's cached logits mix two runs, one of "
            "them interrupted; cache this member's logits again"
        )
    if meta_read and generation is None and found is not None:
        raise ValueError(
            f"{path}: written by caching run {found}, but {meta} names no generation (it is "
            "older than this file, or was edited): the member's cached logits and its meta.json "
            "are not of one run; cache this member's logits again"
        )


def load_cached_logits(
    directory: str | Path,
    member: str,
    dataset: str,
    generation: str | None = None,
    meta_read: bool = False,
) -> CachedLogits:
    """Read and check one member's logits on one dataset, in any supported format (never
    unpickles); logits come back in their stored dtype when it is float16, bfloat16 or float32
    (float64 as float32: every computation upcasts to float32, so keeping float16 logits as
    they are halves their memory), targets as int64.

    Args:
        directory: the cache root (``<directory>/<member>/<dataset>.<ext>``).
        member: the member's folder name.
        dataset: the dataset's name.
        generation: the caching run ``meta.json`` names; a file written by another run (or by
            none, i.e. without a generation) is refused as a mix of two runs.
        meta_read: ``meta.json`` was read and names ``generation`` (None: it names none), so a
            file with a generation while ``meta.json`` has none is refused too (a ``meta.json``
            of an older run, or one edited, would otherwise turn the check off).
    """
    path = find_logits_file(directory, member, dataset)
    if path.suffix == ".safetensors":
        tensors, found = _read_safetensors(path)
    else:
        found = None
    check_generation(path, found, generation, meta_read, Path(directory) / member)
    if path.suffix != ".safetensors":
        tensors = read_numpy(path)
        side = path.with_name(f"{dataset}.targets.npy")
        if path.suffix == ".npy":
            if side.is_file():
                tensors["targets"] = read_numpy(side, "targets")["targets"]
            else:
                tensors["targets"] = torch.full((tensors["logits"].shape[0],), -1)
    for key in ("logits", "targets"):
        if key not in tensors:
            raise ValueError(f"{path}: missing tensor {key!r} (found {sorted(tensors)})")
    if tensors["targets"].is_floating_point() or tensors["targets"].dtype == torch.bool:
        raise ValueError(
            f"{path}: field 'targets' must be integers (class indices, -1 unlabelled), got dtype "
            f"{tensors['targets'].dtype} (never truncated to integers)"
        )
    if not tensors["logits"].is_floating_point():
        raise ValueError(f"{path}: logits must be floating point, got {tensors['logits'].dtype}")
    logits, targets = tensors["logits"], tensors["targets"].long()
    if logits.dtype not in KEPT_DTYPES:
        logits = logits.float()
    check_logits(logits, targets, str(path))
    return CachedLogits(logits, targets)
