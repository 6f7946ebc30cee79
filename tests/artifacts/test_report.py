"""report.md is one page a person reads, and the plots show every dataset: a notMNIST-shaped
run (held-out, ID, 15 shifted and 2 OOD sets) evaluated offline with a bootstrap."""

from __future__ import annotations

import math
import re
from pathlib import Path

import pytest
import torch

from window_cascades.artifacts.report import MAX_DIFFERENCES
from window_cascades.artifacts.result_plots import PAGE_PANELS, page_names, plot_files
from window_cascades.artifacts.results import read_metrics_csv
from window_cascades.cascade.significance import (
    benjamini_hochberg,
    bootstrap_p_value,
    is_random_metric,
)
from window_cascades.commands.offline import main as evaluate_logits
from window_cascades.uncertainty.probability_metrics import calibration_error, reliability_bins

SHIFTED = [f"{c}_s{s}" for c in ("noise", "blur", "contrast") for s in range(1, 6)]
OOD = ["digits", "uniform_noise"]


def _notmnist_shaped(directory: Path, n: int = 300) -> Path:
    """Two members' logits on the benchmark's datasets (sizes shrunk), shifted sets harder
    with severity; the first member costs 1 MMAC, the second 2."""
    from window_cascades.artifacts.cached_logits import save_cached_logits
    from window_cascades.artifacts.member_meta import save_member_meta

    gen = torch.Generator().manual_seed(0)
    margins = {"heldout": 2.5, "test": 2.5, **{s: 2.5 - 0.3 * int(s[-1]) for s in SHIFTED}}
    for name in [*margins, *OOD]:
        labelled = name in margins
        targets = torch.randint(10, (n,), generator=gen) if labelled else torch.full((n,), -1)
        shared = torch.randn(n, 10, generator=gen)
        if labelled:
            shared[torch.arange(n), targets] += margins[name]
        for k in range(2):
            logits = 1.5 * (shared + 0.8 * torch.randn(n, 10, generator=gen))
            save_cached_logits(directory, f"m{k}", name, logits, targets)
    for k, macs in enumerate((1e6, 2e6)):
        meta = {"model_name": "synthetic", "macs": macs, "params": 1, "num_classes": 10}
        save_member_meta(directory, f"m{k}", meta)
    return directory


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("report")
    out = tmp / "out"
    assert (
        evaluate_logits(
            [
                "--logits-dir",
                str(_notmnist_shaped(tmp / "logits")),
                "--members",
                "m0",
                "m1",
                "--heldout",
                "heldout",
                "--id",
                "test",
                "--shift",
                *SHIFTED,
                "--ood",
                *OOD,
                "--target",
                "cov@5",
                "--risks",
                "0.01",
                "0.05",
                "--bootstrap",
                "30",
                "--policies",
                "single,ensemble,single_threshold,window",
                "--out",
                str(out),
                "--quiet",
            ]
        )
        == 0
    )
    return out


@pytest.mark.slow  # a 15-shift evaluation with resamples: the fast loop leaves it to the full suite
def test_the_report_is_one_page_with_the_key_table_and_the_differences_that_matter(run):
    report = (run / "report.md").read_text()
    lines = report.splitlines()
    assert len(lines) < 300, len(lines)
    for dataset in ["test", *SHIFTED, *OOD]:  # the key table: every dataset, every policy
        assert f"### {dataset} (" in report
    assert "| fail_auroc |" in report  # failure detection in the labelled tables
    assert "Benjamini-Hochberg" in report and "5% false discovery rate" in report
    section = report.split("## Differences that matter")[1].split("## Fitted policies")[0]
    listed = [line for line in section.splitlines() if line.startswith("- ")]
    assert 0 < len(listed) <= MAX_DIFFERENCES
    deltas = read_metrics_csv(run / "deltas.csv")
    found = {
        (d["dataset"], d["policy"], d["baseline"], d["metric"])
        for d in deltas
        if d["significant_bh"]
    }
    tested = [d for d in deltas if d["p_value"] is not None]
    summary = re.search(r"\((\d+) of (\d+) tested differences significant", section)
    assert summary and int(summary[1]) == len(found) and int(summary[2]) == len(tested)
    for line in listed:
        match = re.match(r"- (\S+): (\S+) vs (\S+), (\S+) ", line)
        dataset, policy, baseline, metric = match.groups()
        assert (dataset, policy, baseline, metric) in found, line
        # random quantities only, one direction per pair
        assert is_random_metric(metric) and metric != "expected_macs", line
        assert not (policy == "single" and baseline == "ensemble"), line
    # the listed ones are the smallest p-values of the discoveries
    shown = sorted(d["p_value"] for d in deltas if d["significant_bh"])[: len(listed)]
    p_listed = sorted(float(line.rsplit("p = ", 1)[1]) for line in listed)
    assert p_listed == pytest.approx(shown, rel=1e-2)
    # the family: no cost, exit fraction or mirrored pair has a p-value; deltas.csv has all
    for d in deltas:
        mirrored = d["policy"] == "single" and d["baseline"] == "ensemble"
        if d["metric"] == "expected_macs" or d["metric"].startswith("exit_frac@") or mirrored:
            assert d["p_value"] is None and not d["significant_bh"], d


@pytest.mark.slow  # a 15-shift evaluation with resamples: the fast loop leaves it to the full suite
def test_over_several_member_orders_the_report_stays_one_page(run):
    """--orders all: the key table is the spread across the orders (each order's values stay
    in metrics.csv), so the report does not grow with the number of orders."""
    out = run.parent / "orders"
    assert (
        evaluate_logits(
            [
                "--logits-dir",
                str(run.parent / "logits"),
                "--members",
                "m0",
                "m1",
                "--orders",
                "all",
                "--heldout",
                "heldout",
                "--id",
                "test",
                "--shift",
                *SHIFTED,
                "--ood",
                *OOD,
                "--target",
                "cov@5",
                "--bootstrap",
                "10",
                "--no-plots",
                "--policies",
                "single,ensemble,single_threshold,window",
                "--out",
                str(out),
                "--quiet",
            ]
        )
        == 0
    )
    report = (out / "report.md").read_text()
    assert len(report.splitlines()) < 300
    assert "## Across member orders" in report and "## Results" not in report
    assert "### contrast_s5 (shift), across orders" in report
    assert {r["members"] for r in read_metrics_csv(out / "metrics.csv")} == {"m0>m1", "m1>m0"}


def test_the_plots_show_every_dataset_the_target_metric_and_a_reliability_diagram(run):
    report = (run / "report.md").read_text()
    for png in ("risk_coverage.png", "tradeoff.png", "reliability.png", "macs_vs_cov5.png"):
        assert (run / png).stat().st_size > 0 and f"![{png}]({png})" in report
    # the cost plot is drawn for the calibration target (cov@5), not the first --risks entry
    assert not (run / "macs_vs_cov1.png").exists()


def test_past_a_page_of_panels_the_plots_continue_on_further_pages(tmp_path):
    """25 shifted sets: 26 risk-coverage panels and 27 tradeoff panels, two pages each; the
    tradeoff pages hold every dataset's panel."""
    names = [f"s{k}" for k in range(25)]
    rows, curves = [], {}
    for policy, cost in (("single", 1.0), ("ensemble", 2.0)):
        curves[policy] = {
            d: (torch.linspace(0, 1, 5), torch.linspace(0, 0.3, 5)) for d in ["id", *names]
        }
        for dataset, role in [("id", "id"), *((d, "shift") for d in names), ("far", "ood")]:
            metric = "fpr@95" if role == "ood" else "cov@5"
            for m, v in ((metric, 0.5), ("expected_macs", cost)):
                rows.append(
                    {
                        "dataset": dataset,
                        "role": role,
                        "policy": policy,
                        "setting": "",
                        "score": "msp",
                        "metric": m,
                        "value": v,
                    }
                )
    files = plot_files(tmp_path, rows, curves, "id", target="cov@5")
    assert files == [
        *page_names("risk_coverage", 26),
        "macs_vs_cov5.png",
        *page_names("tradeoff", 27),
    ]
    assert page_names("tradeoff", 27) == ["tradeoff.png", "tradeoff_2.png"] and PAGE_PANELS < 27
    assert all((tmp_path / f).stat().st_size > 0 for f in files)


def test_benjamini_hochberg_rejects_the_largest_rank_under_its_line():
    # m = 5, FDR 5%: lines 0.01, 0.02, 0.03, 0.04, 0.05; p_(3) = 0.03 <= 0.03 is the largest
    # rank under its line, so the 3 smallest are rejected although p_(2) = 0.025 > 0.02
    p = [0.04 + 0.02, 0.025, 0.001, 0.03, 0.9]
    assert benjamini_hochberg(p) == [False, True, True, True, False]
    assert benjamini_hochberg([0.2, 0.5]) == [False, False]
    assert benjamini_hochberg([]) == []


def test_the_p_value_is_the_normal_approximation_from_the_bootstrap_spread():
    gen = torch.Generator().manual_seed(0)
    d = 0.05 + 0.02 * torch.randn(4000, generator=gen, dtype=torch.float64)
    se = float(d.std())
    assert bootstrap_p_value(0.05, d) == pytest.approx(math.erfc(0.05 / se / math.sqrt(2)))
    assert bootstrap_p_value(0.05, d) == pytest.approx(0.0124, abs=0.002)  # |z| = 2.5
    assert bootstrap_p_value(0.0, d) == 1.0
    with_nan = torch.cat([d, torch.full((10,), float("nan"), dtype=torch.float64)])
    assert bootstrap_p_value(0.05, with_nan) == bootstrap_p_value(0.05, d)
    assert math.isnan(bootstrap_p_value(0.1, torch.zeros(20, dtype=torch.float64)))


def test_the_reliability_bins_are_the_bins_of_the_ece():
    gen = torch.Generator().manual_seed(1)
    prob = torch.rand(500, generator=gen, dtype=torch.float64)
    correct = torch.rand(500, generator=gen, dtype=torch.float64) < prob**2
    mean_conf, accuracy, count = reliability_bins(prob, correct)
    assert count.sum() == 500 and count.numel() == 15
    filled = count > 0
    gap = (count[filled] / 500 * (accuracy[filled] - mean_conf[filled]).abs()).sum()
    assert float(gap) == pytest.approx(calibration_error(prob, correct), abs=1e-12)
    first = prob <= 1 / 15  # bin 0 holds [0, 1/15]
    assert float(accuracy[0]) == pytest.approx(float(correct[first].double().mean()))
    _, acc, n = reliability_bins(torch.tensor([0.95, 0.97]), torch.tensor([True, False]))
    assert n[-1] == 2 and acc[-1] == 0.5 and torch.isnan(acc[:-1]).all()


def _row(dataset, role, policy, metric, value, ci=None, members=""):
    lo, hi = ci if ci else (None, None)
    row = {"dataset": dataset, "role": role, "policy": policy, "setting": "", "score": "msp"}
    row.update(metric=metric, value=value, ci_low=lo, ci_high=hi)
    return {**row, "members": members} if members else row


def _quick_start_like(members: str = "") -> tuple[list[dict], list[dict], dict]:
    """A risk@80 run on an ID and a shifted set where the window is better than single at
    the target, and single_threshold identical to the window (a clamped band)."""
    values = {  # policy: (op_risk, op_cov, acc, cost)
        "single": (0.02, 0.80, 0.75, 1.0),
        "ensemble": (0.0, 0.82, 0.85, 2.0),
        "single_threshold": (0.006, 0.79, 0.85, 1.2),
        "window": (0.006, 0.79, 0.85, 1.2),
    }
    rows = []
    for dataset, role in (("digits_test", "id"), ("digits_noise", "shift")):
        for policy, (risk, cov, acc, cost) in values.items():
            for metric, value in (("acc", acc), ("op_risk", risk), ("op_cov", cov)):
                rows.append(
                    _row(
                        dataset, role, policy, metric, value, (value - 0.01, value + 0.01), members
                    )
                )
            rows.append(_row(dataset, role, policy, "expected_macs", cost, (cost, cost), members))
    deltas = []
    for r in rows:
        if r["metric"] != "op_risk" or r["policy"] in ("single", "ensemble"):
            continue
        for base in ("single", "ensemble", "single_threshold"):
            if r["policy"] == base:
                continue
            d = r["value"] - values[base][0]
            deltas.append(
                {
                    **{
                        k: r[k] for k in ("dataset", "role", "policy", "setting", "score", "metric")
                    },
                    **({"members": members} if members else {}),
                    "baseline": base,
                    "delta": d,
                    "ci_low": d - 0.005,
                    "ci_high": d + 0.005,
                    "significant": abs(d) > 0.005,
                    "p_value": None,
                    "significant_bh": False,
                }
            )
    summary = {
        "score": "msp",
        "target": "risk@80",
        "members": [{"member": "m0", "macs": 1.0}, {"member": "m1", "macs": 1.0}],
        "bootstrap": {
            "resamples": 200,
            "seed": 0,
            "intervals": {"ece": "median-recentred", "*": "percentile"},
        },
        "policies": {
            "window": {
                "name": "window",
                "setting": "cov@5,w=0.1",
                "stages": [{"q": 0.004, "width": 0.1, "target": "cov@5"}],
            },
        },
    }
    return rows, deltas, summary


def test_the_target_comes_first_identical_policies_share_a_row_and_samples_are_counted():
    from window_cascades.artifacts.report import report_text

    rows, deltas, summary = _quick_start_like()
    samples = {"digits_test": {"n": 256, "of": 450}, "digits_noise": {"n": 450, "of": 450}}
    report = report_text(rows, summary, [], deltas, samples)
    first, results = report.index("## risk@80 at the fitted threshold"), report.index("## Results")
    assert first < results
    target = report[first:results]
    # the target's own comparison: every policy's op_risk (op_cov), then window against single,
    # ensemble and single_threshold, whatever the significance
    assert (
        "| dataset | single (cost 1.000) | ensemble (cost 2.000) | "
        "single_threshold = window (cost 1.200) |" in target
    )
    assert (
        "| digits_noise (shift) | window | -0.0140 [-0.0190, -0.0090]* | "
        "+0.0060 [+0.0010, +0.0110]* | identical |" in target
    )
    # identical policies: one row in the tables, named together
    tables = report[results:]
    assert tables.count("| single_threshold = window |") == 2 and "| window |" not in tables
    assert "single_threshold and window give identical results on every dataset" in report
    # sample counts, and a warning where fewer samples than the dataset holds were evaluated
    assert (
        "### digits_test (id, n = 256 of 450)" in tables
        and "### digits_noise (shift, n = 450)" in tables
    )
    assert "warning: evaluated 256 of the 450 samples of digits_test" in report
    # the clamp notice says why and which target would show a window
    assert "note: window (cov@5, w = 0.1): tau sits at held-out quantile q = 0.004 < w" in report
    assert "risk@80 (q = 0.2)" in report
    assert "For ece, whose resampled values run to one side" in report


def test_over_member_orders_the_report_claims_no_per_order_tables():
    from window_cascades.artifacts.report import report_text

    rows, deltas, summary = _quick_start_like("m0>m1")
    more, more_deltas, _ = _quick_start_like("m1>m0")
    report = report_text(rows + more, summary, [], deltas + more_deltas)
    assert "in the tables above" not in report and "## Results" not in report
    assert "each order's values, with their intervals: metrics.csv, column members" in report
    assert "(member order m0>m1; the others: metrics.csv)" in report
