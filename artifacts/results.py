"""The results of an evaluation: tidy ``metrics.csv``, ``summary.json``, plots, a printed table.

``metrics.csv`` has one value per row with the columns of
[`window_cascades.cascade.evaluation.ROW_FIELDS`][]. All files are first written to a temporary
folder and only then moved into place, so a failure leaves the previous results untouched.
"""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

from window_cascades.artifacts.result_labels import (  # noqa: F401  (re-exported: the names results had)
    LABELLED_LEAD,
    OOD_LEAD,
    clamp_notes,
    identical_policies,
    lead_columns,
    policy_labels,
    run_key,
    same_as,
)
from window_cascades.cascade.bootstrap import DELTA_FIELDS
from window_cascades.cascade.cost_to_target import is_cost_to_target
from window_cascades.cascade.evaluation import ROW_FIELDS


def metrics_csv_text(rows: list[dict], fields: tuple[str, ...] = ROW_FIELDS) -> str:
    """The tidy table as CSV text (``fields``: the columns, e.g. with a leading ``model``)."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=fields, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({**row, **{k: _number(row.get(k)) for k in NUMBER_FIELDS if k in fields}})
    return buf.getvalue()


NUMBER_FIELDS = ("value", "delta", "ci_low", "ci_high", "p_value")


def _number(value) -> str:
    """A float as its shortest exact text, None as an empty cell."""
    return "" if value is None else repr(float(value))


def read_metrics_csv(path: str | Path) -> list[dict]:
    """Read a ``metrics.csv`` (or ``deltas.csv``) back: numbers as floats, empty cells as None,
    ``significant`` and ``significant_bh`` as bools."""
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    for r in rows:
        for k in NUMBER_FIELDS:
            if k in r:
                r[k] = float(r[k]) if r[k] != "" else None
        for flag in ("significant", "significant_bh"):
            if flag in r:
                r[flag] = r[flag] == "True"
    return rows


def nested_metrics(rows: list[dict]) -> dict:
    """{dataset: {policy label: {metric: value}}} view of the rows."""
    labels = policy_labels(rows)
    out: dict = {}
    for r in rows:
        label = labels[run_key(r)]
        out.setdefault(r["dataset"], {}).setdefault(label, {})[r["metric"]] = r["value"]
    return out


def format_table(
    rows: list[dict], stage_macs: list[float] | None = None, policies: dict | None = None
) -> str:
    """A compact human-readable table: one line per dataset and policy (the cost-to-target
    settings are in ``report.md`` and ``metrics.csv``), then its notes: the cost unit,
    policies with identical results, and the windows clamped to an end of the held-out
    scores (``policies``: summary.json's fitted policies by label; None: no such note)."""
    rows = [r for r in rows if not is_cost_to_target(r["policy"])]
    nested = nested_metrics(rows)
    roles = {r["dataset"]: r["role"] for r in rows}
    unit = stage_macs[0] if stage_macs else 1.0
    lines = []
    for dataset, per_policy in nested.items():
        role = roles[dataset]
        cols = lead_columns(next(iter(per_policy.values())), role)
        width = max(28, *(len(p) + 4 for p in per_policy))
        head = f"{dataset} ({role})"
        widths = [max(10, len(c) + 2) for c in cols]
        header = "".join(f"{c:>{w}}" for c, w in zip(cols, widths, strict=True))
        lines.append(f"{head:<{width}}{header}{'cost':>10}")
        for policy, values in per_policy.items():
            cells = "".join(
                f"{values[c]:>{w}.4f}" if c in values else f"{'-':>{w}}"
                for c, w in zip(cols, widths, strict=True)
            )
            cost = values.get("expected_macs", float("nan")) / unit
            lines.append(f"  {policy:<{width - 2}}{cells}{cost:>10.3f}")
        lines.append("")
    lines.append("cost = expected MACs per sample in units of the first member's MACs")
    for group in identical_policies(rows):
        lines.append(
            f"note: {' and '.join(group)} give identical results on every dataset "
            "(they passed on the same samples, e.g. fitted the same band)"
        )
    lines += clamp_notes(policies or {})
    return "\n".join(lines)


def write_results(
    results_dir: str | Path,
    rows: list[dict],
    policies: dict,
    members: list[dict],
    curves: dict | None = None,
    extra: dict | None = None,
    quiet: bool = False,
    shown_dir: str | Path | None = None,
    deltas: list[dict] | None = None,
    orders: list[str] | None = None,
    samples: dict | None = None,
) -> list[Path]:
    """Write metrics.csv, summary.json and plots into ``results_dir``; print the table.

    Args:
        results_dir: the folder to write into (created if missing; a staging folder when the run is
            swapped in whole).
        rows: the tidy metric rows (``metrics.csv``), with their intervals when there is a
            bootstrap.
        policies: the fitted policies' dicts by [`run_key`][], as the rows name them; summary.json
            keys them by their label ([`policy_labels`][]).
        members: one ``{member, macs}`` per member, in cascade order (``summary.json``).
        curves: [`run_key`][] -> {dataset: (coverage, risk)} on the ID and shifted sets, for the
            plots; None draws none.
        extra: more entries for ``summary.json`` (the cost unit, score, target, bootstrap, ...);
            None: none.
        quiet: print nothing (no table, no list of files).
        shown_dir: the folder named in the printed list of files (where they will be, when
            ``results_dir`` is a staging folder).
        deltas: paired differences (``window_cascades.cascade.bootstrap.DELTA_FIELDS``) for
            ``deltas.csv``; None writes none.
        orders: the member orders of a run over several (the rows' ``members``): metrics.csv
            and deltas.csv get a ``members`` column, and ``orders.csv`` the spread of every
            figure across the orders; None for one order.
        samples: dataset -> ``{"n": samples evaluated, "of": samples the dataset holds}``, for
            report.md (and a warning on stderr, always, where ``n`` < ``of``); None: unknown.

    Returns:
        The paths written.
    """
    results_dir = Path(results_dir)
    results_dir.mkdir(parents=True, exist_ok=True)
    id_name = next(r["dataset"] for r in rows if r["role"] == "id")
    labels = policy_labels(rows)
    summary = {
        "members": members,
        **({"orders": orders} if orders else {}),
        "policies": {labels[key]: value for key, value in policies.items()},
        "metrics": nested_metrics(rows),
        **(extra or {}),
    }
    staging = Path(tempfile.mkdtemp(dir=results_dir, prefix=".staging-"))
    try:
        lead = ("members",) if orders else ()
        (staging / "metrics.csv").write_text(metrics_csv_text(rows, (*lead, *ROW_FIELDS)))
        (staging / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
        names = ["metrics.csv", "summary.json"]
        if deltas is not None:
            (staging / "deltas.csv").write_text(metrics_csv_text(deltas, (*lead, *DELTA_FIELDS)))
            names.append("deltas.csv")
        if orders:
            from window_cascades.cascade.orders import ORDERS_FIELDS, spread_across_orders

            spread = spread_across_orders(rows)
            (staging / "orders.csv").write_text(metrics_csv_text(spread, ORDERS_FIELDS))
            names.append("orders.csv")
        if curves:
            from window_cascades.artifacts.result_plots import plot_files

            labelled = {labels[key]: curve for key, curve in curves.items()}
            target = (extra or {}).get("target")
            names += plot_files(staging, rows, labelled, id_name, members[0]["macs"], target)
        from window_cascades.artifacts.report import report_text, sample_warnings

        plots = [n for n in names if n.endswith(".png")]
        (staging / "report.md").write_text(report_text(rows, summary, plots, deltas, samples))
        names.append("report.md")
        for name in names:
            os.replace(staging / name, results_dir / name)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    for line in sample_warnings(samples):
        print(line, file=sys.stderr)
    if not quiet:
        _print_table(results_dir, rows, summary, shown_dir)
    return [results_dir / name for name in names]


def _print_table(results_dir: Path, rows: list[dict], summary: dict, shown_dir) -> None:
    """Print the results table ([`format_table`][]) and the files written."""
    print(format_table(rows, [m["macs"] for m in summary["members"]], summary["policies"]))
    print("\nResults written to:")
    for path in sorted(p for p in results_dir.iterdir() if not p.name.startswith(".")):
        print(f"  {Path(shown_dir) / path.name if shown_dir else path}")
