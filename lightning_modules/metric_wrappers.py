"""torchmetrics wrappers around the pure metric functions, safe under DDP.

Every state is a ``cat`` list of per-sample values, so under DDP ``compute()`` sees the samples
of all processes and returns exactly what one process would (the evaluation sampler must not
pad; see ``window_cascades.datamodules.samplers``). Every rank must call ``compute()``. States are
O(N): no N x C tensor is kept except by [`CascadeOutputs`][], which needs the probabilities.

A wrapper is not another home of its metrics: it names the registry entries it reports
(``METRICS``) and computes them through those entries (``window_cascades.cascade.metric_registry``),
on the per-sample outputs it accumulated, so its values are the reported metrics' to the last bit.
"""

from __future__ import annotations

from dataclasses import fields

import torch
from torchmetrics import Metric
from torchmetrics.utilities import dim_zero_cat

from window_cascades.cascade.engine import CascadeResult
from window_cascades.cascade.metric_registry import MetricInputs, MetricSettings, metric_entries
from window_cascades.cascade.sample_outputs import SampleOutputs
from window_cascades.uncertainty.definitions import Definitions
from window_cascades.uncertainty.probability_metrics import (
    squared_norm,
    target_probability,
    top_label,
)


class _CatMetric(Metric):
    """A metric whose states are ``cat`` lists of per-sample tensors named in ``STATES``."""

    STATES: tuple[str, ...] = ()
    full_state_update = False

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        for name in self.STATES:
            self.add_state(name, default=[], dist_reduce_fx="cat")

    def _append(self, **values: torch.Tensor) -> None:
        for name, value in values.items():
            getattr(self, name).append(value.detach().to(self.device))

    def _cat(self, name: str) -> torch.Tensor:
        return dim_zero_cat(getattr(self, name)).cpu()


def registry_values(
    names: tuple[str, ...], settings: MetricSettings, **known: torch.Tensor
) -> dict[str, float]:
    """The values of the registered metrics ``names`` (in that order) on N samples.

    Args:
        names: registry names (``aurc``, ``cov@R``, ...).
        settings: the operating points to report and the definitions.
        **known: the per-sample outputs the named metrics read (fields of
            [`window_cascades.cascade.sample_outputs.SampleOutputs`][], N each); the others are
            NaN (the exit stage 1), so a metric that read one would report NaN, not a wrong number.

    Returns:
        {key: value}, as the metrics' rows in ``metrics.csv`` report them.
    """
    n = next(iter(known.values())).numel()
    nan = torch.full((n,), float("nan"), dtype=torch.float64)
    filled = {f.name: known.get(f.name, nan) for f in fields(SampleOutputs)}
    if "exit_stage" not in known:
        filled["exit_stage"] = torch.ones(n, dtype=torch.long)
    outputs = SampleOutputs(**filled)
    inputs = MetricInputs(outputs, outputs, [], settings)
    entries = metric_entries()
    out: dict[str, float] = {}
    for name in names:
        out.update(entries[name].compute(inputs))
    return out


class SelectiveClassificationMetrics(_CatMetric):
    """AURC, AUGRC, e-AURC, ``cov@r`` and ``risk@c`` from confidences and correctness.

    Args:
        risks: risks r (fractions) for ``cov@r``.
        coverages: coverages c (fractions) for ``risk@c``.
        definitions: ``standard`` or ``paper``.
        **kwargs: torchmetrics' ``Metric`` options.
    """

    STATES = ("confidence", "correct")
    METRICS = ("aurc", "augrc", "e_aurc", "cov@R", "risk@C")

    def __init__(
        self,
        risks: tuple[float, ...] = (0.05,),
        coverages: tuple[float, ...] = (0.8,),
        definitions: str | Definitions = "standard",
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.settings = MetricSettings(
            risks=tuple(risks), coverages=tuple(coverages), definitions=definitions
        )

    def update(self, confidence: torch.Tensor, preds: torch.Tensor, targets: torch.Tensor) -> None:
        """Add a batch of N samples.

        Args:
            confidence: The confidence score of each prediction, shape (N,).
            preds: The predicted classes, shape (N,).
            targets: The true classes, shape (N,).
        """
        self._append(confidence=confidence.double(), correct=preds == targets)

    def compute(self) -> dict[str, float]:
        """The metrics over every sample seen, on every process.

        Returns:
            {key: value} for AURC, AUGRC, e-AURC and each ``cov@r`` and ``risk@c``.
        """
        conf, correct = self._cat("confidence"), self._cat("correct").bool()
        return registry_values(self.METRICS, self.settings, confidence=conf, correct=correct)


class CalibrationMetrics(_CatMetric):
    """Accuracy, ECE (15 bins), NLL and Brier from N x C probabilities, kept as O(N) states."""

    STATES = ("top_prob", "correct", "target_prob", "sum_sq")
    METRICS = ("acc", "ece", "nll", "brier")

    def update(self, probs: torch.Tensor, targets: torch.Tensor) -> None:
        """Add a batch of N samples (kept as four numbers per sample).

        Args:
            probs: Class probabilities, shape (N, C).
            targets: The true classes, shape (N,).
        """
        top, correct = top_label(probs, targets)
        self._append(
            top_prob=top,
            correct=correct,
            target_prob=target_probability(probs, targets),
            sum_sq=squared_norm(probs),
        )

    def compute(self) -> dict[str, float]:
        """The metrics over every sample seen, on every process.

        Returns:
            {key: value} for accuracy, ECE, NLL and Brier.
        """
        states = {name: self._cat(name) for name in self.STATES}
        return registry_values(self.METRICS, MetricSettings(), **states)


class CascadeOutputs(_CatMetric):
    """Accumulates the per-sample outputs (``SampleOutputs``: O(N), no N x C probabilities) and
    targets of every sample seen, for the cascade module, which turns them into every metric
    row at the end of ``test``.

    ``compute()`` returns the samples in dataset order (by sample index), whatever the number
    of processes, so order-dependent steps (SCOD's seeded subsampling) match one process.
    """

    FIELDS = tuple(f.name for f in fields(SampleOutputs))
    STATES = (*FIELDS, "targets", "sample_ids")

    def update(
        self, result: CascadeResult, targets: torch.Tensor, sample_ids: torch.Tensor
    ) -> None:
        """Add a batch of the cascade's outputs.

        Args:
            result: The cascade's probabilities, confidences and exit stages for the batch.
            targets: The true classes, shape (N,).
            sample_ids: The samples' dataset indices, shape (N,).
        """
        outputs = SampleOutputs.from_probs(
            result.probs.float(), result.confidence, result.exit_stage, targets
        )
        self._append(
            **{name: getattr(outputs, name) for name in self.FIELDS},
            targets=targets.long(),
            sample_ids=sample_ids.long(),
        )

    def compute(self) -> tuple[SampleOutputs, torch.Tensor]:
        """Every sample seen, on every process, in dataset order.

        Returns:
            (the per-sample outputs, the targets), ordered by sample index.
        """
        order = torch.argsort(self._cat("sample_ids"))
        outputs = SampleOutputs(**{name: self._cat(name)[order] for name in self.FIELDS})
        return outputs, self._cat("targets")[order]
