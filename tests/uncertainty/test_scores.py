"""Confidence scores of members and ensembles."""

import pytest
import torch

from window_cascades.uncertainty.scores import EnsembleState, confidence_from_logits


def test_single_model_scores():
    logits = torch.tensor([[2.0, 0.0, -1.0]])
    p = logits.softmax(-1)
    assert confidence_from_logits(logits, "msp").item() == pytest.approx(p.max().item())
    assert confidence_from_logits(logits, "entropy").item() == pytest.approx(
        (p * p.log()).sum().item()
    )
    assert confidence_from_logits(logits, "max_logit").item() == 2.0
    assert confidence_from_logits(logits, "energy").item() == pytest.approx(
        torch.logsumexp(logits, -1).item()
    )


def test_ensemble_scores_follow_design():
    a, b = torch.randn(6, 4), torch.randn(6, 4) * 2
    state = EnsembleState.from_logits(a).add(b)
    probs = (a.softmax(-1) + b.softmax(-1)) / 2
    torch.testing.assert_close(state.probs, probs)
    torch.testing.assert_close(state.confidence("msp"), probs.max(-1).values)
    torch.testing.assert_close(state.confidence("entropy"), (probs * probs.log()).sum(-1))
    torch.testing.assert_close(
        state.confidence("max_logit"), (a.max(-1).values + b.max(-1).values) / 2
    )
    torch.testing.assert_close(
        state.confidence("energy"), (torch.logsumexp(a, -1) + torch.logsumexp(b, -1)) / 2
    )


def test_unknown_score_is_named():
    with pytest.raises(ValueError, match="'margin'"):
        confidence_from_logits(torch.zeros(1, 2), "margin")


def test_mutual_information_of_an_ensemble():
    a = torch.tensor([[4.0, 0.0], [0.0, 0.0]])
    b = torch.tensor([[0.0, 4.0], [0.0, 0.0]])
    state = EnsembleState.from_logits(a).add(b)
    pa, pb = a.softmax(-1), b.softmax(-1)
    mean = (pa + pb) / 2

    def h(p):
        return -(p * p.log()).sum(-1)

    mi = h(mean) - (h(pa) + h(pb)) / 2
    torch.testing.assert_close(state.confidence("mutual_information"), -mi)
    assert state.confidence("mutual_information")[1].item() == pytest.approx(0.0, abs=1e-7)
    assert EnsembleState.from_logits(a).confidence("mutual_information").eq(0).all()
