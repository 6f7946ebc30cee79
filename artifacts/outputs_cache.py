"""The outputs cache: what the offline evaluator needs of the logits, a few numbers per sample.

Every policy, metric, operating point and bootstrap resample of the offline evaluator reads, per
sample and ensemble prefix (the first k members of the cascade order), only the prefix's
per-sample outputs (``SampleOutputs``, the sufficient statistics of every metric): the score's
confidence, the top-label probability, whether the arg-max is the target, the target's
probability and the sum of squared probabilities (33 bytes, against 2,000 bytes of float16
logits per sample and member at 1,000 classes). The cache computes them once from the members'
logits, read a block of rows at a time ([`window_cascades.artifacts.logits_rows`][]), and stores
them per dataset and member order in a safetensors file; later runs read that file and no
logits at all. A million samples of three members at 1,000 classes (6 GB of float16 logits) are
evaluated holding 0.1 GB of outputs instead of the logits.

Layout: ``<cache>/<dataset>/<m0+m1+m2>-<key>.safetensors`` with tensors ``targets`` and, for
each stage k (1-based), ``k.confidence``, ``k.top_prob``, ``k.correct``, ``k.target_prob`` and
``k.sum_sq``; its header holds the format and the key. The key is the SHA-256 of the format,
the score, the temperatures, the block size and, per member, the logits file's resolved path,
size, modification time (ns) and caching run: logits cached again, edited or moved give a new
key, so a stale file is never read (it is rewritten). Files are written to a temporary name and
renamed.

The values equal those computed from the logits in memory (the same functions over the same
blocks of ``ROWS_PER_CHUNK`` rows), so results are identical either way. Scores the ensemble
state computes itself are served (``msp``, ``entropy``, ``mutual_information``, ``max_logit``,
``energy``); scores with parameters chosen on data, scores of features and the headroom
estimate read logits or features and are refused with ``--outputs-cache``.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, fields
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from window_cascades.artifacts.atomic import write_with
from window_cascades.artifacts.experiment_logits import (
    check_labelled,
    check_members_agree,
    load_ensemble_logits,
)
from window_cascades.artifacts.logits_rows import LogitsRows, file_identity, open_logits_rows
from window_cascades.artifacts.member_meta import load_member_meta
from window_cascades.cascade.prepared_experiment import (
    ROWS_PER_CHUNK,
    PreparedExperiment,
    prefix_outputs,
    prepare_from_outputs,
)
from window_cascades.cascade.sample_outputs import SampleOutputs
from window_cascades.cascade.stage_scores import Temperatures, fit_temperatures, member_states
from window_cascades.uncertainty.score_registry import check_state_score
from window_cascades.vocabulary.roles import DatasetRoles

FORMAT = "window-cascades-outputs/1"
"""The format written in every cache file's header (a file of another format is rewritten)."""
STORED = tuple(f.name for f in fields(SampleOutputs) if f.name != "exit_stage")
"""The per-sample fields stored per stage (the exit stage of a prefix's outputs is k)."""


def check_cached_score(score: str) -> None:
    """Refuse a score the outputs cache cannot serve: one combined from each member's own
    scores (features, or logits with parameters or standardised) or with parameters chosen on
    data; those read logits or features at evaluation time.

    Args:
        score: a registered score's name.

    Raises:
        ValueError: naming the score and what to do instead.
    """
    check_state_score(score, CACHE_NAME)


CACHE_NAME = "the outputs cache (--outputs-cache)"


def outputs_key(
    sources: list[dict], dataset: str, score: str, temperatures: Temperatures | None, rows: int
) -> str:
    """The cache key of one dataset's outputs (hex SHA-256, see the module docstring).

    Args:
        sources: per member in cascade order, the logits file's identity
            (``window_cascades.artifacts.logits_rows.file_identity`` plus its generation).
        dataset: the dataset's name.
        score: the confidence score.
        temperatures: the temperatures applied, or None.
        rows: the block size the outputs are computed in.
    """
    record = {
        "format": FORMAT,
        "dataset": dataset,
        "score": score,
        "temperatures": temperatures.to_dict() if temperatures else None,
        "rows": rows,
        "sources": sources,
    }
    return hashlib.sha256(json.dumps(record, sort_keys=True).encode()).hexdigest()


@dataclass
class CachedOutputs:
    """One dataset's cached outputs: the prefixes' outputs, the targets, where they are stored and
    whether they were read from the cache (False: computed from the logits now)."""

    outputs: list[SampleOutputs]
    targets: torch.Tensor
    path: Path
    reused: bool


def compute_outputs(
    files: list[LogitsRows],
    score: str,
    temperatures: Temperatures | None = None,
    rows: int = ROWS_PER_CHUNK,
) -> tuple[list[SampleOutputs], set[tuple[int, int]]]:
    """Every prefix's outputs on one dataset from the members' logits read ``rows`` at a time.

    Args:
        files: every member's opened logits in cascade order (same samples, same order).
        score: the confidence score.
        temperatures: temperatures to apply, or None.
        rows: the block size.

    Returns:
        (per stage the outputs, the pairs (i, j) of members whose logits are identical on every
        row: the same model twice).
    """
    targets = files[0].targets
    n = files[0].num_rows
    m = len(files)
    parts, identical = [], {(i, j) for i in range(m) for j in range(i + 1, m)}
    for a in range(0, max(n, 1), rows):
        b = min(n, a + rows)
        logits = [f.read(a, b) for f in files]
        identical = {(i, j) for i, j in identical if torch.equal(logits[i], logits[j])}
        states = member_states(logits, temperatures, score)
        parts.append(prefix_outputs(states, score, targets[a:b]))
        del logits, states
    outputs = [SampleOutputs.concat([p[k] for p in parts]) for k in range(len(files))]
    return outputs, identical


def _write(path: Path, outputs: list[SampleOutputs], targets: torch.Tensor, meta: dict) -> None:
    tensors = {"targets": targets.contiguous()}
    for k, out in enumerate(outputs, start=1):
        for name in STORED:
            tensors[f"{k}.{name}"] = getattr(out, name).contiguous()
    write_with(path, lambda tmp: save_file(tensors, str(tmp), metadata=meta))


def _read(path: Path, key: str, stages: int, n: int) -> tuple[list[SampleOutputs], torch.Tensor]:
    """The stored outputs, or ValueError when the file is not of this key and shape."""
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
            if meta.get("format") != FORMAT or meta.get("key") != key:
                raise ValueError("another format or key")
            targets = f.get_tensor("targets")
            outputs = []
            for k in range(1, stages + 1):
                values = {name: f.get_tensor(f"{k}.{name}") for name in STORED}
                exit_stage = torch.full((n,), k, dtype=torch.long)
                outputs.append(SampleOutputs(exit_stage=exit_stage, **values))
    except (SafetensorError, OSError, KeyError) as err:
        raise ValueError(str(err)) from None
    if targets.shape != (n,) or any(getattr(o, s).shape != (n,) for o in outputs for s in STORED):
        raise ValueError("shapes differ from the logits'")
    return outputs, targets


def dataset_outputs(
    logits_dir: str | Path,
    members: list[str],
    dataset: str,
    score: str,
    cache_dir: str | Path,
    temperatures: Temperatures | None = None,
    generations: dict[str, str | None] | None = None,
    num_classes: dict[str, int] | None = None,
    rows: int = ROWS_PER_CHUNK,
    distinct: bool = False,
) -> CachedOutputs:
    """One dataset's prefix outputs for the cascade order ``members``: read from the cache when a
    file of this key is there, else computed from the logits block by block and written.

    Args:
        logits_dir: the cached logits' folder.
        members: the members in cascade order.
        dataset: the dataset's name.
        score: the confidence score (see [`check_cached_score`][]).
        cache_dir: the outputs cache's folder.
        temperatures: temperatures to apply, or None.
        generations: each member's caching run from its ``meta.json`` (as
            ``window_cascades.artifacts.experiment_logits.load_ensemble_logits``).
        num_classes: each member's class count from its ``meta.json``.
        rows: the block size.
        distinct: refuse members whose logits are identical here (checked on the held-out
            split, as when the logits are read whole).
    """
    generations, num_classes = generations or {}, num_classes or {}
    files = [
        open_logits_rows(logits_dir, m, dataset, generations.get(m), m in generations)
        for m in members
    ]
    check_members_agree(
        logits_dir,
        dataset,
        members,
        [f.path for f in files],
        [f.num_classes for f in files],
        [f.targets for f in files],
        num_classes,
    )
    sources = [
        {"member": m, **file_identity(f.path), "generation": f.generation}
        for m, f in zip(members, files, strict=True)
    ]
    key = outputs_key(sources, dataset, score, temperatures, rows)
    path = Path(cache_dir) / dataset / f"{'+'.join(members)}-{key[:16]}.safetensors"
    n = files[0].num_rows
    if path.is_file():
        try:
            outputs, targets = _read(path, key, len(members), n)
            if torch.equal(targets, files[0].targets):
                return CachedOutputs(outputs, targets, path, True)
        except ValueError:
            pass  # not of these logits (or damaged): computed again and replaced below
    outputs, identical = compute_outputs(files, score, temperatures, rows)
    for i, j in sorted(identical) if distinct else ():
        raise ValueError(
            f"members {members[i]!r} and {members[j]!r} have identical logits on {dataset!r} "
            "(the same model twice?): their ensemble is the single model at a higher cost; "
            "give distinct members"
        )
    meta = {"format": FORMAT, "key": key, "dataset": dataset, "members": "+".join(members)}
    _write(path, outputs, files[0].targets, meta)
    return CachedOutputs(outputs, files[0].targets, path, False)


def default_cache_dir(logits_dir: str | Path) -> Path:
    """The outputs cache's default folder: ``<logits-dir>/.outputs``."""
    return Path(logits_dir) / ".outputs"


def prepare_from_cache(
    logits_dir: str | Path,
    members: list[str],
    roles: DatasetRoles,
    stage_macs: list[float],
    score: str,
    cache_dir: str | Path,
    temperature_scaling: bool = False,
    mixture_ratio: float = 1.0,
    temperatures: Temperatures | None = None,
) -> tuple[PreparedExperiment, dict[str, CachedOutputs]]:
    """Prepare an evaluation of the cascade order ``members`` from the outputs cache
    (written first where missing or stale), never holding more than a block of logits.

    Args:
        logits_dir: the cached logits' folder.
        members: the members in cascade order.
        roles: the datasets' roles (the evaluated ones are read).
        stage_macs: MACs per member, in cascade order.
        score: the confidence score (see [`check_cached_score`][]).
        cache_dir: the outputs cache's folder.
        temperature_scaling: fit temperatures on the held-out split first (its logits are then
            read whole, as without the cache).
        mixture_ratio: OOD : ID ratio of the unlabelled test mixture.
        temperatures: temperatures already fitted for this order (skips the fit).

    Returns:
        (the prepared experiment, per dataset its cache record).
    """
    roles = DatasetRoles(roles)
    check_cached_score(score)
    metas = {
        m: load_member_meta(logits_dir, m)
        for m in members
        if (Path(logits_dir) / m / "meta.json").is_file()
    }
    classes = {m: meta["num_classes"] for m, meta in metas.items()}
    generations = {m: meta.get("generation") for m, meta in metas.items()}
    if temperature_scaling and temperatures is None:
        held = load_ensemble_logits(logits_dir, members, roles.heldout, generations, classes)
        temperatures = fit_temperatures(held.logits, held.targets)
        del held
    found = {
        name: dataset_outputs(
            logits_dir,
            members,
            name,
            score,
            cache_dir,
            temperatures,
            generations,
            classes,
            distinct=name == roles.heldout,
        )
        for name in roles.evaluated()
    }
    targets = {name: s.targets for name, s in found.items()}
    evaluated = DatasetRoles({name: roles[name] for name in found})
    check_labelled({n: _Targets(t) for n, t in targets.items()}, evaluated)
    outputs = {name: s.outputs for name, s in found.items()}
    prepared = prepare_from_outputs(
        outputs, targets, roles, stage_macs, score, temperatures, mixture_ratio
    )
    return prepared, found


@dataclass
class _Targets:
    """The part of ``EnsembleLogits`` that ``check_labelled`` reads."""

    targets: torch.Tensor

    @property
    def num_samples(self) -> int:
        return self.targets.numel()


__all__ = [
    "FORMAT",
    "CachedOutputs",
    "check_cached_score",
    "compute_outputs",
    "dataset_outputs",
    "default_cache_dir",
    "prepare_from_cache",
    "outputs_key",
]
