"""Callbacks: cascade calibration, the results, predictions and cached-logits writers,
member checkpoints, preemption, one line per epoch in logs."""

from window_cascades.lightning_modules.callbacks.cascade_calibration import CascadeCalibration
from window_cascades.lightning_modules.callbacks.epoch_line import EpochLine
from window_cascades.lightning_modules.callbacks.logits_writer import CachedLogitsWriter
from window_cascades.lightning_modules.callbacks.member_checkpoint import MemberCheckpoint
from window_cascades.lightning_modules.callbacks.predictions_writer import CascadePredictionsWriter
from window_cascades.lightning_modules.callbacks.preemption import PreemptionCheckpoint
from window_cascades.lightning_modules.callbacks.results_writer import CascadeResultsWriter

__all__ = [
    "CachedLogitsWriter",
    "CascadeCalibration",
    "CascadePredictionsWriter",
    "CascadeResultsWriter",
    "EpochLine",
    "MemberCheckpoint",
    "PreemptionCheckpoint",
]
