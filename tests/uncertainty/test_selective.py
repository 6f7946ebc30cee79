"""Selective-classification maths against brute-force references."""

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from window_cascades.uncertainty.selective import (
    UnreachableTargetError,
    aurc,
    coverage_at_risk,
    risk_at_coverage,
    risk_coverage_curve,
)


def brute_curve(conf, correct):
    """One point per distinct threshold t: accept conf >= t."""
    conf, correct = np.asarray(conf, float), np.asarray(correct, bool)
    points = []
    for t in sorted(set(conf.tolist()), reverse=True):
        acc = conf >= t
        points.append((acc.mean(), (~correct[acc]).mean(), t))
    return points


def brute_aurc(conf, correct):
    pts = brute_curve(conf, correct)
    cov = [0.0] + [p[0] for p in pts]
    risk = [pts[0][1]] + [p[1] for p in pts]
    return sum((cov[i + 1] - cov[i]) * (risk[i + 1] + risk[i]) / 2 for i in range(len(pts)))


samples = st.integers(1, 60).flatmap(
    lambda n: st.tuples(
        st.lists(st.integers(0, 6), min_size=n, max_size=n),  # coarse values: many ties
        st.lists(st.booleans(), min_size=n, max_size=n),
    )
)


@settings(max_examples=150, deadline=None)
@given(samples)
def test_curve_and_aurc_match_brute_force(data):
    conf, correct = torch.tensor(data[0], dtype=torch.float64), torch.tensor(data[1])
    curve = risk_coverage_curve(conf, correct)
    ref = brute_curve(data[0], data[1])
    assert curve.coverage.tolist() == pytest.approx([p[0] for p in ref])
    assert curve.risk.tolist() == pytest.approx([p[1] for p in ref])
    assert curve.threshold.tolist() == pytest.approx([p[2] for p in ref])
    assert aurc(conf, correct) == pytest.approx(brute_aurc(data[0], data[1]))


@settings(max_examples=150, deadline=None)
@given(samples, st.sampled_from([0.0, 0.05, 0.2, 0.5]), st.sampled_from([0.1, 0.5, 0.8, 1.0]))
def test_cov_at_risk_and_risk_at_coverage_match_brute_force(data, r, c):
    conf, correct = torch.tensor(data[0], dtype=torch.float64), torch.tensor(data[1])
    ref = brute_curve(data[0], data[1])
    ok = [p for p in ref if p[1] <= r]
    if ok:
        best = max(ok, key=lambda p: p[0])
        assert coverage_at_risk(conf, correct, r) == pytest.approx((best[0], best[2]))
    else:
        with pytest.raises(UnreachableTargetError, match="lowest reachable risk"):
            coverage_at_risk(conf, correct, r)
    first = next(p for p in ref if p[0] >= c - 1e-12)
    assert risk_at_coverage(conf, correct, c) == pytest.approx((first[1], first[2]))


@settings(max_examples=100, deadline=None)
@given(samples)
def test_metrics_invariant_to_increasing_transforms(data):
    conf, correct = torch.tensor(data[0], dtype=torch.float64), torch.tensor(data[1])
    warped = torch.exp(conf) * 3 - 1
    assert aurc(warped, correct) == pytest.approx(aurc(conf, correct))
    if (~correct).float().mean() <= 0.3:
        assert coverage_at_risk(warped, correct, 0.3)[0] == pytest.approx(
            coverage_at_risk(conf, correct, 0.3)[0]
        )


def test_ties_do_not_depend_on_sample_order():
    conf = torch.tensor([0.9, 0.9, 0.5, 0.5])
    a = aurc(conf, torch.tensor([True, False, True, False]))
    b = aurc(conf, torch.tensor([False, True, False, True]))
    assert a == b


def test_hand_worked_example():
    # sorted: 0.9 ok, 0.8 wrong, 0.7 ok, 0.6 ok -> risks 0, 1/2, 1/3, 1/4
    conf = torch.tensor([0.7, 0.9, 0.6, 0.8])
    correct = torch.tensor([True, True, True, False])
    assert coverage_at_risk(conf, correct, 0.3) == pytest.approx((1.0, 0.6))
    assert coverage_at_risk(conf, correct, 0.0) == pytest.approx((0.25, 0.9))
    assert risk_at_coverage(conf, correct, 0.5) == pytest.approx((0.5, 0.8))
    # flat 0 on [0, .25], then trapezoids
    expected = 0 + 0.25 * (0 + 0.5) / 2 + 0.25 * (0.5 + 1 / 3) / 2 + 0.25 * (1 / 3 + 0.25) / 2
    assert aurc(conf, correct) == pytest.approx(expected)


def test_constant_score_aurc_is_error_rate():
    correct = torch.tensor([True, False, True, True])
    assert aurc(torch.ones(4), correct) == pytest.approx(0.25)


def _per_sample_area(order_correct: list[bool], generalized: bool) -> float:
    """Trapezoid over one point per sample (accepted in the given order), brute force."""
    n, errors, points = len(order_correct), 0, [(0.0, 0.0)]
    for k, ok in enumerate(order_correct, start=1):
        errors += not ok
        points.append((k / n, errors / n if generalized else errors / k))
    if not generalized:
        points[0] = (0.0, points[1][1])  # AURC: flat to coverage 0
    pairs = zip(points[:-1], points[1:], strict=True)
    return sum((c1 - c0) * (r0 + r1) / 2 for (c0, r0), (c1, r1) in pairs)


def test_augrc_is_the_mean_over_tie_orders_of_the_per_sample_area():
    import itertools

    from window_cascades.uncertainty.selective import augrc

    conf = torch.tensor([0.9, 0.7, 0.7, 0.7, 0.4, 0.4, 0.1])
    correct = torch.tensor([True, False, True, True, False, True, False])
    groups = [[0], [1, 2, 3], [4, 5], [6]]
    areas = []
    for perms in itertools.product(*(itertools.permutations(g) for g in groups)):
        order = [i for p in perms for i in p]
        areas.append(_per_sample_area([bool(correct[i]) for i in order], generalized=True))
    assert augrc(conf, correct) == pytest.approx(sum(areas) / len(areas), abs=1e-12)
    # constant score: error rate / 2; perfect ranking of 2 errors in 10: (0.2)^2 / 2
    assert augrc(torch.zeros(7), correct) == pytest.approx(3 / 7 / 2)
    perfect = torch.tensor([True] * 8 + [False] * 2)
    assert augrc(torch.arange(10, 0, -1).double(), perfect) == pytest.approx(0.2 * 0.2 / 2)


def test_excess_aurc_subtracts_the_oracle_ranking():
    from window_cascades.uncertainty.selective import aurc, excess_aurc

    gen = torch.Generator().manual_seed(3)
    correct = torch.rand(40, generator=gen) > 0.3
    conf = torch.rand(40, generator=gen)
    oracle = _per_sample_area(sorted(correct.tolist(), reverse=True), generalized=False)
    assert excess_aurc(conf, correct) == pytest.approx(aurc(conf, correct) - oracle, abs=1e-12)
    ranked = correct.double() + torch.rand(40, generator=gen) * 0.5  # every correct above
    assert excess_aurc(ranked, correct) == pytest.approx(0.0, abs=1e-12)
    assert excess_aurc(conf, correct) > 0


def test_scod_augrc_counts_accepted_ood_as_errors_over_the_whole_mixture():
    from window_cascades.uncertainty.scod import scod_augrc

    id_conf, ood_conf = torch.tensor([0.9, 0.6, 0.3]), torch.tensor([0.8, 0.2])
    id_correct = torch.tensor([True, False, True])
    # order: id .9 ok, ood .8, id .6 wrong, id .3 ok, ood .2 -> losses 0,1,1,0,1 over 5 samples
    expected = _per_sample_area([True, False, False, True, False], generalized=True)
    assert scod_augrc(id_conf, id_correct, ood_conf) == pytest.approx(expected, abs=1e-12)
    beta = scod_augrc(id_conf, id_correct, ood_conf, beta=0.0)
    assert beta == pytest.approx(_per_sample_area([True, True, False, True, True], True))
