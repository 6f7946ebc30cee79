"""Failure (misclassification) detection: AUROC and FPR at a TPR of correct vs wrong
predictions, against scikit-learn and a brute-force threshold scan, resampled and reported."""

from __future__ import annotations

import math

import pytest
import torch
from sklearn.metrics import roc_auc_score, roc_curve

from window_cascades.cascade.metric_registry import MetricInputs, MetricSettings, metric_entries
from window_cascades.cascade.sample_outputs import SampleOutputs
from window_cascades.uncertainty.failure_detection import (
    failure_auroc,
    failure_fpr_at_tpr,
    weighted_failure_auroc,
    weighted_failure_fpr,
)
from window_cascades.uncertainty.paper_definitions import paper_fpr_threshold
from window_cascades.uncertainty.weighted_curve import draw_counts


def _sample(n: int, seed: int, ties: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """Confidences that carry some information about correctness (correct ones higher)."""
    gen = torch.Generator().manual_seed(seed)
    correct = torch.rand(n, generator=gen) < 0.7
    conf = torch.rand(n, generator=gen) + 0.4 * correct.double()
    if ties:
        conf = (conf * 10).round() / 10
    return conf, correct


def _brute_fpr(conf: torch.Tensor, correct: torch.Tensor, tpr: float) -> float:
    """The fraction of wrong predictions accepted at the largest threshold (scanning every
    distinct confidence) that accepts at least ``tpr`` of the correct ones."""
    best = None
    for t in sorted(set(conf.tolist()), reverse=True):
        if (conf[correct] >= t).double().mean() >= tpr - 1e-12:
            best = t
            break
    return float((conf[~correct] >= best).double().mean())


@pytest.mark.parametrize("ties", [False, True])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_failure_auroc_is_sklearns_roc_auc_of_correctness_by_confidence(seed, ties):
    conf, correct = _sample(500, seed, ties)
    expected = roc_auc_score(correct.numpy(), conf.numpy())
    assert failure_auroc(conf, correct) == pytest.approx(expected, abs=1e-12)


@pytest.mark.parametrize("tpr", [0.95, 0.9, 0.5])
@pytest.mark.parametrize("ties", [False, True])
def test_failure_fpr_is_the_fpr_at_the_first_threshold_reaching_the_tpr(tpr, ties):
    conf, correct = _sample(400, 3, ties)
    value = failure_fpr_at_tpr(conf, correct, tpr)
    assert value == pytest.approx(_brute_fpr(conf, correct, tpr), abs=1e-12)
    # fd-shifts' fpr@95tpr: the smallest FPR on sklearn's ROC curve among points with TPR >= p
    fpr, tprs, _ = roc_curve(correct.numpy(), conf.numpy(), drop_intermediate=False)
    assert value == pytest.approx(float(fpr[tprs >= tpr - 1e-12].min()), abs=1e-12)


def test_directions_and_undefined_cases():
    correct = torch.tensor([True, True, True, False, False])
    separated = torch.tensor([0.9, 0.8, 0.7, 0.2, 0.1])
    assert failure_auroc(separated, correct) == 1.0
    assert failure_fpr_at_tpr(separated, correct, 0.95) == 0.0
    assert failure_auroc(1 - separated, correct) == 0.0
    assert failure_fpr_at_tpr(1 - separated, correct, 0.95) == 1.0
    assert failure_auroc(torch.full((5,), 0.5), correct) == 0.5  # all tied: chance
    # no wrong (or no correct) prediction: nothing to detect, reported as NaN
    assert math.isnan(failure_auroc(separated, torch.ones(5, dtype=torch.bool)))
    assert math.isnan(failure_fpr_at_tpr(separated, torch.zeros(5, dtype=torch.bool)))
    with pytest.raises(ValueError, match="4 correctness flags"):
        failure_auroc(separated, correct[:4])


@pytest.mark.parametrize("ties", [False, True])
def test_the_resampled_versions_equal_the_metric_of_every_resample(ties):
    conf, correct = _sample(300, 4, ties)
    gen = torch.Generator().manual_seed(5)
    draws = torch.randint(300, (20, 300), generator=gen)
    weights = draw_counts(draws, 300)
    auroc = weighted_failure_auroc(conf, correct, weights)
    fpr = weighted_failure_fpr(conf, correct, weights, 0.95)
    for b in range(20):
        c, ok = conf[draws[b]], correct[draws[b]]
        assert auroc[b].item() == pytest.approx(failure_auroc(c, ok), abs=1e-12)
        assert fpr[b].item() == pytest.approx(failure_fpr_at_tpr(c, ok, 0.95), abs=1e-12)
    # a resample that drew no wrong prediction has no value (the interval skips it)
    only_right = torch.nonzero(correct).flatten()[:5].repeat(60)[None, :300]
    w = draw_counts(only_right, 300)
    assert torch.isnan(weighted_failure_auroc(conf, correct, w)).all()
    assert torch.isnan(weighted_failure_fpr(conf, correct, w, 0.95)).all()


@pytest.mark.parametrize("definitions", ["standard", "paper"])
def test_registered_for_every_labelled_dataset_with_the_ood_tpr(definitions):
    conf, correct = _sample(200, 6, ties=False)
    gen = torch.Generator().manual_seed(6)
    probs = torch.softmax(torch.randn(200, 4, generator=gen), -1)
    targets = torch.where(correct, probs.argmax(-1), (probs.argmax(-1) + 1) % 4)
    outputs = SampleOutputs.from_probs(probs, conf, torch.ones(200, dtype=torch.long), targets)
    settings = MetricSettings(ood_tpr=0.9, definitions=definitions)
    inputs = MetricInputs(outputs, outputs, [1.0], settings)
    entries = metric_entries()
    assert set(entries["fail_auroc"].roles) == {"heldout", "id", "shift"}
    assert entries["fail_auroc"].higher_is_better and not entries["fail_fpr@P"].higher_is_better
    assert entries["fail_auroc"].compute(inputs) == {"fail_auroc": failure_auroc(conf, correct)}
    threshold = paper_fpr_threshold if definitions == "paper" else None
    expected = (
        failure_fpr_at_tpr(conf, correct, 0.9, threshold)
        if threshold
        else failure_fpr_at_tpr(conf, correct, 0.9)
    )
    assert entries["fail_fpr@P"].compute(inputs) == {"fail_fpr@90": expected}
