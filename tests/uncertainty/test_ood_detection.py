"""OOD detection metrics against scikit-learn and brute force."""

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import average_precision_score, roc_auc_score

from window_cascades.uncertainty.definitions import get_definitions
from window_cascades.uncertainty.ood_detection import aupr, auroc

fpr_at_tpr = get_definitions("standard").fpr

scores = st.lists(st.integers(0, 8).map(lambda v: v / 8), min_size=1, max_size=40)


@settings(max_examples=150, deadline=None)
@given(scores, scores)
def test_auroc_and_aupr_match_sklearn(id_list, ood_list):
    id_conf, ood_conf = torch.tensor(id_list), torch.tensor(ood_list)
    y = np.r_[np.zeros(len(id_list)), np.ones(len(ood_list))]
    s = -np.r_[id_list, ood_list]
    assert auroc(id_conf, ood_conf) == pytest.approx(roc_auc_score(y, s))
    assert aupr(id_conf, ood_conf) == pytest.approx(average_precision_score(y, s))


@settings(max_examples=150, deadline=None)
@given(scores, scores, st.sampled_from([0.5, 0.9, 0.95, 1.0]))
def test_fpr_matches_brute_force(id_list, ood_list, p):
    # brute force: the largest threshold among ID values accepting >= p of ID
    ids = np.array(id_list)
    t = max(v for v in ids if (ids >= v).mean() >= p - 1e-12)
    expected = (np.array(ood_list) >= t).mean()
    assert fpr_at_tpr(torch.tensor(id_list), torch.tensor(ood_list), p) == pytest.approx(expected)


def test_perfect_separation():
    assert auroc(torch.tensor([0.9, 0.8]), torch.tensor([0.1, 0.2])) == 1.0
    assert fpr_at_tpr(torch.tensor([0.9, 0.8]), torch.tensor([0.1, 0.2]), 0.95) == 0.0
