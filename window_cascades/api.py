"""The public Python API: the calls a researcher makes from a notebook or their own project.

Everything here is importable from ``window_cascades`` itself (``window_cascades.evaluate``, ...),
loaded on first use so that ``import window_cascades`` imports no torch. The calls build on the
library's modules, which stay importable under their own names:

- [`Logits`][] holds every member's logits on every dataset, with labels, dataset roles and
  member costs; [`load_logits`][] reads cached logits (``member predict``, the pipeline's
  ``logits/`` folder) into it;
- [`evaluate`][] fits the policies on the held-out split and returns the tidy metric rows of
  ``metrics.csv`` with the fitted cascade (``window_cascades.cascade.offline``);
- [`fit_cascade`][] fits the policies only; [`save_fitted`][] and [`load_fitted`][] write
  and read ``fitted_cascade.json``;
- [`decide`][] applies a fitted cascade to logits held in memory, or a calibrated cascade
  ([`load_cascade`][], a ``cascade.ckpt``) to a batch of images: one outcome per sample
  (``accept``, ``reject`` or ``ood``);
- [`register_policy`][], [`register_metric`][], [`register_score`][] (a confidence score,
  ``window_cascades.uncertainty.score_registry``) and [`register_statistic`][] (a statistic of
  the training split a score reads) add your own entries to the registries, and
  [`load_plugins`][] loads plugin files by path (an ``import`` of your module is enough).

Installed plugins (entry-point group ``window_cascades.plugins``) are loaded when this module
is.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from window_cascades.artifacts.cached_logits import KEPT_DTYPES, check_logits
from window_cascades.artifacts.experiment_logits import (
    check_distinct_members,
    check_labelled,
    load_experiment,
)
from window_cascades.artifacts.experiment_logits import member_macs as experiment_member_macs
from window_cascades.artifacts.fitted_file import read_fitted_cascade, write_fitted_cascade
from window_cascades.artifacts.outputs_cache import default_cache_dir, prepare_from_cache
from window_cascades.cascade import offline
from window_cascades.cascade.bootstrap import Bootstrap
from window_cascades.cascade.decisions import decide_logits
from window_cascades.cascade.evaluation import ROW_FIELDS
from window_cascades.cascade.fitted import FittedCascade
from window_cascades.cascade.metric_registry import MetricSettings, register_metric
from window_cascades.cascade.policy_registry import (
    PolicySettings,
    check_policies,
    policy_entries,
    register_policy,
)
from window_cascades.cascade.prepared_experiment import EnsembleLogits, prepare_experiment
from window_cascades.commands.offline_plan import reported_with_target
from window_cascades.commands.offline_preflight import check_members
from window_cascades.commands.plugins import load_entry_point_plugins, load_plugins
from window_cascades.uncertainty.score_registry import register_score, register_statistic
from window_cascades.vocabulary.roles import DatasetRoles

if TYPE_CHECKING:
    from window_cascades.lightning_modules.cascade_module import CascadeModule

__all__ = [
    "Logits",
    "LogitsFolder",
    "Evaluation",
    "load_logits",
    "evaluate",
    "fit_cascade",
    "save_fitted",
    "load_fitted",
    "load_cascade",
    "decide",
    "register_policy",
    "register_metric",
    "register_score",
    "register_statistic",
    "load_plugins",
]

ArrayLike = Any
"""A numpy array or a torch tensor (anything ``torch.as_tensor`` takes)."""


def _as_logits(value: ArrayLike, where: str) -> torch.Tensor:
    logits = torch.as_tensor(value)
    if not logits.is_floating_point():
        raise ValueError(f"{where}: logits must be floating point, got {logits.dtype}")
    return logits if logits.dtype in KEPT_DTYPES else logits.float()


def _as_labels(value: ArrayLike | None, n: int, where: str) -> torch.Tensor:
    if value is None:
        return torch.full((n,), -1, dtype=torch.long)
    labels = torch.as_tensor(value)
    if labels.is_floating_point() or labels.is_complex() or labels.dtype == torch.bool:
        raise ValueError(
            f"{where}: labels must be integers (class indices, -1 unlabelled), got dtype "
            f"{labels.dtype} (never truncated to integers)"
        )
    return labels.long()


class Logits:
    """Every member's logits on every dataset, with the labels, the dataset roles and the
    members' costs: what [`evaluate`][] and [`fit_cascade`][] take, and what
    [`load_logits`][] returns.

    Args:
        logits: dataset name -> one N x C array per member, in cascade order (numpy arrays or
            torch tensors, floating point; every member on the same N samples in the same
            order; float16, bfloat16 and float32 are kept, float64 becomes float32).
        roles: dataset name -> role, one of ``heldout`` (the held-out split the policies are
            fitted on), ``id``, ``shift`` and ``ood``; exactly one ``heldout`` and one ``id``,
            and a role for every dataset of ``logits``.
        labels: dataset name -> N class indices (integers; -1 for an unlabelled sample). A
            dataset without an entry is unlabelled, as an ``ood`` set is; ``heldout``, ``id``
            and ``shift`` sets need every label.
        member_macs: each member's cost per sample, in cascade order (MACs); None counts every
            member as 1 (costs in member evaluations).
        members: the members' names, in cascade order (default ``m0``, ``m1``, ...).

    Attributes:
        data: dataset name -> ``EnsembleLogits`` (``logits``: one tensor per member;
            ``targets``: the labels, int64, -1 unlabelled), the form
            ``window_cascades.cascade.offline`` evaluates.
        roles: the validated ``DatasetRoles``.
        member_macs: each member's cost per sample (list of floats).
        members: the members' names.

    Raises:
        ValueError: naming the dataset, member or field that does not fit (shapes, NaN/Inf,
            labels out of range, a labelled role with unlabelled samples, a dataset without a
            role, two identical members).

    Example:
        >>> import numpy as np
        >>> import window_cascades as wc
        >>> rng = np.random.default_rng(0)
        >>> labels = {"val": rng.integers(0, 3, 200), "test": rng.integers(0, 3, 300)}
        >>> member_logits = {
        ...     name: [rng.normal(size=(len(y), 3)) + 2 * np.eye(3)[y] for _ in range(2)]
        ...     for name, y in labels.items()
        ... }
        >>> logits = wc.Logits(member_logits, {"val": "heldout", "test": "id"}, labels)
        >>> logits.members, logits.member_macs, logits.data["test"].logits[1].shape
        (['m0', 'm1'], [1.0, 1.0], torch.Size([300, 3]))
    """

    def __init__(
        self,
        logits: Mapping[str, Sequence[ArrayLike]],
        roles: Mapping[str, str],
        labels: Mapping[str, ArrayLike | None] | None = None,
        member_macs: Sequence[float] | None = None,
        members: Sequence[str] | None = None,
    ):
        self.roles = DatasetRoles(roles)
        labels = dict(labels or {})
        unknown = sorted((set(self.roles) ^ set(logits)) | (set(labels) - set(logits)))
        if unknown:
            raise ValueError(
                f"datasets {unknown}: every dataset needs logits and a role (logits: "
                f"{sorted(logits)}, roles: {sorted(self.roles)}, labels: {sorted(labels)})"
            )
        counts = {name: len(per_member) for name, per_member in logits.items()}
        if len(set(counts.values())) != 1 or 0 in counts.values():
            raise ValueError(f"logits: every dataset needs the same members, got {counts}")
        num_members = next(iter(counts.values()))
        self.members = (
            list(members) if members is not None else [f"m{k}" for k in range(num_members)]
        )
        if len(self.members) != num_members or len(set(self.members)) != num_members:
            raise ValueError(f"members {self.members}: expected {num_members} distinct names")
        self.data: dict[str, EnsembleLogits] = {}
        for name in self.roles:
            per_member = [
                _as_logits(z, f"logits[{name!r}][{k}]") for k, z in enumerate(logits[name])
            ]
            n = per_member[0].shape[0] if per_member[0].ndim else 0
            targets = _as_labels(labels.get(name), n, f"labels[{name!r}]")
            for k, z in enumerate(per_member):
                check_logits(z, targets, f"logits[{name!r}][{k}] (labels[{name!r}])")
                if z.shape[1] != per_member[0].shape[1]:
                    raise ValueError(
                        f"logits[{name!r}][{k}]: {z.shape[1]} classes, member 0 has "
                        f"{per_member[0].shape[1]}"
                    )
            self.data[name] = EnsembleLogits(per_member, targets)
        classes = {name: d.logits[0].shape[1] for name, d in self.data.items()}
        if len(set(classes.values())) != 1:
            raise ValueError(f"logits: datasets have different class counts {classes}")
        check_labelled(self.data, self.roles)
        check_distinct_members(self.data[self.roles.heldout].logits, self.members)
        if member_macs is None:
            self.member_macs = [1.0] * num_members
        else:
            self.member_macs = [float(m) for m in member_macs]
            if len(self.member_macs) != num_members or not all(m > 0 for m in self.member_macs):
                raise ValueError(
                    f"member_macs {list(member_macs)}: expected {num_members} costs > 0, one per "
                    "member in cascade order"
                )

    def __repr__(self) -> str:
        sizes = ", ".join(
            f"{name} ({self.roles[name]}): {d.num_samples}" for name, d in self.data.items()
        )
        return f"Logits(members={self.members}, datasets: {sizes})"


@dataclass
class LogitsFolder:
    """Cached logits left on disk, evaluated through the outputs cache
    (``window_cascades.artifacts.outputs_cache``, ``evaluate-logits --outputs-cache``): what
    [`load_logits`][] returns with ``outputs_cache``. [`evaluate`][] and [`fit_cascade`][]
    read each dataset's per-sample outputs from the cache (computed from the logits a block of
    rows at a time the first time) instead of holding the logits.

    Attributes:
        logits_dir: the logits folder.
        members: the members, in cascade order.
        roles: dataset name -> role.
        member_macs: each member's cost per sample (MACs, or 1 each).
        cache_dir: the outputs cache's folder.

    Example:
        >>> import tempfile, torch
        >>> import window_cascades as wc
        >>> from window_cascades.artifacts.cached_logits import save_cached_logits
        >>> folder = tempfile.mkdtemp()
        >>> g = torch.Generator().manual_seed(0)
        >>> for member in ("m0", "m1"):
        ...     for dataset in ("val", "test"):
        ...         labels = torch.arange(400) % 4
        ...         logits = torch.randn(400, 4, generator=g) + 2 * torch.eye(4)[labels]
        ...         _ = save_cached_logits(folder, member, dataset, logits, labels)
        >>> roles = {"val": "heldout", "test": "id"}
        >>> on_disk = wc.load_logits(folder, ["m0", "m1"], roles, outputs_cache=True)
        >>> on_disk.cache_dir.name
        '.outputs'
        >>> result = wc.evaluate(on_disk, ["single", "ensemble"])  # writes the cache first
        >>> result.value("expected_macs", "ensemble")
        2.0
        >>> sorted(p.name for p in on_disk.cache_dir.iterdir())
        ['test', 'val']
    """

    logits_dir: Path
    members: list[str]
    roles: DatasetRoles
    member_macs: list[float]
    cache_dir: Path


def load_logits(
    logits_dir: str | Path,
    members: Sequence[str],
    roles: Mapping[str, str],
    member_macs: Mapping[str, float] | None = None,
    outputs_cache: bool | str | Path = False,
) -> Logits | LogitsFolder:
    """Read cached logits (``<logits_dir>/<member>/<dataset>.safetensors`` with ``meta.json``,
    as ``member predict`` and the pipeline write them; ``.npz``/``.npy`` files too) into a
    [`Logits`][].

    Args:
        logits_dir: the folder holding one sub-folder per member (e.g. the pipeline's
            ``outputs/quickstart/logits``).
        members: the member folders to read, in cascade order.
        roles: dataset name -> role (see [`Logits`][]); every dataset is read.
        member_macs: member name -> its cost per sample (MACs), overriding its ``meta.json``;
            None: each ``meta.json``'s, else every member counts 1.
        outputs_cache: for logits larger than memory: True (the cache in
            ``<logits_dir>/.outputs``) or the cache's folder; nothing is read now and a
            [`LogitsFolder`][] is returned (scores with parameters chosen on data are then
            refused by [`evaluate`][]).

    Returns:
        The logits, labels, roles and member costs, checked as the offline evaluator checks
        them (``window_cascades.artifacts.experiment_logits``; a file is never unpickled); with
        ``outputs_cache``, the folder to evaluate through the cache.

    Raises:
        FileNotFoundError: a member folder or a dataset's file is missing (the message names it).
        ValueError: a file that cannot be read or does not fit (naming the file and field).

    Example:
        >>> import tempfile, torch
        >>> import window_cascades as wc
        >>> from window_cascades.artifacts.cached_logits import save_cached_logits
        >>> folder = tempfile.mkdtemp()
        >>> g = torch.Generator().manual_seed(0)
        >>> for member in ("m0", "m1"):
        ...     for dataset in ("val", "test"):
        ...         labels = torch.arange(200) % 4
        ...         logits = torch.randn(200, 4, generator=g) + 2 * torch.eye(4)[labels]
        ...         _ = save_cached_logits(folder, member, dataset, logits, labels)
        >>> logits = wc.load_logits(folder, ["m0", "m1"], {"val": "heldout", "test": "id"})
        >>> logits.data["val"].targets[:6].tolist(), logits.member_macs
        ([0, 1, 2, 3, 0, 1], [1.0, 1.0])
    """
    roles = DatasetRoles(roles)
    if outputs_cache is not False:
        check_members(logits_dir, list(members))
        macs, _ = experiment_member_macs(logits_dir, list(members), dict(member_macs or {}))
        cache = default_cache_dir(logits_dir) if outputs_cache is True else Path(outputs_cache)
        return LogitsFolder(Path(logits_dir), list(members), roles, macs, cache)
    data, stage_macs = load_experiment(logits_dir, list(members), roles, dict(member_macs or {}))
    return Logits(
        {name: d.logits for name, d in data.items()},
        roles,
        {name: d.targets for name, d in data.items()},
        stage_macs,
        members,
    )


@dataclass
class Evaluation:
    """What [`evaluate`][] returns.

    Attributes:
        rows: the tidy metric rows of ``metrics.csv``, one value each, as dicts with its
            columns in its order (``window_cascades.cascade.evaluation.ROW_FIELDS``):
            ``dataset``, ``role``, ``policy``, ``setting``, ``score``, ``metric``, ``value``,
            ``ci_low`` and ``ci_high`` (the bootstrap interval; None without one). The metrics'
            definitions: docs/concepts/metrics.md.
        fitted: the fitted cascade (every policy, the temperatures, the operating points), for
            [`decide`][] and [`save_fitted`][].

    Example:
        >>> import numpy as np
        >>> import window_cascades as wc
        >>> rng = np.random.default_rng(3)
        >>> y = rng.integers(0, 3, 300)
        >>> z = [rng.normal(size=(300, 3)) + 2 * np.eye(3)[y] for _ in "ab"]
        >>> roles, labels = {"val": "heldout", "test": "id"}, {"val": y, "test": y}
        >>> logits = wc.Logits({"val": z, "test": z}, roles, labels)
        >>> result = wc.evaluate(logits, ["single", "window"], target="cov@5")
        >>> result.value("exit_frac@1", "single")  # every sample leaves after member 1
        1.0
        >>> import csv, io  # the rows as metrics.csv
        >>> writer = csv.DictWriter(io.StringIO(), fieldnames=result.rows[0])
        >>> writer.writerows(result.rows)
        >>> list(result.rows[0])
        ['dataset', 'role', 'policy', 'setting', 'score', 'metric', 'value', 'ci_low', 'ci_high']
    """

    rows: list[dict]
    fitted: FittedCascade

    def value(self, metric: str, policy: str, dataset: str | None = None) -> float:
        """The value of ``metric`` (e.g. ``cov@5``) under ``policy`` on ``dataset`` (default:
        the ID test set).

        Args:
            metric: a metric key, e.g. ``cov@5``, ``expected_macs``, ``exit_frac@2``.
            policy: a policy's name, e.g. ``window``.
            dataset: a dataset's name; None: the ID test set.

        Raises:
            KeyError: no such row (the message lists the metrics of that policy and dataset).
        """
        dataset = dataset or next(r["dataset"] for r in self.rows if r["role"] == "id")
        found = [
            r["value"]
            for r in self.rows
            if (r["metric"], r["policy"], r["dataset"]) == (metric, policy, dataset)
        ]
        if len(found) != 1:
            known = sorted(
                {r["metric"] for r in self.rows if (r["policy"], r["dataset"]) == (policy, dataset)}
            )
            raise KeyError(f"no single row for {metric!r} of {policy!r} on {dataset!r}; {known}")
        return float(found[0])


def _prepared(logits: Logits | LogitsFolder, score: str, temperature_scaling: bool):
    """What every policy setting shares, from logits in memory or through the outputs cache."""
    if isinstance(logits, LogitsFolder):
        prepared, _ = prepare_from_cache(
            logits.logits_dir,
            logits.members,
            logits.roles,
            logits.member_macs,
            score,
            logits.cache_dir,
            temperature_scaling,
        )
        return prepared
    return prepare_experiment(
        logits.data, logits.roles, logits.member_macs, score, temperature_scaling
    )


def _policies(policies: Sequence[str] | None, logits: Logits | LogitsFolder) -> list[str]:
    """The named policies, or every registered one (those that need an unlabelled test mixture
    only when there is an OOD set)."""
    if policies is not None:
        return check_policies(list(policies))
    has_ood = bool(logits.roles.ood)
    return [n for n, e in policy_entries().items() if has_ood or not e.needs_mixture]


def _policy_settings(
    target: str,
    parameters: Mapping[str, Any] | None,
    definitions: str,
    guarantee: float | None,
    guarantee_method: str,
    seed: int,
) -> PolicySettings:
    return PolicySettings(
        target,
        seed=seed,
        definitions=definitions,
        guarantee=guarantee,
        guarantee_method=guarantee_method,
        **dict(parameters or {}),
    )


def evaluate(
    logits: Logits | LogitsFolder,
    policies: Sequence[str] | None = None,
    *,
    target: str = "cov@5",
    score: str = "msp",
    parameters: Mapping[str, Any] | None = None,
    temperature_scaling: bool = False,
    definitions: str = "standard",
    guarantee: float | None = None,
    guarantee_method: str = "ltt",
    risks: Sequence[float] = (0.05,),
    coverages: Sequence[float] = (0.8,),
    ood_tpr: float = 0.95,
    bootstrap: int = 0,
    bootstrap_seed: int = 0,
    seed: int = 0,
) -> Evaluation:
    """Fit every policy on the held-out split and evaluate it on every dataset, as
    ``window-cascades evaluate-logits`` does for one setting (the same functions:
    ``window_cascades.cascade.offline``).

    Args:
        logits: the members' logits, labels and roles ([`Logits`][], [`load_logits`][]), or
            a [`LogitsFolder`][] evaluated through the outputs cache.
        policies: registered policy names (``--list-policies`` lists them, plugins' included);
            None: every registered policy (those that need an unlabelled test mixture, e.g.
            ``window_adjusted``, only when there is an ``ood`` set).
        target: the operating target in percent: ``cov@R`` (coverage at selective risk R%),
            ``risk@C`` (risk at coverage C%) or ``fpr@P`` (OOD FPR at P% ID acceptance).
        score: the confidence score: a registered score of probabilities or logits (``msp``,
            ``entropy``, ``max_logit``, ``energy``, ``mutual_information``, ``gen``, a
            plugin's); scores of features are evaluated by ``evaluate-logits --scores``.
        parameters: policy parameters by name, e.g. ``{"width": 0.1, "budget": 1.2}`` (every
            parameter a registered policy declares; the rest keep their defaults).
        temperature_scaling: fit a temperature per member and per ensemble size on the held-out
            split first.
        definitions: ``standard`` or ``paper`` (the reference code's rules).
        guarantee: DELTA in (0, 1): certify the target's thresholds with probability >= 1 -
            DELTA; None: empirical thresholds.
        guarantee_method: ``ltt`` or ``sgr``.
        risks: selective risks r reported as ``cov@r`` (fractions; a ``cov@R`` target's own
            point is added, as the command adds it).
        coverages: coverages c reported as ``risk@c`` (fractions; likewise for ``risk@C``).
        ood_tpr: ID acceptance rate p of ``fpr@p`` and of the OOD threshold (fraction).
        bootstrap: resamples of every dataset for 95% intervals (``ci_low``, ``ci_high``);
            0: none.
        bootstrap_seed: seed of the resamples.
        seed: seed of the random policy and of the test-mixture subsampling.

    Returns:
        The metric rows and the fitted cascade ([`Evaluation`][]).

    Raises:
        ValueError: an unknown policy, parameter, score or target, or a value out of range.

    Example:
        >>> import numpy as np
        >>> import window_cascades as wc
        >>> rng = np.random.default_rng(0)
        >>> labels = {"val": rng.integers(0, 3, 300), "test": rng.integers(0, 3, 300)}
        >>> member_logits = {
        ...     name: [rng.normal(size=(300, 3)) + 2 * np.eye(3)[y] for _ in range(2)]
        ...     for name, y in labels.items()
        ... }
        >>> logits = wc.Logits(member_logits, {"val": "heldout", "test": "id"}, labels)
        >>> result = wc.evaluate(logits, ["single", "ensemble", "window"], bootstrap=50)
        >>> sorted({row["policy"] for row in result.rows})
        ['ensemble', 'single', 'window']
        >>> result.value("expected_macs", "ensemble")  # every sample runs both members
        2.0
        >>> row = next(r for r in result.rows if r["metric"] == "acc" and r["policy"] == "window")
        >>> row["ci_low"] <= row["value"] <= row["ci_high"]
        True
        >>> sorted(result.fitted.policies)
        ['ensemble', 'single', 'window']
    """
    names = _policies(policies, logits)
    policy_settings = _policy_settings(
        target, parameters, definitions, guarantee, guarantee_method, seed
    )
    risks, coverages = reported_with_target(target, list(risks), list(coverages))
    metric_settings = MetricSettings(risks, coverages, ood_tpr=ood_tpr, definitions=definitions)
    resamples = Bootstrap(bootstrap, bootstrap_seed)
    prepared = _prepared(logits, score, temperature_scaling)
    rows, fitted = offline.evaluate_policies(
        prepared, names, policy_settings, metric_settings, bootstrap=resamples
    )
    if resamples.num:
        rows = resamples.annotate(rows)
    # every row with every column of metrics.csv, in its order (no interval: None)
    rows = [{**{f: row.get(f) for f in ROW_FIELDS}, **row} for row in rows]
    cascade = offline.fitted_cascade(prepared, fitted, policy_settings, ood_tpr)
    return Evaluation(rows, cascade)


def fit_cascade(
    logits: Logits | LogitsFolder,
    policies: Sequence[str] | None = None,
    *,
    target: str = "cov@5",
    score: str = "msp",
    parameters: Mapping[str, Any] | None = None,
    temperature_scaling: bool = False,
    definitions: str = "standard",
    guarantee: float | None = None,
    guarantee_method: str = "ltt",
    ood_tpr: float = 0.95,
    seed: int = 0,
) -> FittedCascade:
    """Fit the policies on the held-out split (nothing is evaluated): the cascade to deploy
    with [`decide`][], or to save with [`save_fitted`][].

    Args:
        logits: the members' logits, labels and roles ([`Logits`][]); only the ``heldout``
            set is read (and the ``id`` and ``ood`` sets by a policy fitted on the unlabelled
            test mixture).
        policies: registered policy names; None: every registered policy (see
            [`evaluate`][]).
        target: the operating target in percent (``cov@R``, ``risk@C``, ``fpr@P``).
        score: the confidence score.
        parameters: policy parameters by name (see [`evaluate`][]).
        temperature_scaling: fit temperatures on the held-out split first.
        definitions: ``standard`` or ``paper``.
        guarantee: DELTA for certified thresholds, or None.
        guarantee_method: ``ltt`` or ``sgr``.
        ood_tpr: the share of a policy's held-out output its OOD threshold accepts (fraction).
        seed: seed of the random policy and of the test-mixture subsampling.

    Returns:
        The fitted cascade: every policy, the temperatures, and each policy's operating points
        (the acceptance and OOD thresholds [`decide`][] applies).

    Example:
        >>> import numpy as np
        >>> import window_cascades as wc
        >>> rng = np.random.default_rng(1)
        >>> y = rng.integers(0, 3, 300)
        >>> member_logits = {"val": [rng.normal(size=(300, 3)) + 2 * np.eye(3)[y] for _ in "ab"]}
        >>> member_logits["test"] = member_logits["val"]
        >>> roles, labels = {"val": "heldout", "test": "id"}, {"val": y, "test": y}
        >>> logits = wc.Logits(member_logits, roles, labels)
        >>> fitted = wc.fit_cascade(logits, ["window"], target="cov@5", parameters={"width": 0.1})
        >>> fitted.info["target"], fitted.policies["window"].num_stages
        ('cov@5', 2)
    """
    policy_settings = _policy_settings(
        target, parameters, definitions, guarantee, guarantee_method, seed
    )
    prepared = _prepared(logits, score, temperature_scaling)
    return offline.fit_cascade(prepared, _policies(policies, logits), policy_settings, ood_tpr)


def save_fitted(fitted: FittedCascade, folder: str | Path) -> Path:
    """Write ``fitted_cascade.json`` into ``folder`` (created if missing; written atomically).

    Args:
        fitted: a fitted cascade ([`fit_cascade`][], the `fitted` of an [`Evaluation`][]).
        folder: the folder to write it into.

    Returns:
        The file's path.

    Example:
        >>> import tempfile
        >>> import window_cascades as wc
        >>> from window_cascades.cascade.fitted import FittedCascade
        >>> from window_cascades.cascade.policies import ensemble_policy
        >>> fitted = FittedCascade({"ensemble": ensemble_policy(2)}, info={"score": "msp"})
        >>> wc.save_fitted(fitted, tempfile.mkdtemp()).name
        'fitted_cascade.json'
    """
    Path(folder).mkdir(parents=True, exist_ok=True)
    return write_fitted_cascade(folder, fitted)


def load_fitted(path: str | Path, members: int | None = None) -> FittedCascade:
    """Read a fitted cascade from ``fitted_cascade.json`` (or a results folder holding one),
    checked field by field.

    Args:
        path: the file, or the folder holding it (a test run's or [`save_fitted`][]'s).
        members: the number of members it must be fitted for; None: any.

    Returns:
        The fitted cascade.

    Raises:
        FileNotFoundError: no fitted cascade there.
        ValueError: not JSON, or a field out of range (naming the file and the field).

    Example:
        >>> import tempfile
        >>> import window_cascades as wc
        >>> from window_cascades.cascade.fitted import FittedCascade
        >>> from window_cascades.cascade.policies import single_policy
        >>> folder = tempfile.mkdtemp()
        >>> _ = wc.save_fitted(FittedCascade({"single": single_policy(3)}), folder)
        >>> wc.load_fitted(folder).policies["single"].num_stages
        3
    """
    return read_fitted_cascade(path, members)


def load_cascade(path: str | Path, map_location: str | torch.device = "cpu") -> CascadeModule:
    """Load a calibrated cascade (``cascade.ckpt``, written by a ``cascade test`` run or the
    pipeline's evaluation step) in evaluation mode, without unpickling
    (``CascadeModule.load_from_checkpoint(..., weights_only=True)``).

    Args:
        path: the cascade checkpoint.
        map_location: where its members' weights go (``"cpu"``, ``"cuda"``, a device).

    Returns:
        The ``CascadeModule``: its members, every fitted policy and the operating points;
        [`decide`][] (or its own ``decide``) applies it to images prepared as the
        images it was calibrated on (the checkpoint records their normalisation and crop).

    Raises:
        FileNotFoundError: no such file.
        ValueError: the file is not a readable cascade checkpoint (the message names the
            field).

    Example:
        After the quick start (``window-cascades pipeline --config quickstart``; the doctest
        runs on a small synthetic checkpoint there, members of 1 x 32 x 32 images):

        >>> import torch
        >>> import window_cascades as wc
        >>> cascade = wc.load_cascade("outputs/quickstart/results/cascade.ckpt")
        >>> cascade.training, cascade.num_stages, "window" in cascade.fitted.policies
        (False, 2, True)
        >>> images = torch.rand(8, 1, 32, 32)  # prepared as the calibrated-on images
        >>> out = wc.decide(cascade, images, policy="window")
        >>> out["prediction"].shape, bool(out["exit_stage"].le(2).all())
        (torch.Size([8]), True)
    """
    from window_cascades.lightning_modules.cascade_module import CascadeModule

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"cascade checkpoint not found: {path}")
    return CascadeModule.load_from_checkpoint(
        path, map_location=map_location, weights_only=True
    ).eval()


def decide(
    cascade: FittedCascade | CascadeModule,
    inputs: torch.Tensor | Sequence[ArrayLike],
    policy: str = "window",
    sample_ids: torch.Tensor | None = None,
) -> dict[str, torch.Tensor]:
    """Apply a cascade: a fitted cascade to the members' logits held in memory, or a
    calibrated cascade ([`load_cascade`][]) to a batch of images with real early exit. Both
    make the same decisions from the same member outputs
    (``window_cascades.cascade.decisions``).

    Args:
        cascade: a ``FittedCascade`` ([`fit_cascade`][], [`load_fitted`][]) or a
            ``CascadeModule`` ([`load_cascade`][]).
        inputs: for a fitted cascade, one N x C logits array per member in cascade order
            (numpy or torch, before temperature scaling); for a ``CascadeModule``, a batch of
            images N x C x H x W on its device, prepared as the images it was calibrated on.
        policy: the fitted policy to apply, e.g. ``window``.
        sample_ids: the samples' dataset indices (only the ``random`` policy reads them);
            default 0..N-1.

    Returns:
        One tensor of N values each: ``prediction`` (class), ``confidence`` (the score at the
        exit stage), ``decision`` (the sample's one outcome, an index into
        ``window_cascades.cascade.operating_point.DECISIONS`` = ``("accept", "reject",
        "ood")``: ``ood`` when confidence < the threshold that accepts ``ood_tpr`` of the
        policy's held-out output, else ``reject`` when confidence < the
        operating threshold fitted for the target on that output, else ``accept``),
        ``accepted`` and ``ood`` (that outcome as flags, never both true) and ``exit_stage``
        (the number of members run, 1..M).

    Raises:
        ValueError: a policy the cascade was not fitted with, a cascade without operating
            points, or inputs that do not fit it.

    Example:
        >>> import numpy as np
        >>> import window_cascades as wc
        >>> rng = np.random.default_rng(2)
        >>> y = rng.integers(0, 3, 300)
        >>> member_logits = {"val": [rng.normal(size=(300, 3)) + 2 * np.eye(3)[y] for _ in "ab"]}
        >>> member_logits["test"] = member_logits["val"]
        >>> roles, labels = {"val": "heldout", "test": "id"}, {"val": y, "test": y}
        >>> logits = wc.Logits(member_logits, roles, labels)
        >>> fitted = wc.fit_cascade(logits, ["window"], parameters={"width": 0.1})
        >>> new = [rng.normal(size=(5, 3)) for _ in "ab"]  # each member's logits on 5 samples
        >>> out = wc.decide(fitted, new, policy="window")
        >>> sorted(out), out["exit_stage"].shape
        (['accepted', 'confidence', 'decision', 'exit_stage', 'ood', 'prediction'], torch.Size([5]))
        >>> from window_cascades.cascade.operating_point import DECISIONS
        >>> {DECISIONS[int(code)] for code in out["decision"]} <= {"accept", "reject", "ood"}
        True
        >>> bool((out["accepted"] & out["ood"]).any())  # one outcome per sample
        False
        >>> bool(((out["exit_stage"] >= 1) & (out["exit_stage"] <= 2)).all())
        True
    """
    if isinstance(cascade, FittedCascade):
        return decide_logits(cascade, [_as_logits(z, "inputs") for z in inputs], policy, sample_ids)
    return cascade.decide(inputs, policy, sample_ids)


load_entry_point_plugins()  # installed plugins register as soon as the API is used
