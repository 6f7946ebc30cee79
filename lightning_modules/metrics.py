"""torchmetrics wrappers around the pure metric functions, safe under DDP.

Every state is a ``cat`` list of per-sample values, so under DDP ``compute()`` sees the samples
of all processes and returns exactly what one process would (the evaluation sampler must not
pad; see ``datamodules.samplers``). Every rank must call ``compute()``. States are O(N): no
N x C tensor is kept except by :class:`CascadeOutputs`, which needs the probabilities.
"""

from __future__ import annotations

import torch
from torchmetrics import Metric
from torchmetrics.utilities import dim_zero_cat

from cascade.engine import CascadeResult
from uncertainty.definitions import get_definitions
from uncertainty.ood import aupr, auroc
from uncertainty.scod import scod_aurc, scod_risk_at_coverage
from uncertainty.selective import UnreachableTargetError


def _pct(x: float) -> str:
    return f"{x * 100:g}"


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
    """AURC, ``cov@r`` and ``risk@c`` from confidences and correctness.

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
        out = {"aurc": self.definitions.aurc(conf, correct)}
        for r in self.risks:
            try:
                out[f"cov@{_pct(r)}"] = self.definitions.coverage_at_risk(conf, correct, r)[0]
            except UnreachableTargetError:
                out[f"cov@{_pct(r)}"] = 0.0
        for c in self.coverages:
            out[f"risk@{_pct(c)}"] = self.definitions.risk_at_coverage(conf, correct, c)[0]
        return out


class CalibrationMetrics(_CatMetric):
    """Accuracy, ECE (15 bins), NLL and Brier from N x C probabilities, kept as O(N) states."""

    STATES = ("top_prob", "correct", "target_prob", "sum_sq")

    def __init__(self, bins: int = 15, **kwargs):
        super().__init__(**kwargs)
        self.bins = bins

    def update(self, probs: torch.Tensor, targets: torch.Tensor) -> None:
        top, pred = probs.max(dim=-1)
        target_prob = probs.gather(1, targets.long().view(-1, 1)).squeeze(1)
        self._append(
            top_prob=top.double(),
            correct=pred == targets,
            target_prob=target_prob.double(),
            sum_sq=(probs * probs).sum(-1).double(),
        )

    def compute(self) -> dict[str, float]:
        top, correct = self._cat("top_prob"), self._cat("correct").double()
        p_t, sum_sq = self._cat("target_prob"), self._cat("sum_sq")
        edges = torch.linspace(0, 1, self.bins + 1, dtype=torch.float64)
        which = torch.bucketize(top, edges[1:-1])
        acc_sum = torch.bincount(which, correct, minlength=self.bins)
        conf_sum = torch.bincount(which, top, minlength=self.bins)
        ece = ((acc_sum - conf_sum).abs().sum() / top.numel()).item()
        return {
            "acc": float(correct.mean()),
            "ece": ece,
            "nll": float(-torch.log(p_t.clamp_min(1e-12)).mean()),
            "brier": float((sum_sq - 2 * p_t + 1).mean()),
        }


class OODDetectionMetrics(_CatMetric):
    """AUROC, AUPR and ``fpr@p`` (OOD positive, score = -confidence)."""

    STATES = ("confidence", "is_ood")

    def __init__(self, tpr: float = 0.95, definitions="standard", **kwargs):
        super().__init__(**kwargs)
        self.tpr, self.definitions = tpr, get_definitions(definitions)

    def update(self, confidence: torch.Tensor, is_ood: torch.Tensor) -> None:
        self._append(confidence=confidence.double(), is_ood=is_ood.bool())

    def compute(self) -> dict[str, float]:
        conf, ood = self._cat("confidence"), self._cat("is_ood").bool()
        id_conf, ood_conf = conf[~ood], conf[ood]
        return {
            "auroc": auroc(id_conf, ood_conf),
            "aupr": aupr(id_conf, ood_conf),
            f"fpr@{_pct(self.tpr)}": self.definitions.fpr(id_conf, ood_conf, self.tpr),
        }


class SCODMetrics(_CatMetric):
    """SCOD AURC and risk@c of an (already mixed) ID + OOD set; ``correct`` ignored for OOD."""

    STATES = ("confidence", "correct", "is_ood")

    def __init__(self, coverages=(0.8,), beta: float = 1.0, **kwargs):
        super().__init__(**kwargs)
        self.coverages, self.beta = tuple(coverages), beta

    def update(self, confidence: torch.Tensor, correct: torch.Tensor, is_ood: torch.Tensor) -> None:
        self._append(confidence=confidence.double(), correct=correct.bool(), is_ood=is_ood.bool())

    def compute(self) -> dict[str, float]:
        conf, ood = self._cat("confidence"), self._cat("is_ood").bool()
        args = (conf[~ood], self._cat("correct").bool()[~ood], conf[ood])
        out = {"scod_aurc": scod_aurc(*args, beta=self.beta)}
        for c in self.coverages:
            out[f"scod_risk@{_pct(c)}"] = scod_risk_at_coverage(*args, c, beta=self.beta)
        return out


class CascadeOutputs(_CatMetric):
    """Accumulates (probs, confidence, exit stage, target) of every sample seen, for the
    cascade module, which turns them into every metric row at the end of ``test``.

    ``compute()`` returns the samples in dataset order (by sample index), whatever the number
    of processes, so order-dependent steps (SCOD's seeded subsampling) match one process.
    """

    STATES = ("probs", "confidence", "exit_stage", "targets", "sample_ids")

    def update(
        self, result: CascadeResult, targets: torch.Tensor, sample_ids: torch.Tensor
    ) -> None:
        self._append(
            probs=result.probs.float(),
            confidence=result.confidence.double(),
            exit_stage=result.exit_stage.long(),
            targets=targets.long(),
            sample_ids=sample_ids.long(),
        )

    def compute(self) -> tuple[CascadeResult, torch.Tensor]:
        order = torch.argsort(self._cat("sample_ids"))
        result = CascadeResult(
            probs=self._cat("probs")[order],
            confidence=self._cat("confidence")[order],
            exit_stage=self._cat("exit_stage")[order],
        )
        return result, self._cat("targets")[order]
