"""The plots stay readable with many member orders and long policy labels: one legend per page
outside every panel, each policy once (its first order drawn, the others as a band), and no
warning from Matplotlib's layout."""

from __future__ import annotations

import itertools
import warnings

import torch
from matplotlib.figure import Figure

from window_cascades.artifacts.result_labels import policy_labels, run_key
from window_cascades.artifacts.result_plots import order_groups, plot_files, plot_label
from window_cascades.cascade.offline import RELIABILITY

POLICIES = ("single", "ensemble", "single_threshold", "window")
ORDERS = [">".join(p) for p in itertools.permutations(("m0", "m1", "m2", "m3"))]  # 24
DATASETS = {"test": "id", "noise": "shift", "blur": "shift", "far": "ood"}


def rows_and_curves() -> tuple[list[dict], dict]:
    gen = torch.Generator().manual_seed(0)
    rows = []
    for order, policy in itertools.product(ORDERS, POLICIES):
        cost = {"single": 1.0, "ensemble": 4.0}.get(policy, 1.3) + 0.01 * len(rows)
        for dataset, role in DATASETS.items():
            metric = "fpr@95" if role == "ood" else "risk@80"
            for m, v in ((metric, float(torch.rand(1, generator=gen))), ("expected_macs", cost)):
                rows.append(
                    {
                        "dataset": dataset,
                        "role": role,
                        "policy": policy,
                        "setting": "",
                        "score": "msp",
                        "members": order,
                        "metric": m,
                        "value": v,
                    }
                )
    labels = policy_labels(rows)
    coverage = torch.linspace(0.05, 1, 40)
    curves = {}
    for r in rows:
        label = labels[run_key(r)]
        if label not in curves:
            noise = 0.02 * torch.rand(40, generator=gen)
            curves[label] = {
                d: (coverage, 0.1 * coverage + noise)
                for d, role in DATASETS.items()
                if role != "ood"
            }
            bins = torch.linspace(0.05, 0.95, 15)
            curves[label][RELIABILITY] = (bins, bins * 0.9, torch.full((15,), 10.0))
    return rows, curves


def test_many_orders_give_one_legend_per_page_outside_the_panels_and_no_warning(
    tmp_path, monkeypatch
):
    rows, curves = rows_and_curves()
    figures, overlaps = [], []
    save = Figure.savefig

    def keep(fig, *args, **kwargs):
        save(fig, *args, **kwargs)  # drawn: every artist has its final place
        figures.append(fig)
        renderer = fig.canvas.get_renderer()
        for legend in fig.legends:
            box = legend.get_window_extent(renderer)
            shown = [ax for ax in fig.axes if ax.axison]
            overlaps.extend(ax for ax in shown if box.overlaps(ax.get_tightbbox(renderer)))

    monkeypatch.setattr(Figure, "savefig", keep)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a layout warning (tight_layout) fails the test
        files = plot_files(tmp_path, rows, curves, "test", target="risk@80")
    assert files == [
        "risk_coverage.png",
        "reliability.png",
        "macs_vs_risk80.png",
        "tradeoff.png",
    ]
    for fig in figures:
        assert len(fig.legends) == 1 and not [ax for ax in fig.axes if ax.get_legend()]
    assert overlaps == []  # no legend over a panel (its data, labels or title)
    risk = figures[0]
    texts = [t.get_text() for t in risk.legends[0].get_texts()]
    # one entry per policy (the order given first, the 23 others as a band), not 96
    assert texts == [f"{p} (m0>m1>m2>m3; band: 24 orders)" for p in POLICIES]
    assert len([ax for ax in figures[1].axes if ax.axison]) == len(POLICIES)  # reliability


def test_labels_name_one_coinciding_policy_and_count_more():
    same = {"window": " (= single_threshold)", "a": " (= b, c, d)", "b": " (= a, c, d)"}
    assert plot_label("window", same) == "window (= single_threshold)"
    assert plot_label("a", same) == "a (= 3 others)"
    assert plot_label("single", same) == "single"


def test_order_groups_keep_one_policy_over_its_orders():
    rows, curves = rows_and_curves()
    groups = order_groups(rows, list(curves))
    assert list(groups) == list(POLICIES)
    assert groups["window"][0] == "window[m0>m1>m2>m3]" and len(groups["window"]) == 24
    single_order = [{**r, "members": ""} for r in rows if r["members"] == ORDERS[0]]
    assert order_groups(single_order, list(POLICIES)) == {p: [p] for p in POLICIES}


def test_no_curves_no_risk_plot(tmp_path):
    rows, _ = rows_and_curves()
    rows = [r for r in rows if r["members"] == ORDERS[0]]
    files = plot_files(tmp_path, rows, {}, "test", target="risk@80")
    assert files == ["macs_vs_risk80.png", "tradeoff.png"]
