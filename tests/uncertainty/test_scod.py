"""SCOD (selective classification with OOD data) against brute force."""

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from window_cascades.uncertainty.scod import (
    scod_aurc,
    scod_curve,
    scod_mixture,
    scod_risk_at_coverage,
)


def brute_scod(id_conf, id_correct, ood_conf, beta):
    conf = np.r_[id_conf, ood_conf]
    pts = []
    for t in sorted(set(conf.tolist()), reverse=True):
        acc_id, acc_ood = id_conf >= t, ood_conf >= t
        loss = (~id_correct[acc_id]).sum() + beta * acc_ood.sum()
        pts.append((acc_id.mean(), loss / (acc_id.sum() + acc_ood.sum())))
    return pts


values = st.lists(st.integers(0, 5).map(float), min_size=1, max_size=30)


@settings(max_examples=100, deadline=None)
@given(values, values, st.sampled_from([0.5, 1.0, 2.0]), st.randoms(use_true_random=False))
def test_scod_curve_matches_brute_force(id_list, ood_list, beta, rnd):
    id_conf, ood_conf = np.array(id_list), np.array(ood_list)
    id_correct = np.array([rnd.random() < 0.7 for _ in id_list])
    curve = scod_curve(
        torch.tensor(id_conf), torch.tensor(id_correct), torch.tensor(ood_conf), beta
    )
    ref = brute_scod(id_conf, id_correct, ood_conf, beta)
    assert curve.coverage.tolist() == pytest.approx([p[0] for p in ref])
    assert curve.risk.tolist() == pytest.approx([p[1] for p in ref])
    cov = [0.0] + [p[0] for p in ref]
    risk = [ref[0][1]] + [p[1] for p in ref]
    area = sum((cov[i + 1] - cov[i]) * (risk[i + 1] + risk[i]) / 2 for i in range(len(ref)))
    args = (torch.tensor(id_conf), torch.tensor(id_correct), torch.tensor(ood_conf))
    assert scod_aurc(*args, beta=beta) == pytest.approx(area)
    first = next(p for p in ref if p[0] >= 0.5 - 1e-12)
    assert scod_risk_at_coverage(*args, 0.5, beta=beta) == pytest.approx(first[1])


def test_scod_mixture_sizes_and_determinism():
    id_idx, ood_idx = scod_mixture(100, 300, 1.0, seed=3)
    assert (id_idx.numel(), ood_idx.numel()) == (100, 100)
    assert torch.equal(ood_idx, scod_mixture(100, 300, 1.0, seed=3)[1])
    id_idx, ood_idx = scod_mixture(100, 30, 1.0, seed=3)
    assert (id_idx.numel(), ood_idx.numel()) == (30, 30)
    id_idx, ood_idx = scod_mixture(100, 300, 0.5)
    assert (id_idx.numel(), ood_idx.numel()) == (100, 50)
