"""The paper's window rule and the single-threshold rule on hand-made held-out scores."""

import pytest
import torch

from window_cascades.cascade.builtin_policies import fit_window_stage
from window_cascades.cascade.policy_registry import FitInputs, PolicySettings, fit_policies
from window_cascades.uncertainty.selective import UnreachableTargetError
from window_cascades.uncertainty.targets import parse_target


def heldout(n=100):
    # confidences 1/n .. 1; the 30% least confident samples are wrong, the rest right
    conf = torch.arange(1, n + 1, dtype=torch.float64) / n
    correct = torch.arange(n) >= 0.3 * n
    return conf, correct


def test_window_for_cov_target():
    conf, correct = heldout()
    # risk <= 5% first fails when accepting the 4th wrong sample: accept k samples with
    # errors max(0, k - 70); largest k with (k - 70) / k <= 0.05 is k = 73 -> tau = 0.28
    stage = fit_window_stage(conf, correct, parse_target("cov@5"), 0.1)
    assert stage["tau"] == pytest.approx(0.28)
    assert stage["q"] == pytest.approx(0.28)
    assert stage["lower"] == pytest.approx(torch.quantile(conf, 0.18).item())
    assert stage["upper"] == pytest.approx(torch.quantile(conf, 0.38).item())
    inside = (conf >= stage["lower"]) & (conf <= stage["upper"])
    assert inside.float().mean().item() == pytest.approx(0.2, abs=0.011)


def test_window_for_risk_and_fpr_targets():
    conf, correct = heldout()
    risk = fit_window_stage(conf, correct, parse_target("risk@80"), 0.05)
    assert risk["tau"] == pytest.approx(0.21)  # 80 samples accepted
    fpr = fit_window_stage(conf, correct, parse_target("fpr@95"), 0.1)
    assert fpr["tau"] == pytest.approx(0.06)  # accepts 95 of 100
    # q - w < 0: the band [q - w, q + w] is shifted to [0, 2w] and open below
    assert fpr["lower"] is None
    assert fpr["upper"] == pytest.approx(torch.quantile(conf, 0.2).item())


def test_fit_policies_builds_all_four():
    conf, correct = heldout(200)  # cov@5 needs at least 200 held-out samples
    policies = fit_policies(
        ["single", "ensemble", "single_threshold", "window"],
        FitInputs([conf], [correct]),
        PolicySettings("cov@5", width=0.1, pass_fraction=0.2),
    )
    x = torch.tensor([0.05, 0.25, 0.5])
    assert policies["single"].passes(1, x).tolist() == [False, False, False]
    assert policies["ensemble"].passes(1, x).tolist() == [True, True, True]
    t = policies["single_threshold"].bounds[0, 1].item()
    assert t == pytest.approx(torch.quantile(conf, 0.2).item())
    assert policies["single_threshold"].passes(1, x).tolist() == [True, False, False]
    assert policies["window"].passes(1, x).tolist() == [False, True, False]
    assert policies["window"].setting == "cov@5,w=0.1"


def test_policies_round_trip_through_json_dict():
    from window_cascades.cascade.policies import policy_from_dict

    conf, correct = heldout(200)
    names = ["single", "ensemble", "window", "random"]
    for policy in fit_policies(names, FitInputs([conf], [correct])).values():
        back = policy_from_dict(policy.to_dict())
        ids = torch.arange(conf.numel())
        assert back.passes(1, conf, ids).tolist() == policy.passes(1, conf, ids).tolist()


@pytest.mark.parametrize("width", [0, -0.1, 0.51, 1.0])
def test_width_outside_range_is_refused(width):
    conf, correct = heldout()
    with pytest.raises(ValueError, match=r"\(0, 0.5\]"):
        PolicySettings(width=width)


def test_unreachable_risk_names_lowest_reachable_risk():
    conf = torch.linspace(0, 1, 1000)
    correct = torch.arange(1000) % 2 == 0  # the most confident sample is wrong
    correct[-1] = False
    with pytest.raises(UnreachableTargetError, match=r"'held'.*lowest reachable risk is 0\.5000"):
        fit_policies(
            ["window"], FitInputs([conf], [correct], None, "held"), PolicySettings("cov@1")
        )


def test_empty_heldout_is_refused():
    with pytest.raises(ValueError, match="held-out split is empty"):
        fit_policies(["window"], FitInputs([torch.empty(0)], [torch.empty(0, dtype=torch.bool)]))


@pytest.mark.parametrize("bad", ["cov5", "cov@0", "acc@5", "fpr@150"])
def test_bad_target_is_refused(bad):
    with pytest.raises(ValueError, match="target"):
        parse_target(bad)


def test_heldout_split_too_small_for_the_target_states_the_minimum():
    conf, correct = heldout(150)
    with pytest.raises(ValueError, match=r"'held' has 150 samples.*cov@5 needs at least 200"):
        fit_policies(["window"], FitInputs([conf], [correct], heldout_name="held"))
    # a looser target needs fewer: risk@80 needs 50
    fit_policies(["window"], FitInputs([conf], [correct]), PolicySettings("risk@80"))


def test_a_one_member_cascade_fits_every_policy_with_no_stage():
    fitted = fit_policies(["single", "window", "single_threshold"], FitInputs([], []))
    assert all(p.num_stages == 1 for p in fitted.values())
