"""The paper's Fig. 1 layout: expected MACs vs an uncertainty metric, one line per policy family.

Rows are the tidy metric rows of several cascades (with ``model`` and, over several member
orders, ``members`` columns). A family is a policy (policy, setting, score) over a list of
models (model sizes, or heterogeneous pairs such as ``resnet10t>resnet34``); each point is the
mean over the member orders of its model and over the plotted datasets, and its bar the mean
bootstrap interval of those rows (the test-sample uncertainty of one cascade) when the rows
have one. Each line joins the models in order of cost.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

from window_cascades.vocabulary.roles import ROLES

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def mean_with_interval(rows: list[dict]) -> tuple[float, float | None, float | None] | None:
    """(mean value, mean ci_low, mean ci_high) of rows; None for no rows."""
    if not rows:
        return None
    n = len(rows)
    value = sum(r["value"] for r in rows) / n
    if any(r.get("ci_low") is None for r in rows):
        return value, None, None
    return value, sum(r["ci_low"] for r in rows) / n, sum(r["ci_high"] for r in rows) / n


def _pick(rows, model, family, metric, datasets):
    policy, setting, score = family
    return [
        r
        for r in rows
        if r["model"] == model
        and r["policy"] == policy
        and r["metric"] == metric
        and r["dataset"] in datasets
        and r["setting"] == setting
        and r["score"] == score
    ]


def tradeoff_plot(
    rows: list[dict],
    metric: str,
    datasets: list[str],
    id_dataset: str,
    families: dict[str, tuple[tuple[str, str, str], list[str]]],
    path: str | Path,
    ylabel: str,
) -> None:
    """Expected MACs (x) vs ``metric`` (y), both averaged over ``datasets`` (the cost is paid
    on the data the metric is measured on: OOD sets for ``fpr@95``), with interval bars.

    Args:
        rows: the tidy metric rows of several cascades (with ``model`` and ``members`` columns).
        metric: the metric on the y axis, e.g. ``cov@2``.
        datasets: the datasets it is averaged over (the ID set, or the OOD sets for fpr@95).
        id_dataset: the ID dataset (named in the axis label when it is not among ``datasets``).
        families: label -> ((policy, setting, score), models) of each line.
        path: the png to write.
        ylabel: the y axis's label.
    """
    fig, ax = plt.subplots(figsize=(6, 4.2))
    markers, styles = ["o", "s", "^", "D", "v", "P", "X"], ["-", "--", ":", "-."]
    for k, (label, (family, models)) in enumerate(families.items()):
        points = []
        for model in models:
            x = mean_with_interval(_pick(rows, model, family, "expected_macs", datasets))
            y = mean_with_interval(_pick(rows, model, family, metric, datasets))
            if x is not None and y is not None:
                points.append((x[0] / 1e6, *y))
        if not points:
            continue
        points.sort()
        xs, ys = [p[0] for p in points], [p[1] for p in points]
        # marker and line style per family: lines that coincide stay distinguishable
        line = ax.plot(
            xs,
            ys,
            marker=markers[k % 7],
            linestyle=styles[k % 4],
            markerfacecolor="none",
            label=label,
        )[0]
        if all(p[2] is not None for p in points):
            err = [[p[1] - p[2] for p in points], [p[3] - p[1] for p in points]]
            ax.errorbar(xs, ys, yerr=err, fmt="none", ecolor=line.get_color(), capsize=3)
    where = "ID" if datasets == [id_dataset] else "on the same sets"
    ax.set(xlabel=f"expected MMACs per sample ({where})", ylabel=ylabel)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def exit_fraction_plot(
    rows: list[dict], models: list[str], policy: str, setting: str, path: str | Path
) -> None:
    """Fraction of samples passed to the second member per dataset role and model (mean over
    the role's datasets and the model's member orders), with the mean bootstrap interval."""
    roles = list(ROLES)
    fig, ax = plt.subplots(figsize=(6.5, 3.8))
    width = 0.8 / max(len(models), 1)
    for i, model in enumerate(models):
        heights, lows, highs = [], [], []
        for role in roles:
            picked = [
                r
                for r in rows
                if r["model"] == model
                and r["policy"] == policy
                and r["setting"] == setting
                and r["role"] == role
                and r["metric"] == "exit_frac@1"
            ]
            stat = mean_with_interval(picked) or (1.0, None, None)
            passed = 1 - stat[0]  # passed on = not exited after member 1
            heights.append(passed)
            lo = passed if stat[2] is None else 1 - stat[2]
            hi = passed if stat[1] is None else 1 - stat[1]
            lows.append(passed - lo)
            highs.append(hi - passed)
        xs = [j + i * width for j in range(len(roles))]
        ax.bar(xs, heights, width, label=model, yerr=[lows, highs], capsize=2)
    ax.set_xticks([j + 0.4 - width / 2 for j in range(len(roles))], roles)
    ax.set(ylabel="fraction passed to member 2", title=f"{policy} [{setting}]")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
