"""The metric registry: every reported metric by name, with its direction and dataset roles.

A metric entry computes one or several values (``cov@R`` gives one per risk R) for one dataset
under one policy from [`MetricInputs`][]. Entries run in registration order, which is the
order of the rows in ``metrics.csv``. Adding a metric::

    @register_metric("my_metric", higher_is_better=False, roles=LABELLED_ROLES,
                     description="one line with its definition")
    def my_metric(inputs: MetricInputs) -> dict[str, float]:
        return {"my_metric": ...}

One entry is a metric's one home in ``cascade/``: it names the plain form (``compute``, on the
whole sample) and, optionally, the resampled form (``resampled``: B bootstrap values at once,
from a [`window_cascades.cascade.resampled.Resampled`][]), defined side by side in the
``builtin_*metrics`` module of its family. Both call the pure tensor functions of ``uncertainty/``,
where each family keeps its plain and weighted forms side by side, and the torchmetrics wrappers
(``lightning_modules/metric_wrappers.py``) compute their values through these entries. Why
side by side and not one weighted definition with unit weights for the plain value: the plain
functions fix the reported numbers to the last bit (the golden files), and weighted sums
differ from them in the last bits; ``tests/cascade/test_metric_registry.py`` holds every entry's
forms equal within 1e-10.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property

import torch

from window_cascades.cascade.operating_point import OperatingPoint
from window_cascades.cascade.sample_outputs import SampleOutputs
from window_cascades.uncertainty.definitions import Definitions, get_definitions
from window_cascades.uncertainty.scod import scod_mixture
from window_cascades.vocabulary.checks import check_report_points  # torch-free, checked early


def percent_key(prefix: str, fraction: float) -> str:
    """A metric key with a percentage, e.g. ``percent_key("cov", 0.05) == "cov@5"``.

    Args:
        prefix: the key's stem, e.g. ``cov``, ``risk``, ``fpr``.
        fraction: the point as a fraction (0.05 is written 5).
    """
    return f"{prefix}@{fraction * 100:g}"


@dataclass
class MetricSettings:
    """Which operating points to report.

    Attributes:
        risks: selective risks r for ``cov@r`` (fractions).
        coverages: coverages c for ``risk@c`` (fractions).
        ood_tpr: ID acceptance rate p for ``fpr@p``.
        definitions: ``standard`` or ``paper``.
        scod_ratio: OOD : ID mixing ratio of SCOD.
        scod_beta: cost of an accepted OOD sample in SCOD.
        scod_seed: seed of the SCOD subsampling.
        target: the run's target (e.g. ``cov@5``): the operating point's threshold is fitted
            for it on each policy's held-out outputs; None reports no operating point.
        guarantee: DELTA for a guaranteed operating point (None: empirical threshold).
        guarantee_method: ``ltt`` or ``sgr``.
    """

    risks: tuple[float, ...] = (0.05,)
    coverages: tuple[float, ...] = (0.8,)
    ood_tpr: float = 0.95
    definitions: str = "standard"
    scod_ratio: float = 1.0
    scod_beta: float = 1.0
    scod_seed: int = 0
    target: str | None = None
    guarantee: float | None = None
    guarantee_method: str = "ltt"

    def __post_init__(self):
        check_report_points(
            self.risks, self.coverages, self.ood_tpr, self.scod_ratio, self.scod_beta
        )


@dataclass
class MetricInputs:
    """What a metric may read: one dataset's per-sample cascade outputs under one policy.

    Attributes:
        outputs: the dataset's per-sample outputs.
        id_outputs: the ID test set's outputs under the same policy (OOD metrics).
        stage_macs: MACs per member, in cascade order.
        settings: the operating points to report ([`MetricSettings`][]).
        operating_point: the policy's threshold fitted on its held-out outputs (None when no
            target is set).
    """

    outputs: SampleOutputs
    id_outputs: SampleOutputs
    stage_macs: list[float]
    settings: MetricSettings
    operating_point: OperatingPoint | None = None

    @cached_property
    def definitions(self) -> Definitions:
        return get_definitions(self.settings.definitions)

    @cached_property
    def scod(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(ID confidence, ID correctness, OOD confidence) of the fixed-seed SCOD mixture."""
        s, id_conf, ood_conf = self.settings, self.id_outputs.confidence, self.outputs.confidence
        keep_id, keep_ood = scod_mixture(
            id_conf.numel(), ood_conf.numel(), s.scod_ratio, s.scod_seed
        )
        return id_conf[keep_id], self.id_outputs.correct[keep_id], ood_conf[keep_ood]


@dataclass(frozen=True)
class MetricEntry:
    """One registered metric (family).

    Attributes:
        name: the metric's name; ``@R``/``@C``/``@P``/``@K`` stand for the reported points.
        compute: MetricInputs -> {key: value}.
        higher_is_better: direction of improvement.
        roles: dataset roles the metric is reported for.
        description: its definition in one line.
        resampled: the resampled form: a ``window_cascades.cascade.resampled.Resampled`` (B
            resamples of the inputs) -> {key: B values}, equal to ``compute`` on each resample, or
            None where it has no fast form for these inputs; None (no resampled form): the bootstrap
            calls ``compute`` on every resample in turn (slower, the same values).
        interval: how the bootstrap turns its resampled values into an interval (one of
            [`INTERVAL_METHODS`][]): ``percentile``, or ``median-recentred`` for a metric
            whose resampled values are biased away from its value (ECE).
    """

    name: str
    compute: Callable[[MetricInputs], dict[str, float]]
    higher_is_better: bool
    roles: tuple[str, ...]
    description: str
    resampled: Callable[..., dict[str, torch.Tensor] | None] | None = None
    interval: str = "percentile"


INTERVAL_METHODS = ("percentile", "median-recentred")
"""The bootstrap interval of a metric's value v from its B resampled values:

- ``percentile``: their (alpha/2, 1 - alpha/2) quantiles [q_lo, q_hi];
- ``median-recentred``: that interval moved so that the resamples' median m falls on the value,
  [v - (m - q_lo), v + (q_hi - m)] (its lower end not below 0 for a metric that is never
  negative). It keeps the spread and skew of the resamples and contains v by construction; it
  is the percentile interval when the resamples are centred on v. For a statistic whose
  resamples run to one side of its value, such as the ECE (resampled duplicates make the bins
  look more certain, so the resampled ECE runs higher: on the quick start's digits, all 200
  resamples above the value), where the percentile interval can exclude the value and the
  bias-corrected (BC/BCa) interval collapses below it once fewer than 2.5% of the resamples lie
  below the value.
"""


_REGISTRY: dict[str, MetricEntry] = {}


def register_metric(
    name: str,
    higher_is_better: bool,
    roles: tuple[str, ...],
    description: str,
    resampled: Callable[..., dict[str, torch.Tensor] | None] | None = None,
    interval: str = "percentile",
) -> Callable:
    """Decorator registering a metric's plain form (and its resampled form) under ``name``;
    from then on every run reports it (online, offline, ``window_cascades.evaluate``).

    Args:
        name: the metric's name (see [`MetricEntry`][]; ``@R``, ``@C``, ``@P``, ``@K`` stand
            for the reported risks, coverages, ID acceptance rate and stages).
        higher_is_better: direction of improvement.
        roles: dataset roles the metric is reported for (``LABELLED_ROLES``, ``("ood",)``, ...;
            ``window_cascades.vocabulary.roles``).
        description: its definition in one line, with its unit.
        resampled: its resampled form (see [`MetricEntry`][]), or None (the bootstrap then
            computes the plain form on every resample).
        interval: its bootstrap interval, one of [`INTERVAL_METHODS`][] (default
            ``percentile``; ``median-recentred`` for a metric whose resampled values are biased
            away from its value).

    Returns:
        The decorator; it returns the plain form unchanged. The plain form takes
        [`MetricInputs`][] (one dataset's per-sample outputs under one policy) and returns
        ``{key: value}``, one row of ``metrics.csv`` per key.

    Raises:
        ValueError: a name registered twice, or an unknown ``interval``.

    Example:
        >>> from window_cascades.vocabulary.roles import LABELLED_ROLES
        >>> @register_metric(
        ...     "mean_confidence", True, LABELLED_ROLES, "mean confidence at the exit stage"
        ... )
        ... def mean_confidence(inputs: MetricInputs) -> dict[str, float]:
        ...     return {"mean_confidence": float(inputs.outputs.confidence.mean())}
        >>> "mean_confidence" in metric_entries()
        True
        >>> unregister_metric("mean_confidence")  # (a test's clean-up; a plugin stays registered)
    """

    if interval not in INTERVAL_METHODS:
        raise ValueError(
            f"metric {name!r}: interval {interval!r}, expected one of {INTERVAL_METHODS}"
        )

    def add(compute: Callable) -> Callable:
        if name in _REGISTRY:
            raise ValueError(f"metric {name!r} is registered twice")
        entry = MetricEntry(
            name, compute, higher_is_better, tuple(roles), description, resampled, interval
        )
        _REGISTRY[name] = entry
        return compute

    return add


def unregister_metric(name: str) -> None:
    """Remove a registered metric (e.g. a plugin's, or one a test registered).

    Args:
        name: the metric's registered name.

    Raises:
        ValueError: no metric is registered under ``name``.
    """
    if name not in _REGISTRY:
        raise ValueError(f"unknown metric {name!r}; registered: {list(_REGISTRY)}")
    del _REGISTRY[name]


def metric_entries() -> dict[str, MetricEntry]:
    """Every registered metric, in registration (= reporting) order."""
    return dict(_REGISTRY)


def metric_values(inputs: MetricInputs, role: str) -> dict[str, float]:
    """Every registered metric that applies to ``role``, in order.

    Args:
        inputs: one dataset's cascade outputs under one policy, with what a metric may read
            ([`MetricInputs`][]).
        role: the dataset's role; only metrics registered for it run.
    """
    out: dict[str, float] = {}
    for entry in _REGISTRY.values():
        if role in entry.roles:
            out.update(entry.compute(inputs))
    return out


def metric_entry(key: str) -> MetricEntry:
    """The entry of a reported key such as ``cov@5`` (looked up by its family).

    Args:
        key: A reported metric key, e.g. ``cov@5`` or ``fpr@95``.

    Raises:
        ValueError: no registered metric reports ``key``.
    """
    family = key.split("@")[0]
    for entry in _REGISTRY.values():
        if entry.name.split("@")[0] == family:
            return entry
    raise ValueError(f"unknown metric {key!r}; registered: {list(_REGISTRY)}")


def higher_is_better(key: str) -> bool:
    """Direction of a reported key such as ``cov@5`` (looked up by its family).

    Args:
        key: A reported metric key, e.g. ``cov@5`` or ``fpr@95``.
    """
    return metric_entry(key).higher_is_better


def interval_methods() -> dict[str, str]:
    """The bootstrap interval of every registered metric that is not ``percentile`` (metric
    name -> method), with ``"*": "percentile"`` for the others (summary.json records it)."""
    other = {e.name: e.interval for e in _REGISTRY.values() if e.interval != "percentile"}
    return {**other, "*": "percentile"}


def bootstrap_record(resamples: int, seed: int) -> dict | None:
    """summary.json's ``bootstrap``: the resamples, their seed and [`interval_methods`][]
    (None without a bootstrap, ``resamples`` 0).

    Args:
        resamples: The bootstrap's resamples (0: none).
        seed: Their seed.
    """
    if not resamples:
        return None
    return {"resamples": resamples, "seed": seed, "intervals": interval_methods()}
