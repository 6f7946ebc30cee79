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

import math
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property

import torch

from window_cascades.cascade.operating_point import OperatingPoint
from window_cascades.cascade.sample_outputs import SampleOutputs
from window_cascades.uncertainty.definitions import Definitions, get_definitions
from window_cascades.uncertainty.scod import scod_mixture


def percent_key(prefix: str, fraction: float) -> str:
    """A metric key with a percentage, e.g. ``percent_key("cov", 0.05) == "cov@5"``.

    Args:
        prefix: the key's stem, e.g. ``cov``, ``risk``, ``fpr``.
        fraction: the point as a fraction (0.05 is written 5).
    """
    return f"{prefix}@{fraction * 100:g}"


def _bad_fraction(value: object, low_open: bool, high_open: bool) -> bool:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return True
    low = value <= 0 if low_open else value < 0
    high = value >= 1 if high_open else value > 1
    return low or high


def check_report_points(
    risks: tuple[float, ...] | list[float],
    coverages: tuple[float, ...] | list[float],
    ood_tpr: float,
    scod_ratio: float,
    scod_beta: float,
    prefix: str = "",
) -> None:
    """Validate the reported operating points and SCOD settings where they enter.

    One convention across every option: a number is a fraction (``--risks 0.05``); percentages
    appear only in names (``cov@5``, targets such as ``risk@80``). ``prefix`` names the options
    in messages: ``"--model."`` (online, ``--model.scod_beta``) or ``"--"`` (offline,
    ``--scod-beta``).

    Args:
        risks: selective risks r reported as ``cov@r``, fractions in (0, 1).
        coverages: coverages c reported as ``risk@c``, fractions in (0, 1].
        ood_tpr: the ID acceptance rate p of ``fpr@p``, in (0, 1].
        scod_ratio: the OOD : ID ratio of the SCOD mixture, > 0.
        scod_beta: the loss of an accepted OOD sample in SCOD, >= 0.
        prefix: how the options are spelt in messages: ``--model.`` (online) or ``--`` (offline).

    Raises:
        ValueError: naming the option, the value and the accepted range.
    """

    def option(field: str) -> str:
        return prefix + (field.replace("_", "-") if prefix == "--" else field)

    for field, values, high_open, name in (
        ("risks", risks, True, "cov"),
        ("coverages", coverages, False, "risk"),
    ):
        if not values:
            raise ValueError(f"{option(field)}: give at least one value, e.g. 0.05")
        for v in values:
            if _bad_fraction(v, True, high_open):
                hint = (
                    f" ({v:g}% is {v / 100:g}, reported as {name}@{v:g})"
                    if (isinstance(v, (int, float)) and 1 < v < 100)
                    else ""
                )
                interval = "(0, 1)" if high_open else "(0, 1]"
                raise ValueError(
                    f"{option(field)} {v!r}: expected a fraction in {interval}{hint}; "
                    "percentages appear only in metric names"
                )
    if _bad_fraction(ood_tpr, True, False):
        raise ValueError(
            f"{option('ood_tpr')} {ood_tpr!r}: expected a fraction in (0, 1], e.g. 0.95 (fpr@95)"
        )
    if isinstance(scod_ratio, bool) or not (
        isinstance(scod_ratio, (int, float)) and math.isfinite(scod_ratio) and scod_ratio > 0
    ):
        raise ValueError(f"{option('scod_ratio')} {scod_ratio!r}: expected an OOD : ID ratio > 0")
    if isinstance(scod_beta, bool) or not (
        isinstance(scod_beta, (int, float)) and math.isfinite(scod_beta) and scod_beta >= 0
    ):
        raise ValueError(
            f"{option('scod_beta')} {scod_beta!r}: expected the cost of an accepted OOD sample, "
            ">= 0 (1: as an error)"
        )


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
    """

    name: str
    compute: Callable[[MetricInputs], dict[str, float]]
    higher_is_better: bool
    roles: tuple[str, ...]
    description: str
    resampled: Callable[..., dict[str, torch.Tensor] | None] | None = None


_REGISTRY: dict[str, MetricEntry] = {}


def register_metric(
    name: str,
    higher_is_better: bool,
    roles: tuple[str, ...],
    description: str,
    resampled: Callable[..., dict[str, torch.Tensor] | None] | None = None,
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

    Returns:
        The decorator; it returns the plain form unchanged. The plain form takes
        [`MetricInputs`][] (one dataset's per-sample outputs under one policy) and returns
        ``{key: value}``, one row of ``metrics.csv`` per key.

    Raises:
        ValueError: a name registered twice.

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

    def add(compute: Callable) -> Callable:
        if name in _REGISTRY:
            raise ValueError(f"metric {name!r} is registered twice")
        entry = MetricEntry(name, compute, higher_is_better, tuple(roles), description, resampled)
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


def higher_is_better(key: str) -> bool:
    """Direction of a reported key such as ``cov@5`` (looked up by its family).

    Args:
        key: a reported metric key, e.g. ``cov@5`` or ``fpr@95``.
    """
    family = key.split("@")[0]
    for entry in _REGISTRY.values():
        if entry.name.split("@")[0] == family:
            return entry.higher_is_better
    raise ValueError(f"unknown metric {key!r}; registered: {list(_REGISTRY)}")
