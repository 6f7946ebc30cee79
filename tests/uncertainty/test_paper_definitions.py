"""The reference code's definitions (``paper``) on hand-worked examples."""

import pytest
import torch

from window_cascades.uncertainty.definitions import get_definitions, standard_window
from window_cascades.uncertainty.paper_definitions import (
    paper_aurc,
    paper_coverage_at_risk,
    paper_fpr_threshold,
    paper_percentile_rank,
    paper_risk_at_coverage,
    paper_window,
)
from window_cascades.uncertainty.selective import UnreachableTargetError


def test_paper_aurc_prepends_origin():
    conf = torch.tensor([0.7, 0.9, 0.6, 0.8])
    correct = torch.tensor([True, True, True, False])
    # per-sample risks 0, 1/2, 1/3, 1/4 at coverage 1/4 .. 1, plus (0, 0)
    expected = 0.25 * (0 + 0) / 2 + 0.25 * (0 + 0.5) / 2
    expected += 0.25 * (0.5 + 1 / 3) / 2 + 0.25 * (1 / 3 + 0.25) / 2
    assert paper_aurc(conf, correct) == pytest.approx(expected)


def thousand():
    conf = torch.linspace(1, 0, 1000)
    correct = torch.arange(1000) < 600  # the 600 most confident are right, the rest wrong
    return conf, correct


def test_paper_cov_at_risk_is_the_closest_point_after_500():
    conf, correct = thousand()
    # risk (k - 600) / k: 31/631 = 0.0491, 32/632 = 0.0506 -> k = 632 is closest to 0.05
    cov, thr = paper_coverage_at_risk(conf, correct, 0.05)
    assert cov == pytest.approx(0.632)
    assert thr == pytest.approx(conf[631].item())
    # risk 0 is met from k = 1, but the first 500 points are skipped: the first k > 500 wins
    assert paper_coverage_at_risk(conf, correct, 0.0)[0] == pytest.approx(0.501)
    with pytest.raises(UnreachableTargetError, match="skip the first 500"):
        paper_coverage_at_risk(conf[:400], correct[:400], 0.05)


def test_paper_risk_at_coverage_is_the_closest_point():
    conf, correct = thousand()
    risk, thr = paper_risk_at_coverage(conf, correct, 0.8)
    assert risk == pytest.approx(200 / 800)
    assert thr == pytest.approx(conf[799].item())


def test_paper_fpr_threshold_and_percentile_rank():
    id_conf = torch.arange(1.0, 101.0)  # 1..100
    assert paper_fpr_threshold(id_conf, 0.95) == pytest.approx(torch.quantile(id_conf, 0.05).item())
    assert paper_percentile_rank(torch.tensor([1.0, 2.0, 2.0, 3.0]), 2.0) == pytest.approx(0.5)


def test_paper_window_clamps_while_standard_window_shifts():
    conf = torch.arange(1.0, 101.0)
    paper = paper_window(conf, tau=5.0, width=0.1)  # q = 0.045
    assert paper["lower"] == pytest.approx(1.0)  # Q(0): clamped at the minimum
    assert paper["upper"] == pytest.approx(torch.quantile(conf, paper["q"] + 0.1).item())
    standard = standard_window(conf, tau=5.0, width=0.1)  # q = 0.05 -> band [0, 0.2]
    assert standard["lower"] == float("-inf")
    assert standard["upper"] == pytest.approx(torch.quantile(conf, 0.2).item())


def test_definitions_registry():
    assert get_definitions("paper").name == "paper"
    with pytest.raises(ValueError, match="'exact'"):
        get_definitions("exact")
