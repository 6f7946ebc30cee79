"""budget_window: exact over its quantile grid, within budget, and bad budgets refused."""

import json

import pytest
import torch

from window_cascades.cascade.budget_window import OSE_SE, best_interval, smoothed_values
from window_cascades.cascade.offline import EnsembleLogits, evaluate_policies, prepare_experiment
from window_cascades.cascade.policy_registry import FitInputs, PolicySettings, fit_policies
from window_cascades.uncertainty.selective import coverage_at_risk


def two_stage_case(n: int, seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    s1 = torch.rand(n, generator=gen, dtype=torch.float64)
    s2 = (s1 + 0.3 * torch.rand(n, generator=gen, dtype=torch.float64)).clamp(max=1)
    ok1 = torch.rand(n, generator=gen, dtype=torch.float64) < 0.4 + 0.6 * s1
    ok2 = ok1 | (torch.rand(n, generator=gen, dtype=torch.float64) < 0.5)
    return s1, ok1, s2, ok2


def cov_or_zero(conf, correct, risk):
    try:
        return coverage_at_risk(conf, correct, risk)[0]
    except ValueError:
        return 0.0


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_the_search_equals_brute_force_over_every_interval_of_the_grid(seed):
    n, grid, risk, max_pass = 60, 40, 0.2, 0.3
    s1, ok1, s2, ok2 = two_stage_case(n, seed)
    fit = best_interval(
        s1, torch.ones(n, dtype=torch.bool), s1, ~ok1, s2, ~ok2, max_pass, ("cov", risk), grid
    )
    qs = torch.quantile(s1.sort().values, torch.linspace(0, 1, grid + 1, dtype=torch.float64))
    bounds = [-float("inf"), *qs[1:-1].tolist(), float("inf")]
    best = -1.0
    for i, lo in enumerate(bounds):
        for hi in bounds[i:]:
            passed = (s1 >= lo) & (s1 <= hi)
            if passed.sum() > max_pass * n:
                continue
            conf, ok = torch.where(passed, s2, s1), torch.where(passed, ok2, ok1)
            best = max(best, cov_or_zero(conf, ok, risk))
    assert fit["value"] == pytest.approx(best, abs=1e-12)
    # and the interval it returns gives that value when the cascade is run with it
    lo = -float("inf") if fit["lower"] is None else fit["lower"]
    hi = float("inf") if fit["upper"] is None else fit["upper"]
    passed = (s1 >= lo) & (s1 <= hi)
    assert passed.double().mean() <= max_pass + 1e-12
    assert cov_or_zero(torch.where(passed, s2, s1), torch.where(passed, ok2, ok1), risk) == best


def test_budget_is_respected_and_more_budget_never_hurts_on_heldout():
    gen = torch.Generator().manual_seed(0)
    targets = torch.randint(10, (3000,), generator=gen)
    shared = torch.randn(3000, 10, generator=gen)
    shared[torch.arange(3000), targets] += 3.0
    members = [shared + torch.randn(3000, 10, generator=gen) for _ in range(2)]
    data = {"held": EnsembleLogits(members, targets), "test": EnsembleLogits(members, targets)}
    roles = {"held": "heldout", "test": "id"}
    prepared = prepare_experiment(data, roles, [1e6, 3e6])  # member 2 costs 3x member 1
    values = []
    for budget in (1.0, 1.3, 1.9, 4.0):
        # the plain search: its held-out value grows with the budget (the cross-fitted choice
        # may switch between the window and the search from one budget to the next)
        settings = PolicySettings(budget=budget, budget_select="search")
        rows, fitted = evaluate_policies(prepared, ["budget_window"], settings)
        by = {r["metric"]: r["value"] for r in rows if r["dataset"] == "held"}
        assert by["expected_macs"] / 1e6 <= budget + 1e-9
        values.append(by["cov@5"])
        stage = fitted["budget_window"].to_dict()["stages"][0]
        assert stage["budget"] == budget and stage["pass_fraction"] <= (budget - 1) / 3 + 1e-9
    assert values == sorted(values)
    rows, _ = evaluate_policies(prepared, ["ensemble"])
    ensemble = [r["value"] for r in rows if r["metric"] == "cov@5" and r["dataset"] == "held"]
    # at the full cost it may pass everything (the ensemble) or beat it on held-out
    assert values[-1] >= ensemble[0] - 1e-12 and values[0] < ensemble[0]


def test_bad_budgets_are_named():
    conf = [torch.rand(300, dtype=torch.float64)]
    inputs = FitInputs(conf, [conf[0] > 0.3], None, "held", conf[0], conf[0] > 0.2, [1.0, 1.0])
    for settings, message in (
        (dict(budget=2.5), r"budget 2.5 is outside \[1, 2\]"),
        (dict(budget_grid=301), "grid of 301 quantile points is too fine for a held-out split"),
    ):
        with pytest.raises(ValueError, match=message):
            fit_policies(["budget_window"], inputs, PolicySettings(**settings))
    with pytest.raises(ValueError, match="budget must be >= 1"):
        PolicySettings(budget=0.9)
    with pytest.raises(ValueError, match="budget_objective 'auroc': expected one of 'target'"):
        PolicySettings(budget_objective="auroc")


def test_an_ood_target_optimises_augrc_on_heldout():
    """fpr@P has no held-out value (no OOD samples there): the search optimises AUGRC, as with
    --budget-objective augrc, and the setting says so."""
    conf = [torch.rand(300, dtype=torch.float64, generator=torch.Generator().manual_seed(3))]
    inputs = FitInputs(conf, [conf[0] > 0.3], None, "held", conf[0], conf[0] > 0.2, [1.0, 1.0])
    fitted = [
        fit_policies(["budget_window"], inputs, PolicySettings(target, **extra))["budget_window"]
        for target, extra in (
            ("fpr@95", {"budget_select": "search"}),
            ("cov@5", {"budget_objective": "augrc", "budget_select": "search"}),
            ("fpr@95", {"budget_select": "cv"}),  # the rule chosen cross-fitted
            ("fpr@95", {}),  # the one-standard-error rule, as by default
        )
    ]
    assert {f.setting for f in fitted} == {"augrc,B=1.2"}
    assert torch.equal(fitted[0].bounds, fitted[1].bounds)
    assert fitted[2].selection["chosen"] in ("window", "search")
    assert fitted[3].selection["chosen"] == "ose" and fitted[3].details[0]["standard_error"] > 0


def test_budget_sweep_through_the_offline_evaluator(tiny_members, tmp_path, capsys):
    from window_cascades.artifacts.results import read_metrics_csv
    from window_cascades.commands.offline import main

    base = [
        "--logits-dir",
        str(tiny_members["logits_dir"]),
        "--members",
        "m0",
        "m1",
        "--heldout",
        "digits_heldout",
        "--id",
        "digits_test",
        "--ood",
        "photo_patches",
        "--quiet",
        "--policies",
        "single,ensemble,window,budget_window",
    ]
    assert main([*base, "--budget", "1.1", "1.3", "--out", str(tmp_path / "out")]) == 0
    rows = read_metrics_csv(tmp_path / "out" / "metrics.csv")
    settings = {r["setting"] for r in rows if r["policy"] == "budget_window"}
    assert settings == {"cov@5,B=1.1", "cov@5,B=1.3"}
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert "budget_window[cov@5,B=1.3]" in summary["policies"]
    assert summary["policies"]["budget_window[cov@5,B=1.3]"]["selection"]["chosen"] == "ose"
    assert (tmp_path / "out" / "macs_vs_cov5.png").stat().st_size > 1000
    for bad, message in (
        (["--budget", "2.5"], "outside [1, 2]"),
        (["--budget", "0.5"], "budget must be >= 1"),
        (["--budget-grid", "5000"], "too fine"),
    ):
        assert main([*base, *bad, "--out", str(tmp_path / "bad")]) == 2
        assert message in capsys.readouterr().err
        assert not (tmp_path / "bad").exists()


def test_the_adjusted_variant_counts_the_cost_on_the_test_mixture():
    gen = torch.Generator().manual_seed(4)
    conf = [torch.rand(2000, generator=gen, dtype=torch.float64)]
    correct = [torch.rand(2000, generator=gen, dtype=torch.float64) < 0.5 + 0.5 * conf[0]]
    final_correct = correct[0] | (torch.rand(2000, generator=gen) < 0.5)
    mixture = [torch.rand(3000, generator=gen, dtype=torch.float64) ** (1 / 3)]  # shifted scores
    inputs = FitInputs(conf, correct, mixture, "held", conf[0] + 0.05, final_correct, [1.0, 1.0])
    fitted = fit_policies(
        ["budget_window", "budget_window_adjusted"], inputs, PolicySettings(budget=1.2)
    )
    plain = fitted["budget_window"].bounds[0].tolist()
    adjusted = fitted["budget_window_adjusted"].bounds[0].tolist()
    on_mixture = lambda lo, hi: float(((mixture[0] >= lo) & (mixture[0] <= hi)).double().mean())  # noqa: E731
    assert on_mixture(*adjusted) <= 0.2 + 1e-9
    assert on_mixture(*plain) > 0.2  # the held-out budget would overspend on the mixture
    stage = fitted["budget_window_adjusted"].to_dict()["stages"][0]
    assert stage["pass_fraction"] == pytest.approx(on_mixture(*adjusted))


def overfit_case(n: int, seed: int) -> FitInputs:
    """Two members of equal cost on 10 classes: a small held-out split where the plain
    search's best interval is mostly held-out noise."""
    gen = torch.Generator().manual_seed(seed)
    targets = torch.randint(10, (n,), generator=gen)
    shared = torch.randn(n, 10, generator=gen)
    shared[torch.arange(n), targets] += 2.5
    probs = [(shared + torch.randn(n, 10, generator=gen)).softmax(-1) for _ in range(2)]
    ens = (probs[0] + probs[1]) / 2
    first, final = probs[0].max(-1), ens.max(-1)
    return FitInputs(
        [first.values.double()],
        [first.indices == targets],
        None,
        "held",
        final.values.double(),
        final.indices == targets,
        [1.0, 1.0],
    )


@pytest.mark.parametrize("rule", ["cv", "ose"])
def test_the_guarded_rules_do_not_lose_to_the_plain_search_on_small_heldout(rule):
    from window_cascades.cascade.output_objective import cascade_output, output_value

    gains = {"search": [], rule: []}
    for seed in range(4):
        held, test = overfit_case(1500, seed), overfit_case(20000, 100 + seed)
        for select in gains:
            settings = PolicySettings("cov@2", budget=1.2, budget_select=select)
            policy = fit_policies(["budget_window"], held, settings)["budget_window"]
            gains[select].append(float(output_value(*cascade_output(test, policy), ("cov", 0.02))))
    mean = {k: sum(v) / len(v) for k, v in gains.items()}
    assert mean[rule] >= mean["search"]


def test_the_choice_is_recorded_and_within_budget():
    held = overfit_case(3000, 7)
    settings = PolicySettings("cov@2", budget=1.2, budget_select="cv")
    policy = fit_policies(["budget_window"], held, settings)["budget_window"]
    record = policy.to_dict()["selection"]
    assert record["chosen"] in ("window", "search") and record["reason"]
    assert set(record["candidates"]) == {"window", "search"}
    assert 0 <= record["candidates"]["search"]["p_beats_window"] <= 1
    assert policy.details[0]["rule"] == record["chosen"]
    passed = policy.passes(1, held.stage_confidence[0])
    assert passed.double().mean() <= 0.2 + 1e-9  # the budget: cost 1 + pass fraction <= 1.2
    json.dumps(policy.to_dict())  # summary.json takes it as it is
    # the forced choices are what they say
    for select in ("window", "search"):
        forced = fit_policies(
            ["budget_window"], held, PolicySettings("cov@2", budget=1.2, budget_select=select)
        )["budget_window"]
        assert forced.details[0].get("rule", "search") == select
    with pytest.raises(ValueError, match="budget_select 'best': expected one of"):
        PolicySettings(budget_select="best")


def test_a_search_that_clearly_beats_the_window_is_chosen_cross_fitted():
    """With a large held-out split and an ensemble whose gain lies away from the target's
    threshold, the cross-fitted search beats the window and is chosen."""
    gen = torch.Generator().manual_seed(3)
    n = 8000
    s1 = torch.rand(n, generator=gen, dtype=torch.float64)
    ok1 = torch.rand(n, generator=gen, dtype=torch.float64) < 0.3 + 0.7 * s1
    fixable = (s1 > 0.2) & (s1 < 0.4)  # the second member fixes these (far below tau)
    ok2 = ok1 | fixable
    s2 = torch.where(fixable, 0.99, s1)
    held = FitInputs([s1], [ok1], None, "held", s2, ok2, [1.0, 1.0])
    settings = PolicySettings("cov@5", budget=1.2, budget_select="cv")
    policy = fit_policies(["budget_window"], held, settings)["budget_window"]
    assert policy.selection["chosen"] == "search", policy.selection


def test_the_default_rule_records_its_margin_and_stays_within_budget():
    held = overfit_case(3000, 7)
    policy = fit_policies(["budget_window"], held, PolicySettings("cov@2", budget=1.2))[
        "budget_window"
    ]
    assert policy.selection["chosen"] == "ose" and policy.selection["reason"]
    stage = policy.details[0]
    assert stage["rule"] == "ose" and stage["standard_error"] > 0
    # the chosen interval's smoothed held-out value: within the allowed margin of the best
    # smoothed value, never above it
    margin = OSE_SE * stage["standard_error"]
    assert stage["best_value"] - margin - 1e-12 <= stage["smoothed_value"]
    assert stage["smoothed_value"] <= stage["best_value"] + 1e-12
    assert policy.passes(1, held.stage_confidence[0]).double().mean() <= 0.2 + 1e-9
    json.dumps(policy.to_dict())


def test_the_default_rule_follows_the_data_with_many_samples_and_the_window_with_few():
    """An ensemble whose gain lies away from the target's threshold (samples of stage-1
    confidence 0.2-0.4 fixed by member 2): with 8,000 held-out samples the rule passes that
    band, as the search does; with no signal beyond noise (a second member no better than the
    first) it stays at the window."""
    gen = torch.Generator().manual_seed(3)
    n = 8000
    s1 = torch.rand(n, generator=gen, dtype=torch.float64)
    ok1 = torch.rand(n, generator=gen, dtype=torch.float64) < 0.3 + 0.7 * s1
    fixable = (s1 > 0.2) & (s1 < 0.4)
    held = FitInputs(
        [s1], [ok1], None, "held", torch.where(fixable, 0.99, s1), ok1 | fixable, [1.0, 1.0]
    )
    policy = fit_policies(["budget_window"], held, PolicySettings("cov@5", budget=1.2))[
        "budget_window"
    ]
    passed = policy.passes(1, s1)
    assert (passed & fixable).sum() >= 0.85 * fixable.sum(), policy.details  # the band
    noise = FitInputs([s1], [ok1], None, "held", s1, ok1, [1.0, 1.0])
    chosen = fit_policies(["budget_window"], noise, PolicySettings("cov@5", budget=1.2))
    window = fit_policies(
        ["budget_window"], noise, PolicySettings("cov@5", budget=1.2, budget_select="window")
    )
    # the nearest grid interval to the window (the grid has 200 quantile points)
    assert chosen["budget_window"].details[0]["window_distance"] <= 2 / 200
    ours, theirs = chosen["budget_window"].passes(1, s1), window["budget_window"].passes(1, s1)
    assert (ours & theirs).sum() >= 0.95 * theirs.sum()


def test_smoothing_averages_each_interval_over_its_kept_neighbours_only():
    """A grid interval's smoothed value is the mean over the kept intervals whose ends lie
    within the half-width: a lone spike (held-out noise) is flattened, a plateau is not, and
    intervals dropped by the budget (not in the pair list) do not pull the mean down."""
    i, j = torch.triu_indices(6, 6)
    value = torch.where((i == 2) & (j == 3), 1.0, 0.0).double()  # one spike
    smoothed = smoothed_values(value, i, j, 6, 1)
    spike = int(((i == 2) & (j == 3)).nonzero())
    assert smoothed[spike] == 1 / 8  # i in 1..3, j in 2..4, i <= j: 8 neighbours (itself too)
    assert smoothed[(i == 0) & (j == 5)] == 0  # too far from the spike
    plateau = torch.full_like(value, 0.3)
    kept = (j - i) <= 2  # a budget that keeps the narrow intervals only
    out = smoothed_values(plateau[kept], i[kept], j[kept], 6, 2)
    assert torch.allclose(out, torch.full_like(out, 0.3))
