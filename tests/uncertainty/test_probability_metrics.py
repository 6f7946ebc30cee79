"""Probability metrics (accuracy, NLL, ECE, Brier) against brute force."""

import numpy as np
import pytest
import torch
from hypothesis import strategies as st

from window_cascades.uncertainty.definitions import get_definitions
from window_cascades.uncertainty.probability_metrics import (
    accuracy,
    brier_score,
    expected_calibration_error,
    negative_log_likelihood,
)

fpr_at_tpr = get_definitions("standard").fpr

scores = st.lists(st.integers(0, 8).map(lambda v: v / 8), min_size=1, max_size=40)


def brute_ece(probs, targets, bins=15):
    conf, pred = probs.max(1), probs.argmax(1)
    total = 0.0
    for b in range(bins):
        lo, hi = b / bins, (b + 1) / bins
        m = (conf > lo) & (conf <= hi) if b else (conf >= 0) & (conf <= hi)
        if m.any():
            total += m.mean() * abs((pred[m] == targets[m]).mean() - conf[m].mean())
    return total


def test_calibration_metrics_match_brute_force():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(300, 5)) * 3
    probs = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    targets = rng.integers(0, 5, size=300)
    p, t = torch.tensor(probs), torch.tensor(targets)
    assert expected_calibration_error(p, t) == pytest.approx(brute_ece(probs, targets))
    assert negative_log_likelihood(p, t) == pytest.approx(
        -np.log(probs[np.arange(300), targets]).mean()
    )
    onehot = np.eye(5)[targets]
    assert brier_score(p, t) == pytest.approx(((probs - onehot) ** 2).sum(1).mean())
    assert accuracy(p, t) == pytest.approx((probs.argmax(1) == targets).mean())


def test_perfectly_calibrated_confident_model_has_zero_ece():
    probs = torch.eye(4)
    assert expected_calibration_error(probs, torch.arange(4)) == 0.0
