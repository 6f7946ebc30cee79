"""The cost trade-off panels of a run's plots (``macs_vs_<metric>.png``, ``tradeoff.png``):
each policy family's points over its sweep, cost against a metric, with the Pareto front."""

from __future__ import annotations

from window_cascades.artifacts.result_labels import policy_labels, run_key


def tradeoff_panels(rows: list[dict], id_name: str, metric: str) -> list[tuple[str, str]]:
    """(dataset, metric) panels: the ID set's and every shifted set's ``metric``, every OOD
    set's fpr@P."""
    roles = {r["dataset"]: r["role"] for r in rows}
    fpr = next((r["metric"] for r in rows if r["metric"].startswith("fpr@")), None)
    shifted = [d for d, role in roles.items() if role == "shift"]
    ood = [d for d, role in roles.items() if role == "ood"] if fpr else []
    return [(id_name, metric)] + [(d, metric) for d in shifted] + [(d, fpr) for d in ood]


def tradeoff_points(rows: list[dict], dataset: str, metric: str) -> dict[str, list[tuple]]:
    """Policy family -> [(expected MACs, metric value, label)] on ``dataset``, by cost; a
    family is a policy (and its score when the rows have several), its points the settings
    of a sweep."""
    labels = policy_labels(rows)
    scores = {r["score"] for r in rows}
    cost = {
        run_key(r): r["value"]
        for r in rows
        if r["dataset"] == dataset and r["metric"] == "expected_macs"
    }
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


def tradeoff_axes(
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
    costs = [c / unit for points in families.values() for c, _, _ in points]
    span = (max(costs) - min(costs)) if costs else 0.0
    step = 0.012 * (span or 1.0)  # a small offset per family: coinciding points stay visible
    for i, (family, points) in enumerate(families.items()):
        shift = (i - (len(families) - 1) / 2) * step
        x = [c / unit + shift for c, _, _ in points]
        y = [v for _, v, _ in points]
        color = f"C{i % 10}"
        # hollow markers of decreasing size: coinciding points stay distinguishable
        ax.plot(x, y, "-", color=color, linewidth=1, alpha=0.6)
        ax.scatter(
            x,
            y,
            s=140 - 15 * min(i, 6),
            marker=markers[i % 7],
            facecolors="none",
            edgecolors=color,
            label=family,
        )
        bars = [interval.get(label) for _, _, label in points]
        if all(b is not None for b in bars):
            # a percentile interval need not hold its point (e.g. an AUROC at its ceiling):
            # the bar then reaches the far end only
            low = [max(0.0, v - b[0]) for v, b in zip(y, bars, strict=True)]
            err = [low, [max(0.0, b[1] - v) for v, b in zip(y, bars, strict=True)]]
            ax.errorbar(x, y, yerr=err, fmt="none", ecolor=color, capsize=3, alpha=0.7)
    front = pareto_front([p for points in families.values() for p in points], higher)
    ax.step(
        [c / unit for c, _, _ in front],
        [v for _, v, _ in front],
        "k--",
        where="post",
        linewidth=1,
        label="Pareto front",
    )
    ax.set(
        xlabel="cost (expected MACs per sample, in first-member MACs;\n"
        "policies offset slightly to stay visible)",
        ylabel=metric,
        title=f"Cost vs {metric} ({dataset})",
    )
    if legend:
        ax.legend(fontsize="small")
