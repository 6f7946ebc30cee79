"""Callbacks: window calibration on the held-out split, and the cached-logits writer."""

from lightning_modules.callbacks.logits_writer import CachedLogitsWriter
from lightning_modules.callbacks.window_calibration import WindowCalibration

__all__ = ["CachedLogitsWriter", "WindowCalibration"]
