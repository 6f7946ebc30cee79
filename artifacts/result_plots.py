"""The plots of a run's results: risk-coverage curves and the cost trade-off with its Pareto
front (``risk_coverage.png``, ``macs_vs_cov<R>.png``), the same online and offline."""

from __future__ import annotations

from pathlib import Path

import torch

from window_cascades.artifacts.result_labels import same_as
from window_cascades.artifacts.tradeoff_panels import tradeoff_axes, tradeoff_panels
from window_cascades.cascade.offline import RELIABILITY

PAGE_PANELS = 20
"""Panels per png (4 columns x 5 rows); more datasets continue on ``_2.png``, ..."""
PAGE_COLUMNS = 4


def page_names(stem: str, panels: int) -> list[str]:
    """The file names of ``panels`` panels paged [`PAGE_PANELS`][] at a time:
    ``stem.png``, ``stem_2.png``, ..."""
    pages = max(1, -(-panels // PAGE_PANELS))
    return [f"{stem}.png" if k == 0 else f"{stem}_{k + 1}.png" for k in range(pages)]


def _pages(folder: Path, stem: str, panels: list, draw, width: float, height: float) -> list[str]:
    """Draw ``panels`` (``draw(ax, panel, first)``) on pages of up to [`PAGE_PANELS`][]
    axes, every one shown; returns the file names."""
    import matplotlib.pyplot as plt

    names = page_names(stem, len(panels))
    for k, name in enumerate(names):
        page = panels[k * PAGE_PANELS : (k + 1) * PAGE_PANELS]
        cols = min(PAGE_COLUMNS, len(page))
        lines = -(-len(page) // cols)
        fig, axes = plt.subplots(lines, cols, figsize=(width * cols, height * lines), squeeze=False)
        for n, ax in enumerate(axes.flat):
            if n < len(page):
                draw(ax, page[n], n == 0)
            else:
                ax.axis("off")
        if len(names) > 1:
            fig.suptitle(f"page {k + 1} of {len(names)} ({len(panels)} panels in all)")
        fig.tight_layout()
        fig.savefig(folder / name, dpi=100)
        plt.close(fig)
    return names


def cost_metric(rows: list[dict], id_name: str, target: str | None) -> str | None:
    """The metric of the cost plot: the calibration target when the ID set reports it (e.g.
    cov@5 for a run calibrated at cov@5), else the ID set's first cov@R."""
    on_id = [r["metric"] for r in rows if r["dataset"] == id_name]
    if target in on_id:
        return target
    return next((m for m in on_id if m.startswith("cov@")), None)


def plot_files(
    folder: Path,
    rows: list[dict],
    curves: dict,
    id_name: str,
    unit: float = 1.0,
    target: str | None = None,
) -> list[str]:
    """The run's plots, written into ``folder``; returns their file names.

    - ``risk_coverage.png``: risk-coverage curves per policy, one panel per dataset of
      ``curves`` (label -> {dataset: (coverage, risk)}; the ID set and every shifted set);
    - ``reliability.png``: a reliability diagram per policy on the ID set (from the curves'
      [`window_cascades.cascade.offline.RELIABILITY`][] entries), with its ECE;
    - ``macs_vs_<metric>.png``: cost vs the calibration ``target`` (the first cov@R when the
      ID set does not report the target) on the ID set with the Pareto front;
    - ``tradeoff.png``: the same for the ID set, every shifted and every OOD set (the target
      metric on labelled sets, fpr@P on OOD sets), where policies that agree on ID data part,
      with the bootstrap interval of each point when the rows have one.

    Every dataset gets a panel: past [`PAGE_PANELS`][] panels a plot continues on
    ``<name>_2.png`` and so on. Policies are told apart by colour, line style and marker;
    coinciding tradeoff points are offset slightly along the cost axis.
    """
    import matplotlib

    matplotlib.use("Agg")

    same = same_as(rows)
    datasets = [d for d in next(iter(curves.values())) if isinstance(d, str)] if curves else []

    def risk_panel(ax, dataset: str, first: bool) -> None:
        _risk_coverage_axes(ax, curves, dataset, same, legend=first)

    names = _pages(folder, "risk_coverage", datasets, risk_panel, 4.2, 3.8) if curves else []
    reliability = {p: c[RELIABILITY] for p, c in curves.items() if RELIABILITY in c}
    if reliability:
        names += _pages(
            folder,
            "reliability",
            list(reliability.items()),
            lambda ax, item, first: _reliability_axes(ax, *item, id_name, same),
            3.6,
            3.6,
        )
    metric = cost_metric(rows, id_name, target)
    if metric is None:
        return names
    import matplotlib.pyplot as plt

    name = f"macs_vs_{metric.replace('@', '')}.png"
    fig, ax = plt.subplots(figsize=(6, 4.5))
    tradeoff_axes(ax, rows, id_name, metric, unit)
    fig.tight_layout()
    fig.savefig(folder / name, dpi=120)
    plt.close(fig)

    def tradeoff_panel(ax, panel: tuple[str, str], first: bool) -> None:
        tradeoff_axes(ax, rows, panel[0], panel[1], unit, legend=first)

    panels = tradeoff_panels(rows, id_name, metric)
    return names + [name] + _pages(folder, "tradeoff", panels, tradeoff_panel, 5, 4.2)


def _risk_coverage_axes(ax, curves: dict, dataset: str, same: dict, legend: bool) -> None:
    """Every policy's risk-coverage curve on ``dataset`` (label -> {dataset: (coverage,
    risk)}), told apart by colour, line style and marker."""
    styles = ["-", "--", ":", "-."]
    markers = ["o", "s", "^", "D", "v", "P", "X"]
    for i, (policy, per_set) in enumerate(curves.items()):
        coverage, risk = per_set[dataset]
        # later lines thinner and dashed, so a line equal to an earlier one stays visible
        ax.plot(
            torch.as_tensor(coverage),
            torch.as_tensor(risk),
            styles[i % 4],
            linewidth=2.5 - 0.4 * min(i, 4),
            color=f"C{i % 10}",
            marker=markers[i % 7],
            markevery=(0.05 * i, 0.25),
            markersize=5,
            label=policy + same.get(policy, ""),
        )
    ax.set(xlabel="coverage", ylabel="selective risk", title=f"Risk-coverage ({dataset})")
    if legend:
        ax.legend(fontsize="small")


def _reliability_axes(ax, policy: str, bins: tuple, dataset: str, same: dict) -> None:
    """One policy's reliability diagram: the accuracy per bin of the top-label probability
    (bars; empty bins left out), the bin's mean probability (crosses), the diagonal, and the
    ECE of the bins in the title."""
    mean_conf, accuracy, count = (torch.as_tensor(t).double() for t in bins)
    k = mean_conf.numel()
    centres = (torch.arange(k, dtype=torch.float64) + 0.5) / k
    filled = count > 0
    ax.bar(
        centres[filled],
        accuracy[filled],
        width=1 / k,
        color="C0",
        alpha=0.7,
        edgecolor="black",
        linewidth=0.5,
        label="accuracy",
    )
    ax.plot(centres[filled], mean_conf[filled], "x", color="C3", label="mean probability")
    ax.plot([0, 1], [0, 1], "k--", linewidth=1)
    n = float(count.sum())
    ece = float((count[filled] / n * (accuracy[filled] - mean_conf[filled]).abs()).sum())
    ax.set(
        xlim=(0, 1),
        ylim=(0, 1),
        xlabel="top-label probability",
        ylabel="accuracy",
        title=f"{policy}{same.get(policy, '')}\n{dataset}, ECE {ece:.4f}",
    )
    ax.legend(fontsize="x-small", loc="upper left")
