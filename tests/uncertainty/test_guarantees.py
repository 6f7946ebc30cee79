"""Thresholds with a finite-sample guarantee hold on new data: a simulation over hundreds of
held-out/test draws from a large pool, and the guarantee through both drivers."""

import json
import math

import pytest
import torch

from window_cascades.uncertainty.guarantees import (
    GuaranteeError,
    certified_threshold,
    check_guarantee,
    clopper_pearson_upper,
    hoeffding_bentkus_pvalue,
)
from window_cascades.uncertainty.selective import coverage_at_risk

DRAWS, HELDOUT, DELTA, RISK, TPR = 300, 1000, 0.1, 0.1, 0.95


@pytest.fixture(scope="module")
def pool():
    """200k samples whose error probability falls with confidence as 0.5 (1 - conf)^2 (the
    true selective risk at coverage c is c^2 / 6: 0.1 at c = 0.77)."""
    gen = torch.Generator().manual_seed(2026)
    conf = torch.rand(200_000, generator=gen, dtype=torch.float64)
    correct = torch.rand(200_000, generator=gen, dtype=torch.float64) >= 0.5 * (1 - conf) ** 2
    return conf, correct, gen


def draws(pool):
    conf, correct, gen = pool
    for _ in range(DRAWS):
        perm = torch.randperm(conf.numel(), generator=gen)
        held, test = perm[:HELDOUT], perm[HELDOUT:]
        yield conf[held], correct[held], conf[test], correct[test]


def violation_rates(pool, choose, violated) -> float:
    """Fraction of draws whose threshold, chosen on the held-out split, violates the target on
    the rest of the pool. A draw on which nothing is certified accepts nothing (no violation);
    such draws must be rare."""
    violations = abstained = 0
    for hc, hk, tc, tk in draws(pool):
        try:
            violations += violated(choose(hc, hk), tc, tk)
        except GuaranteeError:
            abstained += 1
    assert abstained <= 0.05 * DRAWS, abstained
    return violations / DRAWS


def risk_above(threshold, test_conf, test_correct) -> bool:
    accepted = test_conf >= threshold
    return bool((~test_correct[accepted]).double().mean() > RISK)


def acceptance_below(threshold, test_conf, _) -> bool:
    return bool((test_conf >= threshold).double().mean() < TPR)


ALLOWED = DELTA + 3 * math.sqrt(DELTA * (1 - DELTA) / DRAWS)


@pytest.mark.parametrize("method", ["ltt", "sgr"])
def test_certified_risk_holds_on_new_data_in_at_least_1_minus_delta_of_draws(pool, method):
    guaranteed = violation_rates(
        pool,
        lambda c, k: certified_threshold(c, k, "cov", RISK, DELTA, method).threshold,
        risk_above,
    )
    assert guaranteed <= ALLOWED, guaranteed
    empirical = violation_rates(pool, lambda c, k: coverage_at_risk(c, k, RISK)[1], risk_above)
    assert empirical > 0.3, empirical  # without the guarantee: about every other draw


def test_certified_id_acceptance_holds_for_fpr_targets(pool):
    guaranteed = violation_rates(
        pool, lambda c, k: certified_threshold(c, k, "fpr", TPR, DELTA).threshold, acceptance_below
    )
    assert guaranteed <= ALLOWED, guaranteed
    empirical = violation_rates(
        pool, lambda c, k: float(torch.quantile(c, 1 - TPR)), acceptance_below
    )
    assert empirical > 0.3, empirical


def test_bounds_against_their_definitions():
    from scipy.stats import binom

    # Clopper-Pearson: P(Bin(n, upper) <= errors) = delta
    upper = clopper_pearson_upper(7, 200, 0.05)
    assert binom.cdf(7, 200, upper) == pytest.approx(0.05, rel=1e-6)
    # Hoeffding-Bentkus: the smaller of the two tail bounds; 1 when the risk is not below
    p = hoeffding_bentkus_pvalue(5, 200, 0.1)
    kl = 0.025 * math.log(0.025 / 0.1) + 0.975 * math.log(0.975 / 0.9)
    assert p == pytest.approx(min(math.exp(-200 * kl), math.e * binom.cdf(5, 200, 0.1)))
    assert hoeffding_bentkus_pvalue(30, 200, 0.1) == 1.0


def test_bad_levels_and_unmeetable_guarantees_are_named():
    for delta in (0, 1, -0.1, 1.5):
        with pytest.raises(ValueError, match=r"DELTA must lie in \(0, 1\)"):
            check_guarantee(delta)
    with pytest.raises(ValueError, match="guarantee method 'bonferroni'"):
        check_guarantee(0.1, "bonferroni")
    conf = torch.linspace(0, 1, 60, dtype=torch.float64)
    correct = torch.arange(60) % 4 != 0  # 25% errors everywhere
    with pytest.raises(GuaranteeError, match=r"lowest certifiable risk is about 0\.\d+"):
        certified_threshold(conf, correct, "cov", 0.05, 0.1)
    with pytest.raises(GuaranteeError, match="needs at least 45 samples"):
        certified_threshold(conf[:30], correct[:30], "fpr", 0.95, 0.1)


def test_guarantee_through_the_offline_evaluator(tiny_members, tmp_path, capsys):
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
        "--target",
        "cov@10",
        "--quiet",
        "--no-plots",
    ]
    assert main([*base, "--guarantee", "0.1", "--out", str(tmp_path / "ltt")]) == 0
    summary = json.loads((tmp_path / "ltt" / "summary.json").read_text())
    stage = summary["policies"]["window"]["stages"][0]
    assert stage["certified"] == 0.1 and stage["guarantee"] == {"delta": 0.1, "method": "ltt"}
    held = summary["metrics"]["digits_heldout"]
    assert held["window"]["op_bound"] == 0.1 and "op_threshold" in held["ensemble"]
    assert summary["policies"]["window"]["setting"] == "cov@10,w=0.1,ltt@0.1"
    # the guaranteed threshold is stricter than the empirical one: less coverage on held-out
    assert main([*base, "--out", str(tmp_path / "plain")]) == 0
    plain = json.loads((tmp_path / "plain" / "summary.json").read_text())["metrics"]
    assert held["ensemble"]["op_cov"] <= plain["digits_heldout"]["ensemble"]["op_cov"]
    assert (
        main(
            [
                *base,
                "--guarantee",
                "0.1",
                "--guarantee-method",
                "sgr",
                "--out",
                str(tmp_path / "sgr"),
            ]
        )
        == 0
    )
    sgr = json.loads((tmp_path / "sgr" / "summary.json").read_text())
    assert sgr["policies"]["window"]["stages"][0]["certified"] < 0.1
    bad_inputs = [
        (["--guarantee", "1.5"], "DELTA must lie in (0, 1)"),
        (["--guarantee", "0.001", "--target", "cov@5"], "no threshold is certified"),
    ]
    for bad, message in bad_inputs:
        assert main([*base, *bad, "--out", str(tmp_path / "bad")]) == 2
        assert message in capsys.readouterr().err
        assert not (tmp_path / "bad").exists()


def test_guarantee_through_the_online_cascade_equals_offline(
    tiny_members, tmp_path, cascade_test_args
):
    from window_cascades.artifacts.results import read_metrics_csv
    from window_cascades.commands.cli import CascadeCLI
    from window_cascades.commands.offline import main

    results = tmp_path / "online"
    cli = CascadeCLI(
        args=cascade_test_args(
            tiny_members["data_cfg"],
            tiny_members["ckpts"],
            results,
            "--calibration.target=cov@10",
            "--calibration.guarantee=0.1",
            "--calibration.guarantee_method=sgr",
        )
    )
    window = json.loads((results / "fitted_cascade.json").read_text())
    stage = window["policies"]["window"]["stages"][0]
    assert stage["guarantee"] == {"delta": 0.1, "method": "sgr"} and stage["certified"] < 0.1
    assert window["guarantee"] == 0.1
    online = {
        (r["dataset"], r["policy"], r["metric"]): r["value"]
        for r in read_metrics_csv(results / "metrics.csv")
    }
    assert ("digits_heldout", "window", "op_bound") in online
    assert ("digits_test", "ensemble", "op_cov") in online
    dm = cli.datamodule.roles
    roles = [
        "--heldout",
        dm.heldout,
        "--id",
        dm.id,
        "--shift",
        *dm.names("shift"),
        "--ood",
        *dm.ood,
    ]
    assert (
        main(
            [
                "--logits-dir",
                str(tiny_members["logits_dir"]),
                "--members",
                "m0",
                "m1",
                *roles,
                "--target",
                "cov@10",
                "--guarantee",
                "0.1",
                "--guarantee-method",
                "sgr",
                "--quiet",
                "--no-plots",
                "--out",
                str(tmp_path / "off"),
            ]
        )
        == 0
    )
    for r in read_metrics_csv(tmp_path / "off" / "metrics.csv"):
        if r["metric"].startswith("op_"):
            key = (r["dataset"], r["policy"], r["metric"])
            assert online[key] == pytest.approx(r["value"], rel=1e-5, abs=1e-6), key
