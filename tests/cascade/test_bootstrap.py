"""Bootstrap intervals and paired differences: the resampled metrics equal the metrics of the
resamples, intervals cover a known population value about 95% of the time, and a policy
compared with itself differs by exactly 0."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

from window_cascades.cascade.bootstrap import Bootstrap, resample_draws, resampled_values
from window_cascades.cascade.evaluation import policy_rows
from window_cascades.cascade.metric_registry import MetricInputs, MetricSettings, metric_entries
from window_cascades.cascade.operating_point import fit_operating_point
from window_cascades.cascade.sample_outputs import SampleOutputs


def outputs(n: int, gen: torch.Generator, labelled: bool = True, ties: bool = False):
    conf = torch.rand(n, generator=gen)
    if ties:
        conf = (conf * 20).round() / 20
    probs = torch.softmax(2 * torch.randn(n, 5, generator=gen), -1)
    targets = torch.randint(5, (n,), generator=gen) if labelled else torch.full((n,), -1)
    stages = torch.randint(1, 3, (n,), generator=gen)
    return SampleOutputs.from_probs(probs, conf, stages, targets)


@pytest.mark.parametrize("ties", [False, True])
@pytest.mark.parametrize("target", ["cov@50", "fpr@90"])
def test_resampled_metrics_equal_the_metrics_of_each_resample(ties, target):
    gen = torch.Generator().manual_seed(1)
    ids, ood = outputs(300, gen, ties=ties), outputs(200, gen, labelled=False, ties=ties)
    beta = 1.0 if target.startswith("cov") else 2.5  # SCOD's integer and fractional losses
    settings = MetricSettings(
        risks=(0.05, 0.5), coverages=(0.5, 0.9), target=target, scod_beta=beta
    )
    point = fit_operating_point(ids, target, "standard")
    id_index, ood_index = resample_draws("id", 300, 0, 0, 6), resample_draws("o", 200, 0, 0, 6)
    for role, out, index in (("id", ids, id_index), ("ood", ood, ood_index)):
        inputs = MetricInputs(out, ids, [1.0, 2.5], settings, point)
        fast = resampled_values(inputs, role, index, id_index)
        for entry in metric_entries().values():
            if role not in entry.roles:
                continue
            for j in range(6):
                each = MetricInputs(
                    out.select(index[j]), ids.select(id_index[j]), [1.0, 2.5], settings, point
                )
                for key, value in entry.compute(each).items():
                    assert fast[key][j].item() == pytest.approx(value, abs=1e-10), (role, key, j)


def test_paper_definitions_are_bootstrapped_one_resample_at_a_time():
    gen = torch.Generator().manual_seed(2)
    ids = outputs(600, gen)
    settings = MetricSettings(definitions="paper")
    index = resample_draws("id", 600, 0, 0, 3)
    fast = resampled_values(MetricInputs(ids, ids, [1.0], settings), "id", index, index)
    for j in range(3):
        each = ids.select(index[j])
        aurc = metric_entries()["aurc"].compute(MetricInputs(each, each, [1.0], settings))
        assert fast["aurc"][j].item() == aurc["aurc"]


def _rows(bootstrap: Bootstrap, named: dict[str, dict[str, SampleOutputs]]) -> list[dict]:
    rows = []
    for name, per_dataset in named.items():
        policy = SimpleNamespace(name=name, setting="")
        targets = {d: torch.zeros(o.num_samples, dtype=torch.long) for d, o in per_dataset.items()}
        roles = {"heldout": "heldout", "test": "id"}
        rows += policy_rows(policy, "msp", per_dataset, targets, roles, [1.0, 2.0], None, bootstrap)
    return rows


def test_a_policy_against_itself_differs_by_exactly_zero():
    gen = torch.Generator().manual_seed(3)
    data = {"heldout": outputs(200, gen), "test": outputs(400, gen)}
    other = {"heldout": outputs(200, gen), "test": outputs(400, gen)}
    boot = Bootstrap(200, seed=5)
    rows = boot.annotate(_rows(boot, {"single": data, "copy": data, "other": other}))
    deltas = [d for d in boot.delta_rows(rows) if d["baseline"] == "single"]
    same = [d for d in deltas if d["policy"] == "copy"]
    assert same and all(d["delta"] == d["ci_low"] == d["ci_high"] == 0.0 for d in same)
    assert not any(d["significant"] for d in same)
    assert any(d["significant"] for d in deltas if d["policy"] == "other")
    # every row carries an interval around its value (cost constant here: a point interval;
    # the ECE, biased under resampling, by its median-recentred interval)
    for r in rows:
        assert r["ci_low"] <= r["value"] + 1e-12 and r["value"] <= r["ci_high"] + 1e-12, r


def well_calibrated(n: int, gen: torch.Generator) -> SampleOutputs:
    """An ID set whose ECE is small and whose resampled ECE runs above it (the quick start's
    digits_contrast ensemble: 0.0203 with a percentile interval of [0.0217, 0.0469])."""
    conf = 0.55 + 0.44 * torch.rand(n, generator=gen)
    correct = torch.rand(n, generator=gen) < conf
    probs = torch.stack([conf, 1 - conf], 1)
    out = SampleOutputs.from_probs(probs, conf, torch.ones(n, dtype=torch.long), (~correct).long())
    out.correct = correct
    return out


def test_the_ece_interval_holds_its_value_where_the_percentile_interval_does_not():
    gen = torch.Generator().manual_seed(11)
    found = None
    for _ in range(40):  # a sample where (nearly) every resampled ECE lies above the value
        sample = well_calibrated(450, gen)
        boot = Bootstrap(200, seed=0)
        policy = SimpleNamespace(name="ensemble", setting="")
        boot.add(
            policy, "msp", {"test": ("id", MetricInputs(sample, sample, [1.0], MetricSettings()))}
        )
        values = boot.samples(("test", "ensemble", "", "msp", "", "ece"))
        ece = metric_entries()["ece"].compute(MetricInputs(sample, sample, [1.0], MetricSettings()))
        if boot.interval(values)[0] > ece["ece"]:
            found = boot, values, ece["ece"]
            break
    assert found is not None, "no sample with its ECE below the percentile interval"
    boot, values, value = found
    low, high = boot.interval(values)
    assert value < low  # the percentile interval misses its own value
    lo, hi = boot.interval(values, value, "median-recentred")
    assert 0 <= lo <= value <= hi
    median = float(values.quantile(0.5))
    assert hi - value == pytest.approx(high - median) and value - lo <= median - low + 1e-12
    # annotate applies it to ece rows only: every other metric keeps its percentile interval
    row = {"dataset": "test", "policy": "ensemble", "setting": "", "score": "msp"}
    annotated = boot.annotate([{**row, "metric": "ece", "value": value}])[0]
    assert annotated["ci_low"] <= value <= annotated["ci_high"]
    acc = boot.annotate([{**row, "metric": "acc", "value": 0.0}])[0]
    assert (acc["ci_low"], acc["ci_high"]) == boot.interval(
        boot.samples((*row.values(), "", "acc"))
    )


def test_a_policy_identical_to_another_is_tested_once_and_the_target_against_single_threshold():
    """Two policies that passed on the same samples are one test in the Benjamini-Hochberg
    family; the operating-point metrics of every other policy are also compared with
    single_threshold, with an interval but outside the family."""
    gen = torch.Generator().manual_seed(4)
    base, other = ({"heldout": outputs(200, gen), "test": outputs(400, gen)} for _ in range(2))
    twin = {"heldout": outputs(200, gen), "test": outputs(400, gen)}
    boot = Bootstrap(100, seed=1)
    named = {"single": base, "single_threshold": twin, "window": twin, "random": other}
    rows = []
    for name, per_dataset in named.items():
        policy = SimpleNamespace(name=name, setting="")
        targets = {d: torch.zeros(o.num_samples, dtype=torch.long) for d, o in per_dataset.items()}
        roles = {"heldout": "heldout", "test": "id"}
        settings = MetricSettings(target="cov@50")
        rows += policy_rows(policy, "msp", per_dataset, targets, roles, [1.0, 2.0], settings, boot)
    deltas = boot.delta_rows(boot.annotate(rows))
    vs_single = {(d["policy"], d["metric"]): d for d in deltas if d["baseline"] == "single"}
    assert vs_single[("single_threshold", "acc")]["p_value"] is not None
    assert vs_single[("window", "acc")]["delta"] == vs_single[("single_threshold", "acc")]["delta"]
    assert vs_single[("window", "acc")]["p_value"] is None  # the same test, counted once
    assert vs_single[("random", "acc")]["p_value"] is not None
    matched = [d for d in deltas if d["baseline"] == "single_threshold"]
    assert {(d["policy"], d["metric"]) for d in matched} == {
        (p, m) for p in ("window", "random") for m in ("op_risk", "op_cov")
    }
    assert all(d["p_value"] is None and not d["significant_bh"] for d in matched)
    window = next(d for d in matched if d["policy"] == "window" and d["metric"] == "op_risk")
    assert window["delta"] == window["ci_low"] == window["ci_high"] == 0.0


def test_draws_depend_on_seed_and_dataset_only():
    a = resample_draws("test", 50, 0, 100, 4)
    assert torch.equal(a, resample_draws("test", 50, 0, 100, 4))
    assert not torch.equal(a, resample_draws("other", 50, 0, 100, 4))
    assert not torch.equal(a, resample_draws("test", 50, 1, 100, 4))


@pytest.mark.slow  # many draws: the fast loop leaves it to the full suite
def test_intervals_cover_the_population_value_about_95_percent_of_the_time():
    """300 samples of 400 from a population of 200k (confidence informative of correctness);
    the interval of acc, AUGRC and AURC should hold the population's value in ~95% of draws."""
    gen = torch.Generator().manual_seed(0)
    size = 200_000
    conf = torch.rand(size, generator=gen)
    correct = torch.rand(size, generator=gen) < 0.5 + 0.45 * conf
    probs = torch.stack([conf, 1 - conf], 1)
    population = SampleOutputs.from_probs(
        probs, conf, torch.ones(size, dtype=torch.long), (~correct).long()
    )  # arg-max of (conf, 1 - conf) is 0 when conf > 0.5; correctness set by the target
    population.correct = correct
    truth = {}
    for name in ("acc", "augrc", "aurc"):
        entry = metric_entries()[name]
        truth.update(entry.compute(MetricInputs(population, population, [1.0], MetricSettings())))
    hits = {k: 0 for k in truth}
    draws = 300
    for d in range(draws):
        pick = torch.randint(size, (400,), generator=gen)
        sample = population.select(pick)
        boot = Bootstrap(400, seed=d)
        policy = SimpleNamespace(name="single", setting="")
        inputs = MetricInputs(sample, sample, [1.0], MetricSettings())
        boot.add(policy, "msp", {"test": ("id", inputs)})
        for k in truth:
            lo, hi = boot.interval(boot.samples(("test", "single", "", "msp", "", k)))
            hits[k] += lo <= truth[k] <= hi
    for k, h in hits.items():
        rate = h / draws
        # binomial SE at 95% over 300 draws is 1.3 points; percentile intervals of a ranking
        # area run a little short at n = 400
        assert 0.89 <= rate <= 0.99, (k, rate)


def test_bad_resample_counts_are_refused():
    with pytest.raises(ValueError, match="bootstrap 5: expected 0 .off. or at least 10"):
        Bootstrap(5)
    with pytest.raises(ValueError, match="at least 10"):
        Bootstrap(-1)


def _collected(
    num: int, workers: int, block_bytes: int, monkeypatch, kept_bytes: int = 2**40
) -> Bootstrap:
    monkeypatch.setattr("window_cascades.cascade.bootstrap.BLOCK_BYTES", block_bytes)
    monkeypatch.setattr("window_cascades.cascade.bootstrap.KEPT_BYTES", kept_bytes)
    gen = torch.Generator().manual_seed(4)
    ids, ood = outputs(300, gen, ties=True), outputs(200, gen, labelled=False)
    point = fit_operating_point(ids, "cov@50", "standard")
    settings = MetricSettings(target="cov@50")
    boot = Bootstrap(num, seed=7, workers=workers)
    for name in ("single", "other"):
        policy = SimpleNamespace(name=name, setting="")
        boot.add(
            policy,
            "msp",
            {
                "test": ("id", MetricInputs(ids, ids, [1.0, 2.5], settings, point)),
                "far": ("ood", MetricInputs(ood, ids, [1.0, 2.5], settings, point)),
            },
        )
    boot.run()
    return boot


def test_blocks_and_threads_change_no_resampled_value(monkeypatch):
    """Resamples evaluated a few rows at a time, on one thread or several, all datasets together
    or one at a time, give the values of each whole chunk of draws evaluated at once (the draws
    do not depend on the blocks)."""
    whole = _collected(150, 1, 2**40, monkeypatch)
    # (workers, block bytes, kept bytes: 0 resamples one dataset at a time)
    for workers, block_bytes, kept in ((1, 1, 2**40), (2, 1, 2**40), (2, 30_000, 2**40), (2, 1, 0)):
        other = _collected(150, workers, block_bytes, monkeypatch, kept)
        assert whole.values.keys() == other.values.keys()
        for key, vals in whole.values.items():
            assert torch.equal(vals, other.values[key]) or (
                vals.isnan().all() and other.values[key].isnan().all()
            ), (workers, block_bytes, kept, key)
    # and a chunk equals the metrics of resample_draws' draws of that chunk
    gen = torch.Generator().manual_seed(4)
    ids, ood = outputs(300, gen, ties=True), outputs(200, gen, labelled=False)
    point = fit_operating_point(ids, "cov@50", "standard")
    inputs = MetricInputs(ood, ids, [1.0, 2.5], MetricSettings(target="cov@50"), point)
    id_index = resample_draws("test", 300, 7, 100, 50)
    direct = resampled_values(inputs, "ood", resample_draws("far", 200, 7, 100, 50), id_index)
    for metric, vals in direct.items():
        assert torch.equal(vals, whole.values[("far", "single", "", "msp", "", metric)][100:])


def test_what_policies_share_in_a_block_leaves_each_policys_values_as_alone():
    """Policies evaluated together share each block's draws and the SCOD subsample's counts;
    each policy's values equal those of a run with that policy alone."""
    gen = torch.Generator().manual_seed(5)
    first = ("a", outputs(300, gen), outputs(200, gen, labelled=False))
    second = ("b", outputs(300, gen, ties=True), outputs(200, gen, labelled=False, ties=True))
    runs = []
    for cases in ([first, second], [second]):
        boot = Bootstrap(120, seed=3, workers=2)
        for name, ids, ood in cases:
            point = fit_operating_point(ids, "cov@50", "standard")
            settings = MetricSettings(target="cov@50", scod_ratio=0.5)
            boot.add(
                SimpleNamespace(name=name, setting=""),
                "msp",
                {
                    "test": ("id", MetricInputs(ids, ids, [1.0, 2.5], settings, point)),
                    "far": ("ood", MetricInputs(ood, ids, [1.0, 2.5], settings, point)),
                },
            )
        boot.run()
        runs.append({k: v for k, v in boot.values.items() if k[1] == "b"})
    together, alone = runs
    assert together.keys() == alone.keys() and any(k[-1] == "scod_aurc" for k in alone)
    for key, vals in alone.items():
        assert torch.equal(vals, together[key]) or (
            vals.isnan().all() and together[key].isnan().all()
        ), key
