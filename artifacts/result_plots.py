"""The plots of a run's results: risk-coverage curves and the cost trade-off with its Pareto
front (``risk_coverage.png``, ``macs_vs_cov<R>.png``), the same online and offline."""

from __future__ import annotations

from pathlib import Path

import torch

from artifacts.result_labels import policy_labels, run_key, same_as

MAX_PANELS = 4  # ID + up to 3 shifted sets; ID + up to 3 shifted and 2 OOD sets in tradeoff


def plot_files(
    folder: Path, rows: list[dict], curves: dict, id_name: str, unit: float = 1.0
) -> list[str]:
    """The run's plots, written into ``folder``; returns their file names.

    - ``risk_coverage.png``: risk-coverage curves per policy, one panel per dataset of
      ``curves`` (label -> {dataset: (coverage, risk)}; the ID set and up to 3 shifted sets);
    - ``macs_vs_cov<R>.png``: cost vs the first cov@R on the ID set with the Pareto front;
    - ``tradeoff.png``: the same for the ID set, shifted and OOD sets side by side (cov@R on
      labelled sets, fpr@P on OOD sets), where policies that agree on ID data part, with the
      bootstrap interval of each point when the rows have one.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    same = same_as(rows)
    datasets = list(next(iter(curves.values())))[:MAX_PANELS] if curves else [id_name]
    fig, axes = plt.subplots(1, len(datasets), figsize=(4.2 * len(datasets), 3.8), squeeze=False)
    styles = ["-", "--", ":", "-."]
    for ax, dataset in zip(axes[0], datasets, strict=True):
        for i, (policy, per_set) in enumerate(curves.items()):
            coverage, risk = per_set[dataset]
            # later lines thinner and dashed, so a line equal to an earlier one stays visible
            ax.plot(torch.as_tensor(coverage), torch.as_tensor(risk), styles[i % 4],
                    linewidth=2.5 - 0.4 * min(i, 4),
                    label=policy + same.get(policy, ""))  # fmt: skip
        ax.set(xlabel="coverage", ylabel="selective risk", title=f"Risk-coverage ({dataset})")
    axes[0][0].legend(fontsize="small")
    fig.tight_layout()
    fig.savefig(folder / "risk_coverage.png", dpi=120)
    plt.close(fig)

    metric = next((r["metric"] for r in rows if r["metric"].startswith("cov@")), None)
    if metric is None:
        return ["risk_coverage.png"]
    name = f"macs_vs_{metric.replace('@', '')}.png"
    fig, ax = plt.subplots(figsize=(6, 4.5))
    _tradeoff_axes(ax, rows, id_name, metric, unit)
    fig.tight_layout()
    fig.savefig(folder / name, dpi=120)
    plt.close(fig)
    panels = _tradeoff_panels(rows, id_name, metric)
    cols = min(3, len(panels))
    lines = -(-len(panels) // cols)
    fig, axes = plt.subplots(lines, cols, figsize=(5 * cols, 4.2 * lines), squeeze=False)
    for k, ax in enumerate(axes.flat):
        if k < len(panels):
            dataset, panel_metric = panels[k]
            _tradeoff_axes(ax, rows, dataset, panel_metric, unit, legend=k == 0)
        else:
            ax.axis("off")
    fig.tight_layout()
    fig.savefig(folder / "tradeoff.png", dpi=120)
    plt.close(fig)
    return ["risk_coverage.png", name, "tradeoff.png"]


def _tradeoff_panels(rows: list[dict], id_name: str, metric: str) -> list[tuple[str, str]]:
    """(dataset, metric) panels: the ID set's and up to 3 shifted sets' ``metric``, up to 2
    OOD sets' fpr@P."""
    roles = {r["dataset"]: r["role"] for r in rows}
    fpr = next((r["metric"] for r in rows if r["metric"].startswith("fpr@")), None)
    shifted = [d for d, role in roles.items() if role == "shift"][: MAX_PANELS - 1]
    ood = [d for d, role in roles.items() if role == "ood"][:2] if fpr else []
    return [(id_name, metric)] + [(d, metric) for d in shifted] + [(d, fpr) for d in ood]


def tradeoff_points(rows: list[dict], dataset: str, metric: str) -> dict[str, list[tuple]]:
    """Policy family -> [(expected MACs, metric value, label)] on ``dataset``, by cost; a
    family is a policy (and its score when the rows have several), its points the settings
    of a sweep."""
    labels = policy_labels(rows)
    scores = {r["score"] for r in rows}
    cost = {run_key(r): r["value"] for r in rows
            if r["dataset"] == dataset and r["metric"] == "expected_macs"}  # fmt: skip
    families: dict[str, list[tuple]] = {}
    for r in rows:
        if r["dataset"] == dataset and r["metric"] == metric:
            family = r["policy"] + (f"[{r['score']}]" if len(scores) > 1 else "")
            families.setdefault(family, []).append(
                (cost[run_key(r)], r["value"], labels[run_key(r)])
            )
    return {f: sorted(points) for f, points in families.items()}


def pareto_front(points: list[tuple], higher_is_better: bool = True) -> list[tuple]:
    """The points no other point beats at the same or lower cost ((cost, value, ...) tuples),
    by increasing cost."""
    front, best = [], None
    for point in sorted(points, key=lambda p: (p[0], -p[1] if higher_is_better else p[1])):
        value = point[1] if higher_is_better else -point[1]
        if best is None or value > best:
            front.append(point)
            best = value
    return front


def _tradeoff_axes(
    ax, rows: list[dict], dataset: str, metric: str, unit: float, legend: bool = True
) -> None:
    """Cost (expected MACs / ``unit``, the first member's MACs) vs ``metric`` on ``dataset``:
    one line per policy family over its sweep, interval bars when the rows have them, the
    Pareto front over all points dashed."""
    families = tradeoff_points(rows, dataset, metric)
    labels = policy_labels(rows)
    interval = {
        labels[run_key(r)]: (r["ci_low"], r["ci_high"])
        for r in rows
        if r["dataset"] == dataset and r["metric"] == metric and r.get("ci_low") is not None
    }
    markers = ["o", "s", "^", "D", "v", "P", "X"]
    higher = not metric.startswith(("fpr", "risk", "aurc", "augrc"))
    for i, (family, points) in enumerate(families.items()):
        x = [c / unit for c, _, _ in points]
        y = [v for _, v, _ in points]
        color = f"C{i % 10}"
        # hollow markers of decreasing size: coinciding points stay distinguishable
        ax.plot(x, y, "-", color=color, linewidth=1, alpha=0.6)
        ax.scatter(x, y, s=140 - 15 * min(i, 6), marker=markers[i % 7], facecolors="none",
                   edgecolors=color, label=family)  # fmt: skip
        bars = [interval.get(label) for _, _, label in points]
        if all(b is not None for b in bars):
            low = [v - b[0] for v, b in zip(y, bars, strict=True)]
            err = [low, [b[1] - v for v, b in zip(y, bars, strict=True)]]
            ax.errorbar(x, y, yerr=err, fmt="none", ecolor=color, capsize=3, alpha=0.7)
    front = pareto_front([p for points in families.values() for p in points], higher)
    ax.step([c / unit for c, _, _ in front], [v for _, v, _ in front], "k--", where="post",
            linewidth=1, label="Pareto front")  # fmt: skip
    ax.set(xlabel="cost (expected MACs per sample, in first-member MACs)", ylabel=metric,
           title=f"Cost vs {metric} ({dataset})")  # fmt: skip
    if legend:
        ax.legend(fontsize="small")
