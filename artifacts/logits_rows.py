"""Cached logits read a block of rows at a time, never whole.

[`open_logits_rows`][] parses the header of a member's ``<dataset>.safetensors`` or
``<dataset>.npy`` file (JSON, or NumPy's header: nothing is unpickled, the dtype is checked
against an allow-list) and reads rows ``a:b`` straight from their byte offsets into a fresh
buffer. Unlike a memory map, whose touched pages stay in the process's resident memory until
it unmaps the file, only the block being read is held, so a member's 2 GB of logits are read
with a few megabytes. A ``.npz`` file (possibly compressed) is read whole and served from memory.

The checks are those of [`window_cascades.artifacts.cached_logits.load_cached_logits`][]: the
caching run (``generation``) against ``meta.json``, targets as integers in range, and, block by
block, finite logits (naming the file and the first bad row).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import torch

from window_cascades.artifacts.cached_logits import (
    GENERATION_KEY,
    KEPT_DTYPES,
    check_generation,
    check_logits,
    find_logits_file,
    load_cached_logits,
    read_numpy,
)

SAFETENSORS_FLOATS = {
    "F16": torch.float16,
    "BF16": torch.bfloat16,
    "F32": torch.float32,
    "F64": torch.float64,
}
"""Logits dtypes a safetensors header may name (anything else is refused)."""
SAFETENSORS_INTEGERS = {
    "I64": torch.int64,
    "I32": torch.int32,
    "I16": torch.int16,
    "I8": torch.int8,
    "U8": torch.uint8,
}
"""Targets dtypes a safetensors header may name."""
MAX_HEADER_BYTES = 100 * 2**20  # the format's own limit


@dataclass
class LogitsRows:
    """One member's logits on one dataset, read by blocks of rows.

    Attributes:
        path: the file.
        num_rows: N, the samples.
        num_classes: C.
        dtype: the stored logits dtype (float64 is served as float32, as when read whole).
        targets: the N targets (int64, -1 unlabelled), read whole (8 bytes per sample).
        generation: the caching run in the file's header (None: none, or not safetensors).
        offset: byte offset of row 0 in the file (None: ``in_memory`` serves the rows).
        in_memory: the logits when the file was read whole (``.npz``), else None.
    """

    path: Path
    num_rows: int
    num_classes: int
    dtype: torch.dtype
    targets: torch.Tensor
    generation: str | None
    offset: int | None = None
    in_memory: torch.Tensor | None = None

    def read(self, start: int, stop: int) -> torch.Tensor:
        """Rows ``start:stop`` (stop clipped to N) in the stored dtype (float64 as float32),
        checked finite.

        Args:
            start: first row.
            stop: one past the last row.
        """
        stop = min(stop, self.num_rows)
        if self.in_memory is not None:
            block = self.in_memory[start:stop]
        else:
            width = self.num_classes * self.dtype.itemsize
            buffer = bytearray((stop - start) * width)
            with open(self.path, "rb") as f:
                f.seek(self.offset + start * width)
                got = f.readinto(buffer)
            if got != len(buffer):
                raise ValueError(
                    f"{self.path}: truncated, rows {start}-{stop - 1} end past the file's end"
                )
            block = torch.frombuffer(buffer, dtype=self.dtype).view(stop - start, -1)
            if block.dtype not in KEPT_DTYPES:
                block = block.float()
        bad = ~torch.isfinite(block)
        if bad.any():
            row = start + int(torch.nonzero(bad)[0, 0])
            raise ValueError(f"{self.path}: logits contain NaN/Inf values (first in row {row})")
        return block


def _safetensors_layout(path: Path) -> tuple[dict, dict, int]:
    """(tensor entries, metadata, byte offset of the data) of a safetensors file's header."""
    try:
        with open(path, "rb") as f:
            size = int.from_bytes(f.read(8), "little")
            if not 0 < size <= MAX_HEADER_BYTES:
                raise ValueError(f"header length {size}")
            header = json.loads(f.read(size))
    except (OSError, ValueError, UnicodeDecodeError) as err:
        raise ValueError(f"{path}: not a readable safetensors file ({err})") from None
    if not isinstance(header, dict):
        raise ValueError(f"{path}: not a readable safetensors file (header is not an object)")
    metadata = header.pop("__metadata__", None) or {}
    return header, metadata, 8 + size


def _entry(path: Path, header: dict, key: str, dtypes: dict, data_start: int, file_size: int):
    """(dtype, shape, byte offset) of tensor ``key``, checked against the allow-list and the
    file's size."""
    if key not in header:
        raise ValueError(f"{path}: missing tensor {key!r} (found {sorted(header)})")
    entry = header[key]
    try:
        name, shape, (begin, end) = entry["dtype"], list(entry["shape"]), entry["data_offsets"]
    except (KeyError, TypeError, ValueError):
        raise ValueError(f"{path}: tensor {key!r} has a malformed header entry") from None
    if name not in dtypes:
        kind = "floating point" if key == "logits" else "integers"
        raise ValueError(f"{path}: {key!r} must be {kind}, got dtype {name}")
    dtype = dtypes[name]
    count = 1
    for n in shape:
        count *= int(n)
    if end - begin != count * dtype.itemsize or data_start + end > file_size:
        raise ValueError(f"{path}: tensor {key!r} does not fit its header (truncated file?)")
    return dtype, shape, data_start + begin


def _read_at(path: Path, offset: int, count: int, dtype: torch.dtype) -> torch.Tensor:
    buffer = bytearray(count * dtype.itemsize)
    with open(path, "rb") as f:
        f.seek(offset)
        f.readinto(buffer)
    return torch.frombuffer(buffer, dtype=dtype).clone()


def _open_safetensors(path: Path) -> LogitsRows:
    header, metadata, data_start = _safetensors_layout(path)
    size = path.stat().st_size
    dtype, shape, offset = _entry(path, header, "logits", SAFETENSORS_FLOATS, data_start, size)
    if len(shape) != 2:
        raise ValueError(f"{path}: logits must be N x C, got shape {tuple(shape)}")
    t_dtype, t_shape, t_offset = _entry(
        path, header, "targets", SAFETENSORS_INTEGERS, data_start, size
    )
    targets = _read_at(path, t_offset, int(t_shape[0]) if t_shape else 0, t_dtype).long()
    if t_shape != [shape[0]]:
        raise ValueError(f"{path}: targets must have shape ({shape[0]},), got {tuple(t_shape)}")
    generation = metadata.get(GENERATION_KEY) if isinstance(metadata, dict) else None
    return LogitsRows(path, shape[0], shape[1], dtype, targets, generation, offset)


def _open_npy(path: Path, dataset: str) -> LogitsRows:
    import numpy as np

    try:
        with open(path, "rb") as f:
            version = np.lib.format.read_magic(f)
            read_header = {
                (1, 0): np.lib.format.read_array_header_1_0,
                (2, 0): np.lib.format.read_array_header_2_0,
            }.get(version)
            if read_header is None:
                raise ValueError(f"NumPy format version {version}")
            shape, fortran_order, dtype = read_header(f)
            offset = f.tell()
    except (OSError, ValueError) as err:
        raise ValueError(f"{path}: not a readable NumPy file ({err})") from None
    if dtype.kind != "f" or dtype.hasobject:
        raise ValueError(f"{path}: 'logits' must be floating point, got dtype {dtype}")
    if len(shape) != 2:
        raise ValueError(f"{path}: logits must be N x C, got shape {tuple(shape)}")
    side = path.with_name(f"{dataset}.targets.npy")
    if side.is_file():
        targets = read_numpy(side, "targets")["targets"].long()
    else:
        targets = torch.full((shape[0],), -1)
    native = {2: torch.float16, 4: torch.float32, 8: torch.float64}.get(dtype.itemsize)
    if fortran_order or not dtype.isnative or native is None:  # rare: read whole
        loaded = read_numpy(path)["logits"]
        logits = loaded if loaded.dtype in KEPT_DTYPES else loaded.float()
        return LogitsRows(path, shape[0], shape[1], logits.dtype, targets, None, None, logits)
    if path.stat().st_size < offset + shape[0] * shape[1] * dtype.itemsize:
        raise ValueError(f"{path}: truncated, the logits end past the file's end")
    return LogitsRows(path, shape[0], shape[1], native, targets, None, offset)


def open_logits_rows(
    directory: str | Path,
    member: str,
    dataset: str,
    generation: str | None = None,
    meta_read: bool = False,
) -> LogitsRows:
    """Open one member's cached logits on one dataset for reading by blocks, after the checks
    that need no logits (see the module docstring; arguments as
    [`window_cascades.artifacts.cached_logits.load_cached_logits`][]).

    Args:
        directory: the cache root (``<directory>/<member>/<dataset>.<ext>``).
        member: the member's folder name.
        dataset: the dataset's name.
        generation: the caching run ``meta.json`` names.
        meta_read: ``meta.json`` was read.
    """
    path = find_logits_file(directory, member, dataset)
    if path.suffix == ".safetensors":
        rows = _open_safetensors(path)
    elif path.suffix == ".npy":
        rows = _open_npy(path, dataset)
    else:  # .npz: possibly compressed, read whole
        loaded = load_cached_logits(directory, member, dataset, generation, meta_read)
        n, c = loaded.logits.shape
        return LogitsRows(
            path, n, c, loaded.logits.dtype, loaded.targets, None, None, loaded.logits
        )
    check_generation(path, rows.generation, generation, meta_read, Path(directory) / member)
    # the checks of a whole read that need no logits: shape, classes, targets
    check_logits(torch.zeros(0, rows.num_classes), torch.zeros(0, dtype=torch.long), str(path))
    targets = rows.targets
    if targets.numel() and (targets.min() < -1 or targets.max() >= rows.num_classes):
        raise ValueError(
            f"{path}: targets must be -1 (unlabelled) or in [0, {rows.num_classes - 1}], "
            f"found values in [{int(targets.min())}, {int(targets.max())}]"
        )
    return rows


def file_identity(path: Path) -> dict:
    """What identifies a logits file's contents without reading them: its resolved path, size,
    modification time (ns) and caching run."""
    stat = os.stat(path)
    return {"file": str(Path(path).resolve()), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}
