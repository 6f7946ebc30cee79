"""``report.md``: what a run found, on one page (written beside ``metrics.csv``).

In order: what was evaluated (score, target, members, the samples of every dataset, with a
warning when fewer were evaluated than a dataset holds), the notes a reader needs first (a
window clamped to an end of the held-out scores, policies with identical results), how the
intervals were made; then the target's own comparison (each policy's threshold for the target,
fitted on its held-out output, applied to every test set, and the window against ``single``,
``ensemble`` and ``single_threshold`` there, always shown); then the key table of every dataset
(cost and the lead metrics per policy, with the bootstrap interval beside each value when one
was computed, identical policies in one row; over several member orders, the mean and spread
across the orders instead, each order's values staying in ``metrics.csv``), the cost to reach
the ensemble's gain and the headroom when computed, the plots by relative path, the paired
differences that matter (random quantities only, one direction per pair, Benjamini-Hochberg
corrected, at most [`MAX_DIFFERENCES`][] lines; the full list is ``deltas.csv``) and the
fitted policies (one line each).
"""

from __future__ import annotations

import json

from window_cascades.artifacts.cost_report import cost_to_target_lines, headroom_lines
from window_cascades.artifacts.report_cells import interval_cell
from window_cascades.artifacts.result_labels import (
    OPERATING,
    clamp_notes,
    identical_policies,
    lead_columns,
    policy_labels,
    run_key,
)
from window_cascades.cascade.cost_to_target import is_cost_to_target
from window_cascades.cascade.orders import spread_across_orders
from window_cascades.cascade.policy_registry import cost_matched_policy, reference_policies
from window_cascades.cascade.significance import FDR

MAX_DIFFERENCES = 20
"""Lines of significant differences in the report (every one is in ``deltas.csv``)."""
REPORT_ONLY_COLUMNS = ("fail_auroc",)  # shown in the report's tables, not the printed one


def _columns(values: dict, role: str) -> list[str]:
    """The printed table's columns of a dataset, then the report-only ones it has."""
    return lead_columns(values, role) + [c for c in REPORT_ONLY_COLUMNS if c in values]


def _table_head(title: str, cols: list[str]) -> list[str]:
    """A dataset table's heading and Markdown header (policy, cost, then ``cols``)."""
    return [
        f"### {title}",
        "",
        "| policy | cost | " + " | ".join(cols) + " |",
        "| --- " * (len(cols) + 2) + "|",
    ]


def merged_labels(rows: list[dict]) -> dict[str, str | None]:
    """label -> the row label of its group of identical policies (``single_threshold =
    window``), None for the group's later members (their row is the first member's)."""
    out: dict[str, str | None] = {}
    for group in identical_policies(rows):
        out[group[0]] = " = ".join(group)
        out.update(dict.fromkeys(group[1:]))
    return out


def _heading(dataset: str, role: str, samples: dict | None, extra: str = "") -> str:
    """``digits_test (id, n = 450)``: a dataset's name, role and sample count when known."""
    count = (samples or {}).get(dataset)
    n = ""
    if count is not None:
        n = f", n = {count['n']}" + (f" of {count['of']}" if count["of"] != count["n"] else "")
    return f"{dataset} ({role}{n}){extra}"


def _dataset_tables(rows: list[dict], unit: float, samples: dict | None = None) -> list[str]:
    labels, merged = policy_labels(rows), merged_labels(rows)
    by: dict = {}
    for r in rows:
        by.setdefault(r["dataset"], {}).setdefault(labels[run_key(r)], {})[r["metric"]] = r
    roles = {r["dataset"]: r["role"] for r in rows}
    lines = []
    for dataset, per_policy in by.items():
        role = roles[dataset]
        cols = _columns(next(iter(per_policy.values())), role)
        lines += _table_head(_heading(dataset, role, samples), cols)
        for label, metrics in per_policy.items():
            shown = merged.get(label, label)
            if shown is None:  # identical to an earlier policy: in that row
                continue
            macs = metrics.get("expected_macs")
            cost = interval_cell(macs, unit)
            cells = [interval_cell(metrics.get(c)) for c in cols]
            lines.append(f"| {shown} | {cost} | " + " | ".join(cells) + " |")
        lines.append("")
    return lines


def _operating_metrics(target: str | None) -> tuple[str, str] | None:
    """The (primary, secondary) metrics of ``target``'s operating point on a test set."""
    if not target:
        return None
    return OPERATING["ood"] if target.startswith("fpr@") else OPERATING["labelled"]


def target_lines(
    rows: list[dict], deltas: list[dict] | None, target: str | None, unit: float
) -> list[str]:
    """The target's own comparison (see the module docstring); [] when the rows have no
    operating point (no target). With several member orders, that of the order given first."""
    metrics = _operating_metrics(target)
    if metrics is None:
        return []
    first_order = next((r.get("members") or "" for r in rows), "")
    rows = [r for r in rows if (r.get("members") or "") == first_order]
    primary, secondary = metrics
    on = [r for r in rows if r["metric"] == primary and r["role"] != "heldout"]
    if not on:
        return []
    labels, merged = policy_labels(rows), merged_labels(rows)
    policies = [lab for lab in dict.fromkeys(labels[run_key(r)] for r in on)]
    shown = [merged.get(p, p) for p in policies]
    columns = [(p, s) for p, s in zip(policies, shown, strict=True) if s is not None]
    value = {(r["dataset"], labels[run_key(r)], r["metric"]): r for r in rows}
    role = {r["dataset"]: r["role"] for r in on}
    order_note = f" (member order {first_order}; the others: metrics.csv)" if first_order else ""
    lines = [
        f"## {target} at the fitted threshold",
        "",
        f"Each policy's threshold for {target}, fitted on its own held-out output, applied to "
        f"every test set{order_note}: {primary} (the "
        + ("share of OOD samples accepted" if primary == "op_fpr" else "error rate of the accepted")
        + f") with {secondary} (the share "
        + ("of ID samples accepted" if primary == "op_fpr" else "accepted")
        + ") in brackets. Cost: expected MACs per sample on the ID set, in first-member MACs.",
        "",
    ]
    id_name = next((d for d in role if role[d] == "id"), None)
    costs = {p: value.get((id_name, p, "expected_macs")) for p, _ in columns if id_name is not None}
    head = [f"{s} (cost {costs[p]['value'] / unit:.3f})" if costs.get(p) else s for p, s in columns]
    lines += ["| dataset | " + " | ".join(head) + " |", "| --- " * (len(columns) + 1) + "|"]
    for dataset in dict.fromkeys(r["dataset"] for r in on):
        cells = []
        for p, _ in columns:
            main, other = value.get((dataset, p, primary)), value.get((dataset, p, secondary))
            cell = interval_cell(main)
            cells.append(cell + (f" ({other['value']:.3f})" if other else ""))
        lines.append(f"| {dataset} ({role[dataset]}) | " + " | ".join(cells) + " |")
    lines.append("")
    return lines + _target_deltas(deltas, rows, primary, labels, first_order)


def _target_deltas(
    deltas: list[dict] | None, rows: list[dict], metric: str, labels: dict, order: str
) -> list[str]:
    """The paired differences of the target's metric of every other policy against
    ``single``, ``ensemble`` and ``single_threshold``, per test set, whatever their
    significance."""
    if not deltas:
        return ["No intervals for the differences: run with a bootstrap to get them.", ""]
    mine = [d for d in deltas if d["metric"] == metric and (d.get("members") or "") == order]
    baselines = list(dict.fromkeys(d["baseline"] for d in mine))  # the reference policies first
    compared = [d for d in mine if d["policy"] not in baselines]
    if not compared:
        return []
    matched = cost_matched_policy()
    policies = list(dict.fromkeys(labels[run_key(d)] for d in compared))
    by = {(d["dataset"], labels[run_key(d)], d["baseline"]): d for d in compared}
    role = {r["dataset"]: r["role"] for r in rows}
    twins = {label: group for group in identical_policies(rows) for label in group}
    same_cost = (
        f"; {matched} passes on the same share of held-out samples as the window, its least "
        "confident ones"
        if matched in baselines
        else ""
    )
    lines = [
        f"{metric} differences, paired on the same resamples (95% interval; * its interval "
        f"excludes 0{same_cost}):",
        "",
        "| dataset | policy | " + " | ".join(f"vs {b}" for b in baselines) + " |",
        "| --- " * (len(baselines) + 2) + "|",
    ]
    for dataset in dict.fromkeys(d["dataset"] for d in compared):
        for p in policies:
            cells = []
            for b in baselines:
                d = by.get((dataset, p, b))
                if b in twins.get(p, ()):
                    cells.append("identical")
                elif d is None:
                    cells.append("-")
                else:
                    star = "*" if d["significant"] else ""
                    cells.append(
                        f"{d['delta']:+.4f} [{d['ci_low']:+.4f}, {d['ci_high']:+.4f}]{star}"
                    )
            lines.append(f"| {dataset} ({role[dataset]}) | {p} | " + " | ".join(cells) + " |")
    lines.append("")
    return lines


def _order_tables(rows: list[dict], unit: float) -> list[str]:
    """Mean +- sd across member orders of the lead metrics, per dataset and policy."""
    spread = spread_across_orders(rows)
    orders = sorted({r["members"] for r in rows})
    lines = [
        f"Over {len(orders)} member orders ({', '.join(orders)}): mean +- sample standard "
        "deviation across orders (each order's values, with their intervals: metrics.csv, "
        "column members; orders.csv has min and max).",
        "",
    ]
    by: dict = {}
    several_scores = len({s["score"] for s in spread}) > 1
    for s in spread:
        parts = [s["score"]] if several_scores else []
        parts += [s["setting"]] if s["setting"] else []
        label = s["policy"] + (f"[{','.join(parts)}]" if parts else "")
        by.setdefault((s["dataset"], s["role"]), {}).setdefault(label, {})[s["metric"]] = s
    for (dataset, role), per_policy in by.items():
        cols = _columns(next(iter(per_policy.values())), role)
        lines += _table_head(f"{dataset} ({role}), across orders", cols)
        for label, metrics in per_policy.items():
            macs = metrics.get("expected_macs")
            cost = "-" if macs is None else f"{macs['mean'] / unit:.3f} +- {macs['sd'] / unit:.3f}"
            cells = " | ".join(
                f"{metrics[c]['mean']:.4f} +- {metrics[c]['sd']:.4f}" if c in metrics else "-"
                for c in cols
            )
            lines.append(f"| {label} | {cost} | {cells} |")
        lines.append("")
    return lines


def _delta_line(d: dict, label: str) -> str:
    p = f", p = {d['p_value']:.3g}" if d.get("p_value") is not None else ""
    return (
        f"- {d['dataset']}: {label} vs {d['baseline']}, {d['metric']} {d['delta']:+.4f} "
        f"[{d['ci_low']:+.4f}, {d['ci_high']:+.4f}]{p}"
    )


def _differences(rows: list[dict], deltas: list[dict]) -> list[str]:
    """The differences that matter: the Benjamini-Hochberg discoveries of the tested family
    (random quantities, one direction per pair, a policy identical to another tested once and
    named with it), smallest p-value first (then the largest effect relative to its interval),
    at most [`MAX_DIFFERENCES`][] lines."""
    labels = dict(policy_labels(rows))
    merged = merged_labels(rows)
    labels = {key: merged.get(label) or label for key, label in labels.items()}
    family = [d for d in deltas if d.get("p_value") is not None]
    found = [d for d in family if d.get("significant_bh")]
    found.sort(
        key=lambda d: (d["p_value"], -abs(d["delta"]) / max(d["ci_high"] - d["ci_low"], 1e-12))
    )
    low, high = reference_policies()
    lines = [
        f"Paired differences against `{low}` and `{high}` on the same resamples, for the "
        "quantities that vary with the test sample (not cost or exit fractions, which the "
        "fitted policy fixes), one direction per pair of policies: two-sided p-values from "
        "the bootstrap standard error (normal approximation), Benjamini-Hochberg correction "
        f"for multiple comparisons at a {FDR:.0%} false discovery rate over the {len(family)} "
        "tested differences.",
        "",
    ]
    shown = found[:MAX_DIFFERENCES]
    lines += [_delta_line(d, labels[run_key(d)]) for d in shown] or [
        "None: no tested difference is significant after the correction."
    ]
    more = f"; the {len(shown)} smallest p-values shown" if len(found) > len(shown) else ""
    lines += [
        "",
        f"({len(found)} of {len(family)} tested differences significant{more}; all "
        f"{len(deltas)} paired differences in deltas.csv, columns p_value and significant_bh.)",
        "",
    ]
    return lines


def sample_warnings(samples: dict | None) -> list[str]:
    """One line per dataset evaluated on fewer samples than it holds (e.g. a limit on the
    test batches), naming both counts."""
    return [
        f"warning: evaluated {c['n']} of the {c['of']} samples of {name} (a limit on the test "
        "batches, e.g. --trainer.limit_test_batches): its figures are those of these samples"
        for name, c in (samples or {}).items()
        if c["n"] < c["of"]
    ]


def _interval_sentence(boot: dict) -> str:
    recentred = sorted(m for m, how in boot.get("intervals", {}).items() if how != "percentile")
    text = (
        f"Intervals: 95% percentile bootstrap over {boot['resamples']} resamples of each "
        f"test set (seed {boot['seed']}); the policies stay as fitted on the held-out split, "
        "so they are intervals over the test sample, not over the calibration."
    )
    if recentred:
        text += (
            f" For {', '.join(recentred)}, whose resampled values run to one side of the value "
            "(resampled duplicates make the bins look more certain), the percentile interval "
            "is recentred on the value at the resamples' median m: [v - (m - q2.5), v + "
            "(q97.5 - m)], which contains the value; differences keep the percentile interval "
            "(the bias cancels)."
        )
    return text


def _run_facts(summary: dict, samples: dict | None) -> list[str]:
    """The report's first lines: score, target, definitions and cost unit, the members with
    their MACs, and the samples evaluated per dataset when known."""
    facts = {k: summary.get(k) for k in ("score", "target", "definitions", "cost_unit")}
    lines = [", ".join(f"{k}: {v}" for k, v in facts.items() if v is not None)]
    lines.append(
        "members: "
        + ", ".join(
            f"{m.get('member') or m.get('checkpoint')} ({float(m['macs']):.4g} MACs)"
            for m in summary.get("members", [])
        )
    )
    if samples:
        counts = (
            f"{name} {c['n']}" + (f" of {c['of']}" if c["n"] != c["of"] else "")
            for name, c in samples.items()
        )
        lines.append("samples: " + ", ".join(counts))
    return lines


def report_text(
    rows: list[dict],
    summary: dict,
    plots: list[str],
    deltas: list[dict] | None = None,
    samples: dict | None = None,
) -> str:
    """The Markdown text of ``report.md``.

    Args:
        rows: the tidy metric rows (with ``ci_low``/``ci_high`` when bootstrapped).
        summary: the run's summary (members, fitted policies, score, target, bootstrap, ...).
        plots: file names of the plots beside the report.
        deltas: the paired differences (``deltas.csv``), or None without a bootstrap.
        samples: dataset -> ``{"n": evaluated samples, "of": the dataset's samples}``, or None
            when not known.
    """
    members = summary.get("members", [])
    unit = float(members[0]["macs"]) if members else 1.0
    boot = summary.get("bootstrap")
    lines = ["# Cascade evaluation report", "", *_run_facts(summary, samples)]
    for name, reason in (summary.get("not_fitted") or {}).items():
        lines += [f"**{name} was not fitted** (not evaluated): {reason}", ""]
    key_rows = [r for r in rows if not is_cost_to_target(r["policy"])]  # their own section
    notes = sample_warnings(samples) + clamp_notes(summary.get("policies", {}))
    notes += [
        f"note: {' and '.join(group)} give identical results on every dataset (they passed on "
        "the same samples): one row in the tables"
        for group in identical_policies(key_rows)
    ]
    lines += ["", *(f"- {n}" for n in notes), *([""] if notes else [])]
    lines.append(
        _interval_sentence(boot)
        if boot
        else "No intervals: run with a bootstrap (--bootstrap N) to get them."
    )
    lines += ["", "Cost: expected MACs per sample in units of the first member's MACs.", ""]
    lines += target_lines(key_rows, deltas, summary.get("target"), unit)
    if any(r.get("members") for r in rows):  # one key table: across the orders
        lines += ["## Across member orders", ""] + _order_tables(key_rows, unit)
    else:
        lines += ["## Results", ""] + _dataset_tables(key_rows, unit, samples)
    costs = cost_to_target_lines(rows, summary, unit)
    if costs:
        lines += ["## Cost to reach the ensemble's gain", ""] + costs
    headroom = headroom_lines(summary)
    if headroom:
        lines += ["## Headroom", ""] + headroom
    if plots:
        lines += ["## Plots", ""] + [f"![{p}]({p})" for p in plots] + [""]
    if deltas is not None:
        lines += ["## Differences that matter", ""] + _differences(rows, deltas)
    lines += ["## Fitted policies", "", "```"]
    lines += [
        f'"{label}": {json.dumps(value)}' for label, value in summary.get("policies", {}).items()
    ]
    lines += ["```", ""]
    return "\n".join(lines)
