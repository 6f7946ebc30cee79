"""Properties of the policies, checked on synthetic ensembles through the offline driver, and
the contract every registered policy keeps (a plugin's too)."""

import importlib

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from window_cascades.cascade.engine import run_cascade
from window_cascades.cascade.offline import (
    EnsembleLogits,
    evaluate_experiment,
    fit_inputs,
    prepare_experiment,
)
from window_cascades.cascade.policies import policy_from_dict
from window_cascades.cascade.policy_registry import (
    COST_MATCHED,
    FIRST_MEMBER,
    FitInputs,
    PolicySettings,
    cost_matched_policy,
    default_policies,
    fit_policies,
    policy_entry,
    policy_names,
    reference_policies,
    register_policy,
    unregister_policy,
)
from window_cascades.uncertainty.selective import UnreachableTargetError, coverage_at_risk

ROLES = {"held": "heldout", "test": "id", "ood": "ood"}


def synthetic(seed: int, members: int = 2, n: int = 400, c: int = 6, noise: float = 1.5):
    """Members that share a signal and add their own noise; OOD has no signal."""
    gen = torch.Generator().manual_seed(seed)
    data = {}
    for name, size in (("held", n), ("test", n), ("ood", n // 2)):
        targets = torch.randint(c, (size,), generator=gen)
        signal = torch.nn.functional.one_hot(targets, c).float() * 3
        if name == "ood":
            signal, targets = torch.zeros(size, c), torch.full((size,), -1)
        logits = [signal + noise * torch.randn(size, c, generator=gen) for _ in range(members)]
        data[name] = EnsembleLogits(logits, targets)
    return data


def metrics(rows, policy, dataset="test"):
    return {
        r["metric"]: r["value"] for r in rows if r["policy"] == policy and r["dataset"] == dataset
    }


@settings(max_examples=15, deadline=None)
@given(st.integers(0, 10_000), st.sampled_from(["msp", "energy", "entropy"]))
def test_half_width_window_is_the_full_ensemble(seed, score):
    data = synthetic(seed)
    rows, _, _ = evaluate_experiment(
        data,
        ROLES,
        [1.0, 1.0],
        ["ensemble", "window"],
        score,
        PolicySettings("risk@80", width=0.5),
    )
    for dataset in ROLES:
        assert metrics(rows, "window", dataset) == metrics(rows, "ensemble", dataset)


@settings(max_examples=15, deadline=None)
@given(st.integers(0, 10_000))
def test_vanishing_window_is_the_single_model(seed):
    data = synthetic(seed)
    # test scores that never coincide with a held-out quantile
    data["test"].logits = [z + 1e-3 for z in data["test"].logits]
    rows, _, _ = evaluate_experiment(
        data, ROLES, [1.0, 1.0], ["single", "window"], "msp", PolicySettings("risk@80", width=1e-9)
    )
    assert metrics(rows, "window") == metrics(rows, "single")


def test_window_cost_is_about_one_plus_two_w_in_distribution():
    data = synthetic(0, n=4000)
    rows, _, _ = evaluate_experiment(
        data, ROLES, [1.0, 1.0], ["window"], "msp", PolicySettings("cov@5", width=0.1)
    )
    assert metrics(rows, "window", "held")["expected_macs"] == pytest.approx(1.2, abs=0.01)
    assert metrics(rows, "window")["expected_macs"] == pytest.approx(1.2, abs=0.03)


def test_three_stage_cascade_windows_and_costs():
    data = synthetic(1, members=3, n=2000)
    rows, fitted, _ = evaluate_experiment(
        data,
        ROLES,
        [1.0, 2.0, 4.0],
        ["single", "ensemble", "window"],
        "msp",
        PolicySettings("cov@5", width=0.1),
    )
    assert fitted["window"].bounds.shape == (2, 2)
    w = metrics(rows, "window")
    assert w["exit_frac@1"] + w["exit_frac@2"] + w["exit_frac@3"] == pytest.approx(1.0)
    reach2, reach3 = 1 - w["exit_frac@1"], w["exit_frac@3"]
    assert w["expected_macs"] == pytest.approx(1 + 2 * reach2 + 4 * reach3)
    assert metrics(rows, "ensemble")["expected_macs"] == 7.0


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(0, 9), min_size=5, max_size=60), st.randoms(use_true_random=False))
def test_cov_at_risk_is_monotone_in_r(conf_list, rnd):
    conf = torch.tensor(conf_list, dtype=torch.float64)
    correct = torch.tensor([rnd.random() < 0.8 for _ in conf_list])
    covs = []
    for r in (0.0, 0.05, 0.1, 0.2, 0.5, 1.0):
        try:
            covs.append(coverage_at_risk(conf, correct, r)[0])
        except UnreachableTargetError:
            covs.append(0.0)
    assert covs == sorted(covs)


def test_random_policy_passes_its_fraction_the_same_way_online_and_offline():
    data = synthetic(2, n=4000)
    policy = fit_policies(
        ["random"],
        FitInputs([torch.rand(10)], [torch.ones(10, dtype=torch.bool)]),
        PolicySettings(width=0.15),
    )["random"]
    assert policy.fraction == pytest.approx(0.3)
    logits = data["test"].logits
    whole = run_cascade(lambda k, i: logits[k][i], 4000, policy, "msp")
    assert (whole.exit_stage == 2).double().mean().item() == pytest.approx(0.3, abs=0.03)
    # in batches, with dataset indices, as the online module runs it: same samples passed
    parts = [
        run_cascade(
            lambda k, i, s=s: logits[k][s + i], 500, policy, "msp", torch.arange(s, s + 500)
        )
        for s in range(0, 4000, 500)
    ]
    assert torch.equal(torch.cat([p.exit_stage for p in parts]), whole.exit_stage)


def test_adjusted_window_keeps_tau_and_moves_with_the_test_mixture():
    data = synthetic(3, n=2000)
    rows, fitted, _ = evaluate_experiment(
        data, ROLES, [1.0, 1.0], ["window", "window_adjusted"], "msp", PolicySettings("cov@5")
    )
    plain, adjusted = fitted["window"].details[0], fitted["window_adjusted"].details[0]
    assert adjusted["tau"] == plain["tau"]
    # OOD samples are less confident: tau sits higher among the mixture's scores
    assert adjusted["q"] > plain["q"]
    assert metrics(rows, "window_adjusted")["expected_macs"] < 1.5


def test_temperature_scaling_lowers_held_out_nll_of_an_overconfident_ensemble():
    data = synthetic(4, n=2000)
    for d in data.values():
        d.logits = [z * 4 for z in d.logits]  # overconfident members
    names = ["single", "ensemble"]
    plain, _, _ = evaluate_experiment(data, ROLES, [1.0, 1.0], names, "msp")
    scaled, _, temps = evaluate_experiment(
        data, ROLES, [1.0, 1.0], names, "msp", temperature_scaling=True
    )
    assert all(t > 2 for t in temps.members) and set(temps.ensembles) == {2}
    for policy in names:
        assert metrics(scaled, policy)["nll"] < metrics(plain, policy)["nll"]
    # scaling one member's logits keeps its arg-max (not its MSP ranking across samples)
    assert metrics(scaled, "single")["acc"] == metrics(plain, "single")["acc"]


PLUGIN = "lowest_share"  # tests/policy_with_parameter.py: a one-file policy with a swept knob
POLICIES = [*(name for name in policy_names() if name != PLUGIN), PLUGIN]


@pytest.fixture(scope="module")
def with_plugin():
    """The registry with the plugin's policy in it, for this module's contract tests."""
    import tests.policy_with_parameter as plugin

    if PLUGIN not in policy_names():
        importlib.reload(plugin)
    yield
    unregister_policy(PLUGIN)


@pytest.fixture(scope="module")
def prepared():
    """Two members (MACs 1 and 2) on a held-out split, an ID test set and an OOD set."""
    return prepare_experiment(synthetic(7), ROLES, [1.0, 2.0], "msp")


@pytest.mark.parametrize("name", POLICIES)
def test_every_policy_fits_and_reads_back(with_plugin, prepared, name):
    """Fitted with its declared defaults on the held-out split, a policy decides per stage, and
    what fitted_cascade.json keeps of it (``to_dict``) reads back to the same decisions (every
    policy at every kind of target, through the offline evaluator:
    ``tests/end_to_end/test_registry_contracts.py``)."""
    settings = PolicySettings("cov@10")
    inputs = fit_inputs(prepared, [name], settings)
    policy = fit_policies([name], inputs, settings)[name]
    assert policy.name == name and policy.num_stages == 2 and isinstance(policy.setting, str)
    back = policy_from_dict(policy.to_dict())
    ids = torch.arange(400)
    for stage, conf in enumerate(inputs.stage_confidence, start=1):
        passed = policy.passes(stage, conf, ids)
        assert passed.dtype == torch.bool and passed.shape == conf.shape
        assert torch.equal(back.passes(stage, conf, ids), passed)
    # a sweep names one of its own declared parameters, each with a default that checks
    entry = policy_entry(name)
    declared = {p.name: p for p in entry.parameters}
    assert entry.sweep is None or entry.sweep in declared
    for p in declared.values():
        assert p.validate(p.default) == p.default


def test_the_default_run_and_the_reference_points_come_from_the_entries():
    references = reference_policies()
    assert len(references) == 2 and set(references) <= set(default_policies())
    assert [policy_entry(p).sweep for p in references] == [None, None]

    with pytest.raises(ValueError, match=f"{references[0]!r} is already the first member"):
        register_policy("other_first", "member 1 again", reference=FIRST_MEMBER)(lambda i, s: None)
    with pytest.raises(ValueError, match="reference 'baseline' is not one of"):
        register_policy("other_first", "member 1 again", reference="baseline")
    assert "other_first" not in policy_names()
    # the comparator of the target's own comparison: a default policy with the cost it spends
    # as its swept parameter, not one of the two reference points of the gain
    matched = cost_matched_policy()
    assert matched in default_policies() and matched not in references
    assert policy_entry(matched).sweep is not None
    with pytest.raises(ValueError, match=f"{matched!r} is already the cost-matched comparator"):
        register_policy("other_matched", "again", reference=COST_MATCHED)(lambda i, s: None)
