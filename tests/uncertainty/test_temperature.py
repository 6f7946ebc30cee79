"""Temperature scaling fitted on held-out logits."""

import pytest
import torch

from window_cascades.uncertainty.temperature import fit_temperature


def test_temperature_scaling_recovers_a_known_temperature():
    gen = torch.Generator().manual_seed(0)
    true_logits = torch.randn(4000, 5, generator=gen) * 2
    targets = torch.multinomial(true_logits.softmax(-1), 1, generator=gen).squeeze(1)
    t = fit_temperature(true_logits * 3, targets)  # an overconfident model, 3x too sharp
    assert t == pytest.approx(3.0, rel=0.1)
    with torch.inference_mode():  # as inside a Lightning test run
        assert fit_temperature(true_logits, targets) == pytest.approx(1.0, rel=0.1)
