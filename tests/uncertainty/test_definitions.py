"""The window's band and when it is clamped to an end of the held-out scores."""

from __future__ import annotations

import pytest
import torch

from window_cascades.uncertainty.definitions import standard_window, window_clamp


@pytest.mark.parametrize(
    ("q", "width", "clamp"),
    [
        (0.004, 0.1, "low"),  # the quick start's digits at cov@5
        (0.0999, 0.1, "low"),
        (0.1, 0.1, None),
        (0.2, 0.1, None),  # risk@80
        (0.9, 0.1, None),
        (0.9001, 0.1, "high"),
        (0.933, 0.1, "high"),
        (0.5, 0.5, None),
        (0.3, 0.35, "low"),
    ],
)
def test_the_band_is_clamped_exactly_when_it_would_leave_the_scores(q, width, clamp):
    assert window_clamp(q, width) == clamp


def test_a_clamped_standard_window_is_the_least_confident_2w():
    scores = torch.arange(1, 1001, dtype=torch.float64) / 1000  # quantile q at score q
    low = standard_window(scores, tau=0.004, width=0.1)
    assert low["lower"] == float("-inf") and low["upper"] == pytest.approx(0.2, abs=1e-3)
    centred = standard_window(scores, tau=0.2, width=0.1)
    assert window_clamp(centred["q"], 0.1) is None
    assert (centred["lower"], centred["upper"]) == pytest.approx((0.1, 0.3), abs=1e-3)
    high = standard_window(scores, tau=0.95, width=0.1)
    assert high["upper"] == float("inf") and high["lower"] == pytest.approx(0.8, abs=1e-3)
