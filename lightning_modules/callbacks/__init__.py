"""Callbacks: window calibration, the cached-logits writer, and preemption-safe checkpoints."""

from lightning_modules.callbacks.logits_writer import CachedLogitsWriter
from lightning_modules.callbacks.preemption import PreemptionCheckpoint
from lightning_modules.callbacks.window_calibration import WindowCalibration

__all__ = ["CachedLogitsWriter", "PreemptionCheckpoint", "WindowCalibration"]
