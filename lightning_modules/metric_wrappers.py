"""torchmetrics wrappers around the pure metric functions, safe under DDP.

Every state is a ``cat`` list of per-sample values, so under DDP ``compute()`` sees the samples
of all processes and returns exactly what one process would (the evaluation sampler must not
pad; see ``datamodules.samplers``). Every rank must call ``compute()``. States are O(N): no
N x C tensor is kept except by :class:`CascadeOutputs`, which needs the probabilities.
"""

from __future__ import annotations

from dataclasses import fields

import torch
from torchmetrics import Metric
from torchmetrics.utilities import dim_zero_cat

from cascade.engine import CascadeResult
from cascade.metric_registry import percent_key
from cascade.sample_outputs import SampleOutputs
from uncertainty.definitions import get_definitions
from uncertainty.probability_metrics import (
    brier_from_statistics,
    calibration_error,
    nll_from_target_probability,
    squared_norm,
    target_probability,
    top_label,
)
from uncertainty.selective import augrc, excess_aurc


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


class SelectiveClassificationMetrics(_CatMetric):
    """AURC, AUGRC, e-AURC, ``cov@r`` and ``risk@c`` from confidences and correctness.

    Args:
        risks: risks r (fractions) for ``cov@r``; coverages: c for ``risk@c``;
        definitions: ``standard`` or ``paper``.
    """

    STATES = ("confidence", "correct")

    def __init__(self, risks=(0.05,), coverages=(0.8,), definitions="standard", **kwargs):
        super().__init__(**kwargs)
        self.risks, self.coverages = tuple(risks), tuple(coverages)
        self.definitions = get_definitions(definitions)

    def update(self, confidence: torch.Tensor, preds: torch.Tensor, targets: torch.Tensor) -> None:
        self._append(confidence=confidence.double(), correct=preds == targets)

    def compute(self) -> dict[str, float]:
        conf, correct = self._cat("confidence"), self._cat("correct").bool()
        defs = self.definitions
        out = {
            "aurc": defs.aurc(conf, correct),
            "augrc": augrc(conf, correct),
            "e_aurc": excess_aurc(conf, correct, defs.aurc),
        }
        for r in self.risks:
            out[percent_key("cov", r)] = defs.coverage_at_risk_or_zero(conf, correct, r)
        for c in self.coverages:
            out[percent_key("risk", c)] = defs.risk_at_coverage(conf, correct, c)[0]
        return out


class CalibrationMetrics(_CatMetric):
    """Accuracy, ECE (15 bins), NLL and Brier from N x C probabilities, kept as O(N) states."""

    STATES = ("top_prob", "correct", "target_prob", "sum_sq")

    def __init__(self, bins: int = 15, **kwargs):
        super().__init__(**kwargs)
        self.bins = bins

    def update(self, probs: torch.Tensor, targets: torch.Tensor) -> None:
        top, correct = top_label(probs, targets)
        self._append(
            top_prob=top,
            correct=correct,
            target_prob=target_probability(probs, targets),
            sum_sq=squared_norm(probs),
        )

    def compute(self) -> dict[str, float]:
        top, correct = self._cat("top_prob"), self._cat("correct")
        p_t, sum_sq = self._cat("target_prob"), self._cat("sum_sq")
        return {
            "acc": float(correct.double().mean()),
            "ece": calibration_error(top, correct, self.bins),
            "nll": nll_from_target_probability(p_t),
            "brier": brier_from_statistics(sum_sq, p_t),
        }


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
        outputs = SampleOutputs.from_probs(
            result.probs.float(), result.confidence, result.exit_stage, targets
        )
        self._append(
            **{name: getattr(outputs, name) for name in self.FIELDS},
            targets=targets.long(),
            sample_ids=sample_ids.long(),
        )

    def compute(self) -> tuple[SampleOutputs, torch.Tensor]:
        order = torch.argsort(self._cat("sample_ids"))
        outputs = SampleOutputs(**{name: self._cat(name)[order] for name in self.FIELDS})
        return outputs, self._cat("targets")[order]
