"""Statistics of the training split, fitted once per member and cached beside its features:
``<dir>/<member>/stats/<statistic>.safetensors``.

Each file's header records what it was fitted from (``fingerprint``): the schema, the
caching run's ``generation``, the training dataset's name and the SHA-256 of its features file,
the SHA-256 of the head and of the member's checkpoint (from ``meta.json``), and the parameter
values it was fitted at (ReAct's percentiles). A file is reused only when all of these match
(a parametrised one when it holds every value asked); otherwise the statistic is fitted again
and the file replaced atomically. A cache folder that cannot be written keeps the statistics in
memory for the run. Statistics registered with ``stored=False`` (the KNN bank, as large as the
features and quick to rebuild) are never written.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from window_cascades.artifacts.atomic import write_with
from window_cascades.artifacts.cached_features import HEAD_FILE, features_file
from window_cascades.artifacts.cached_logits import file_sha256
from window_cascades.uncertainty.feature_statistics import TrainInputs, fit_statistics
from window_cascades.uncertainty.score_registry import statistic_entry

STATS_FOLDER = "stats"
SCHEMA = "1"
FINGERPRINT_KEY = "fingerprint"


@dataclass(frozen=True)
class MemberSource:
    """Where a member's training statistics come from.

    Attributes:
        logits_dir: the cache's root.
        member: the member's folder.
        train_dataset: the dataset with role ``train``.
        generation: the caching run (``meta.json``), or None for files made elsewhere.
        checkpoint_sha256: the member's checkpoint digest (``meta.json``), or None.
    """

    logits_dir: Path
    member: str
    train_dataset: str
    generation: str | None = None
    checkpoint_sha256: str | None = None

    @property
    def folder(self) -> Path:
        return Path(self.logits_dir) / self.member


def fingerprint(source: MemberSource) -> dict:
    """What a member's statistics are fitted from (the header of every statistics file)."""
    head = next(
        (source.folder / f"{HEAD_FILE}{s}" for s in (".safetensors", ".npz")
         if (source.folder / f"{HEAD_FILE}{s}").is_file()),
        None,
    )  # fmt: skip
    train = features_file(source.logits_dir, source.member, source.train_dataset)
    return {
        "schema": SCHEMA,
        "generation": source.generation,
        "train_dataset": source.train_dataset,
        "train_sha256": file_sha256(train),
        "head_sha256": file_sha256(head) if head is not None else None,
        "checkpoint_sha256": source.checkpoint_sha256,
    }


def _load(path: Path, expected: dict, values: tuple | None) -> dict[str, torch.Tensor] | None:
    """The statistic in ``path`` when fitted from ``expected`` (at every one of ``values``)."""
    if not path.is_file():
        return None
    try:
        with safe_open(str(path), framework="pt") as f:
            header = json.loads((f.metadata() or {}).get(FINGERPRINT_KEY, "null"))
            tensors = {key: f.get_tensor(key) for key in f.keys()}
    except (SafetensorError, OSError, ValueError):
        return None  # unreadable: fitted again and replaced
    if not isinstance(header, dict):
        return None
    stored_values = header.pop("values", None)
    if header != expected:
        return None
    if values is not None and not set(values) <= set(stored_values or ()):
        return None
    return tensors


def _save(path: Path, tensors: dict[str, torch.Tensor], header: dict) -> bool:
    """Write the statistic; False when the folder cannot be written (kept in memory)."""
    metadata = {FINGERPRINT_KEY: json.dumps(header, sort_keys=True)}
    data = {k: v.contiguous() for k, v in tensors.items()}
    try:
        write_with(path, lambda tmp: save_file(data, str(tmp), metadata=metadata))
    except OSError:
        return False
    return True


def member_statistics(
    source: MemberSource,
    names: list[str],
    train: TrainInputs,
    values: dict[str, tuple] | None = None,
) -> dict[str, dict[str, torch.Tensor]]:
    """The statistics ``names`` of one member (and those they require): read from
    ``stats/`` when fitted from the same training features, head, checkpoint and caching run,
    else fitted on ``train`` and written there.

    Args:
        source: where the member's files are.
        names: statistic names, each after those it requires
            (``window_cascades.uncertainty.score_registry.statistics_for``).
        train: the member's training features, labels and head.
        values: per parametrised statistic, the parameter values needed.

    Returns:
        Every statistic by name.
    """
    values = values or {}
    expected = fingerprint(source)
    folder = source.folder / STATS_FOLDER
    loaded: dict[str, dict[str, torch.Tensor]] = {}
    for name in names:
        entry = statistic_entry(name)
        if entry.stored:
            asked = values.get(name)
            found = _load(folder / f"{name}.safetensors", expected, asked)
            if found is not None and all(r in loaded for r in entry.requires):
                loaded[name] = found
    fitted = fit_statistics(names, train, values, loaded)
    for name in names:
        entry = statistic_entry(name)
        if entry.stored and name not in loaded:
            asked = values.get(name)
            _save(folder / f"{name}.safetensors", fitted[name], {**expected, "values": asked})
    return fitted
