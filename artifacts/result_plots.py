"""The plots of a run's results: risk-coverage curves and the cost trade-off with its Pareto
front (``risk_coverage.png``, ``macs_vs_cov<R>.png``), the same online and offline."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from window_cascades.artifacts.result_labels import policy_labels, run_key, same_as
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


def figure_legend(fig, axes) -> None:
    """One legend for the whole figure, below its panels (outside every axes, so it never
    covers data, however many entries): the entries of all ``axes``, each label once."""
    entries: dict[str, object] = {}
    for ax in axes:
        for handle, label in zip(*ax.get_legend_handles_labels(), strict=True):
            entries.setdefault(label, handle)
    if entries:
        columns = min(4, len(entries)) if max(len(k) for k in entries) < 40 else 2
        fig.legend(
            list(entries.values()),
            list(entries),
            loc="outside lower center",
            ncols=columns,
            fontsize="small",
        )


def _pages(
    folder: Path, stem: str, panels: list, draw, width: float, height: float, legend: bool = True
) -> list[str]:
    """Draw ``panels`` (``draw(ax, panel, first)``) on pages of up to [`PAGE_PANELS`][]
    axes, every one shown, laid out by Matplotlib's constrained layout (titles and labels
    never overlap; no tight-layout warning), with one [`figure_legend`][] per page when
    ``legend``; returns the file names."""
    import matplotlib.pyplot as plt

    names = page_names(stem, len(panels))
    for k, name in enumerate(names):
        page = panels[k * PAGE_PANELS : (k + 1) * PAGE_PANELS]
        cols = min(PAGE_COLUMNS, len(page))
        lines = -(-len(page) // cols)
        fig, axes = plt.subplots(
            lines,
            cols,
            figsize=(width * cols, height * lines + 0.8),
            squeeze=False,
            layout="constrained",
        )
        drawn = []
        for n, ax in enumerate(axes.flat):
            if n < len(page):
                draw(ax, page[n], n == 0)
                drawn.append(ax)
            else:
                ax.axis("off")
        if legend:
            figure_legend(fig, drawn)
        if len(names) > 1:
            fig.suptitle(f"page {k + 1} of {len(names)} ({len(panels)} panels in all)")
        fig.savefig(folder / name, dpi=100)
        plt.close(fig)
    return names


def plot_label(label: str, same: dict[str, str]) -> str:
    """A policy's label in a legend or title: ``label``, and the policies it coincides with
    when one (``window (= single_threshold)``), else how many (their names are in report.md)."""
    others = same.get(label, "").strip()[3:-1].split(", ") if label in same else []
    if not others:
        return label
    if len(others) == 1 and len(others[0]) <= 30:
        return f"{label} (= {others[0]})"
    return f"{label} (= {len(others)} others)"


def order_groups(rows: list[dict], labels: list[str]) -> dict[str, list[str]]:
    """Base label -> the plotted ``labels`` of one policy over several member orders, the
    first the order given first (``window`` -> [``window[m0>m1]``, ``window[m1>m0]``]); each
    label its own group when the rows have one order."""
    keyed = policy_labels(rows)
    base = policy_labels([{**r, "members": ""} for r in rows])
    of = {keyed[run_key(r)]: base[run_key({**r, "members": ""})] for r in rows}
    groups: dict[str, list[str]] = {}
    for label in labels:
        groups.setdefault(of.get(label, label), []).append(label)
    return groups


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
    ``<name>_2.png`` and so on; each page has one legend below its panels. Policies are told
    apart by colour, line style and marker; coinciding tradeoff points are offset slightly
    along the cost axis. Over several member orders, a risk-coverage panel draws each policy
    in the order given first with the range of the other orders as a band, and the
    reliability diagrams are those of the order given first.
    """
    import matplotlib

    matplotlib.use("Agg")

    same = same_as(rows)
    datasets = [d for d in next(iter(curves.values())) if isinstance(d, str)] if curves else []
    groups = order_groups(rows, list(curves))

    def risk_panel(ax, dataset: str, first: bool) -> None:
        _risk_axes(ax, dataset, curves, groups, same)

    names = _pages(folder, "risk_coverage", datasets, risk_panel, 4.2, 3.8) if curves else []
    reliability = {  # with several member orders, the order given first
        members[0]: curves[members[0]][RELIABILITY]
        for members in groups.values()
        if RELIABILITY in curves[members[0]]
    }
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
    fig, ax = plt.subplots(figsize=(6, 5), layout="constrained")
    tradeoff_axes(ax, rows, id_name, metric, unit, legend=False)
    figure_legend(fig, [ax])
    fig.savefig(folder / name, dpi=120)
    plt.close(fig)

    def tradeoff_panel(ax, panel: tuple[str, str], first: bool) -> None:
        tradeoff_axes(ax, rows, panel[0], panel[1], unit, legend=False)

    panels = tradeoff_panels(rows, id_name, metric)
    return names + [name] + _pages(folder, "tradeoff", panels, tradeoff_panel, 5, 4.2)


STYLES = ["-", "--", ":", "-."]
MARKERS = ["o", "s", "^", "D", "v", "P", "X"]


def _risk_axes(ax, dataset: str, curves: dict, groups: dict, same: dict) -> None:
    """One dataset's risk-coverage curves: a line per policy; over several member orders, the
    order given first as the line and the range of the others as a shaded band."""
    grid = torch.linspace(0, 1, 101, dtype=torch.float64)
    for i, (base, members) in enumerate(groups.items()):
        coverage, risk = (torch.as_tensor(t).double().numpy() for t in curves[members[0]][dataset])
        color = f"C{i % 10}"
        label = plot_label(members[0], same)
        if len(members) > 1:
            label = f"{base} ({members[0].split('[')[-1].rstrip(']')}; band: {len(members)} orders)"
            on_grid = torch.stack([_on_grid(curves[m][dataset], grid) for m in members])
            low, high = _min_max(on_grid)
            ax.fill_between(
                grid.numpy(), low.numpy(), high.numpy(), color=color, alpha=0.2, linewidth=0
            )
        # later lines thinner and dashed, so a line equal to an earlier one stays visible
        ax.plot(
            coverage,
            risk,
            STYLES[i % 4],
            linewidth=2.5 - 0.4 * min(i, 4),
            color=color,
            marker=MARKERS[i % 7],
            markevery=(0.05 * i, 0.25),
            markersize=5,
            label=label,
        )
    ax.set(xlabel="coverage", ylabel="selective risk", title=f"Risk-coverage ({dataset})")


def _on_grid(curve: tuple, grid: torch.Tensor) -> torch.Tensor:
    """A risk-coverage curve's risk at the coverages of ``grid`` (linear in between; NaN
    below its smallest coverage)."""
    coverage, risk = (np.asarray(torch.as_tensor(t).double()) for t in curve)
    order = np.argsort(coverage, kind="stable")
    values = np.interp(grid.numpy(), coverage[order], risk[order], left=np.nan)
    return torch.from_numpy(values)


def _min_max(values: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per column, the smallest and largest value over the rows, ignoring NaN."""
    low = torch.where(values.isnan(), torch.inf, values).min(0).values
    high = torch.where(values.isnan(), -torch.inf, values).max(0).values
    missing = values.isnan().all(0)
    return low.masked_fill(missing, torch.nan), high.masked_fill(missing, torch.nan)


def _reliability_axes(ax, policy: str, bins: tuple, dataset: str, same: dict) -> None:
    """One policy's reliability diagram: the accuracy per bin of the top-label probability
    (bars; empty bins left out), the bin's mean probability (crosses), the diagonal, and the
    ECE of the bins in the title."""
    mean_conf, accuracy, count = (torch.as_tensor(t).double().numpy() for t in bins)
    k = mean_conf.size
    centres = (np.arange(k, dtype=np.float64) + 0.5) / k
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
    ece = float((count[filled] / n * np.abs(accuracy[filled] - mean_conf[filled])).sum())
    ax.set(
        xlim=(0, 1),
        ylim=(0, 1),
        xlabel="top-label probability",
        ylabel="accuracy",
        title=f"{plot_label(policy, same)}\n{dataset}, ECE {ece:.4f}",
    )
