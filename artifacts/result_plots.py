"""The plots of a run's results: risk-coverage curves and the cost trade-off with its Pareto
front (``risk_coverage.png``, ``macs_vs_cov<R>.png``), the same online and offline."""

from __future__ import annotations

from pathlib import Path

import torch

from artifacts.results import policy_labels, run_key, same_as


def plot_files(
    folder: Path, rows: list[dict], curves: dict, id_name: str, unit: float = 1.0
) -> list[str]:
    """risk_coverage.png (``curves``: label -> (coverage, risk) on the ID set) and
    macs_vs_cov<R>.png (expected MACs vs the first cov@R metric, one marker per label)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    same = same_as(rows)
    styles = ["-", "--", ":", "-."]
    fig, ax = plt.subplots(figsize=(5, 4))
    for i, (policy, (coverage, risk)) in enumerate(curves.items()):
        # later lines thinner and dashed, so a line equal to an earlier one stays visible
        ax.plot(torch.as_tensor(coverage), torch.as_tensor(risk), styles[i % 4],
                linewidth=2.5 - 0.4 * min(i, 4), label=policy + same.get(policy, ""))  # fmt: skip
    ax.set(xlabel="coverage", ylabel="selective risk", title=f"Risk-coverage ({id_name})")
    ax.legend()
    fig.tight_layout()
    fig.savefig(folder / "risk_coverage.png", dpi=120)
    plt.close(fig)

    metric = next((r["metric"] for r in rows if r["metric"].startswith("cov@")), None)
    if metric is None:
        return ["risk_coverage.png"]
    name = f"macs_vs_{metric.replace('@', '')}.png"
    _tradeoff_plot(plt, folder / name, rows, id_name, metric, unit)
    return ["risk_coverage.png", name]


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


def _tradeoff_plot(
    plt, path: Path, rows: list[dict], dataset: str, metric: str, unit: float
) -> None:
    """Cost (expected MACs / ``unit``, the first member's MACs) vs ``metric`` on ``dataset``:
    one line per policy family over its sweep, the Pareto front over all points dashed."""
    families = tradeoff_points(rows, dataset, metric)
    markers = ["o", "s", "^", "D", "v", "P", "X"]
    fig, ax = plt.subplots(figsize=(6, 4.5))
    for i, (family, points) in enumerate(families.items()):
        x = [c / unit for c, _, _ in points]
        y = [v for _, v, _ in points]
        # hollow markers of decreasing size: coinciding points stay distinguishable
        ax.plot(x, y, "-", color=f"C{i % 10}", linewidth=1, alpha=0.6)
        ax.scatter(x, y, s=140 - 15 * min(i, 6), marker=markers[i % 7], facecolors="none",
                   edgecolors=f"C{i % 10}", label=family)  # fmt: skip
    front = pareto_front([p for points in families.values() for p in points])
    ax.step([c / unit for c, _, _ in front], [v for _, v, _ in front], "k--", where="post",
            linewidth=1, label="Pareto front")  # fmt: skip
    xlabel = "cost (expected MACs per sample, in first-member MACs)"
    ax.set(xlabel=xlabel, ylabel=metric, title=f"Cost vs {metric} ({dataset})")
    ax.legend(fontsize="small")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
