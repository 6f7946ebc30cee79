"""Callbacks: cascade calibration, the results, predictions and cached-logits writers,
member checkpoints, preemption."""

from lightning_modules.callbacks.cascade_calibration import CascadeCalibration
from lightning_modules.callbacks.logits_writer import CachedLogitsWriter
from lightning_modules.callbacks.member_checkpoint import MemberCheckpoint
from lightning_modules.callbacks.predictions_writer import CascadePredictionsWriter
from lightning_modules.callbacks.preemption import PreemptionCheckpoint
from lightning_modules.callbacks.results_writer import CascadeResultsWriter

__all__ = [
    "CachedLogitsWriter",
    "CascadeCalibration",
    "CascadePredictionsWriter",
    "CascadeResultsWriter",
    "MemberCheckpoint",
    "PreemptionCheckpoint",
]
