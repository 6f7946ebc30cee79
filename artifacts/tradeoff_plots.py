"""The paper's Fig. 1 layout: expected MACs vs an uncertainty metric, one line per policy family.

Rows are the tidy metric rows of several model sizes (with a ``model`` column). Families:
single models, full ensembles, single-threshold cascades and window cascades (the window
fitted for the plotted task, named by its ``setting``). Each line joins the sizes in order of
cost.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

from cascade.roles import ROLES

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def _value(rows, model, family, metric, datasets):
    policy, setting, score = family
    vals = [
        r["value"]
        for r in rows
        if r["model"] == model and r["policy"] == policy and r["metric"] == metric
        and r["dataset"] in datasets and r["setting"] == setting and r["score"] == score
    ]  # fmt: skip
    return sum(vals) / len(vals) if vals else None


def tradeoff_plot(
    rows: list[dict],
    models: list[str],
    metric: str,
    datasets: list[str],
    id_dataset: str,
    families: dict[str, tuple[str, str, str]],
    path: str | Path,
    ylabel: str,
) -> None:
    """Expected MACs (x) vs ``metric`` (y), both averaged over ``datasets``: the cost is paid
    on the data the metric is measured on (OOD sets for ``fpr@95``).

    Args:
        id_dataset: the ID dataset (named in the title when it is not among ``datasets``).
        families: label -> (policy, setting, score) of each line.
    """
    fig, ax = plt.subplots(figsize=(5.5, 4))
    for label, family in families.items():
        points = []
        for model in models:
            x = _value(rows, model, family, "expected_macs", datasets)
            y = _value(rows, model, family, metric, datasets)
            if x is not None and y is not None:
                points.append((x / 1e6, y))
        if points:
            points.sort()
            ax.plot(*zip(*points, strict=True), marker="o", label=label)
    where = "ID" if datasets == [id_dataset] else "on the same sets"
    ax.set(xlabel=f"expected MMACs per sample ({where})", ylabel=ylabel)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def exit_fraction_plot(
    rows: list[dict], models: list[str], policy: str, setting: str, path: str | Path
) -> None:
    """Fraction of samples passed to the second member, per dataset role and model size."""
    roles = list(ROLES)
    fig, ax = plt.subplots(figsize=(6, 3.5))
    width = 0.8 / max(len(models), 1)
    for i, model in enumerate(models):
        heights = []
        for role in roles:
            vals = [
                1 - r["value"]
                for r in rows
                if r["model"] == model and r["policy"] == policy and r["setting"] == setting
                and r["role"] == role and r["metric"] == "exit_frac@1"
            ]  # fmt: skip
            heights.append(sum(vals) / len(vals) if vals else 0.0)
        ax.bar([j + i * width for j in range(len(roles))], heights, width, label=model)
    ax.set_xticks([j + 0.4 - width / 2 for j in range(len(roles))], roles)
    ax.set(ylabel="fraction passed to member 2", title=f"{policy} [{setting}]")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
