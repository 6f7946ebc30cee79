"""The results of an evaluation: tidy ``metrics.csv``, ``summary.json``, plots, a printed table.

``metrics.csv`` has one value per row with the columns of :data:`cascade.evaluation.ROW_FIELDS`.
All files are first written to a temporary folder and only then moved into place, so a failure
leaves the previous results untouched.
"""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import tempfile
from pathlib import Path

import torch

from cascade.evaluation import ROW_FIELDS

LABELLED_COLUMNS = ("acc", "nll", "ece", "aurc", "cov@5", "risk@80")
OOD_COLUMNS = ("auroc", "aupr", "fpr@95")


def metrics_csv_text(rows: list[dict]) -> str:
    """The tidy table as CSV text."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=ROW_FIELDS, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({**row, "value": repr(float(row["value"]))})
    return buf.getvalue()


def read_metrics_csv(path: str | Path) -> list[dict]:
    """Read a ``metrics.csv`` back (values as floats)."""
    with open(path, newline="") as f:
        return [{**r, "value": float(r["value"])} for r in csv.DictReader(f)]


def nested_metrics(rows: list[dict]) -> dict:
    """{dataset: {policy: {metric: value}}} view of the rows."""
    out: dict = {}
    for r in rows:
        out.setdefault(r["dataset"], {}).setdefault(r["policy"], {})[r["metric"]] = r["value"]
    return out


def format_table(rows: list[dict], stage_macs: list[float] | None = None) -> str:
    """A compact human-readable table: one line per dataset and policy."""
    nested = nested_metrics(rows)
    roles = {r["dataset"]: r["role"] for r in rows}
    unit = stage_macs[0] if stage_macs else 1.0
    lines = []
    for dataset, per_policy in nested.items():
        role = roles[dataset]
        cols = OOD_COLUMNS if role == "ood" else LABELLED_COLUMNS
        head = f"{dataset} ({role})"
        lines.append(f"{head:<28}" + "".join(f"{c:>9}" for c in cols) + f"{'cost':>9}")
        for policy, values in per_policy.items():
            cells = "".join(f"{values[c]:>9.4f}" if c in values else f"{'-':>9}" for c in cols)
            cost = values.get("expected_macs", float("nan")) / unit
            lines.append(f"  {policy:<26}{cells}{cost:>9.3f}")
        lines.append("")
    lines.append("cost = expected MACs per sample in units of the first member's MACs")
    return "\n".join(lines)


def _plot_files(folder: Path, rows: list[dict], curves: dict, id_name: str) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 4))
    for policy, (coverage, risk) in curves.items():
        ax.plot(torch.as_tensor(coverage), torch.as_tensor(risk), label=policy)
    ax.set(xlabel="coverage", ylabel="selective risk", title=f"Risk-coverage ({id_name})")
    ax.legend()
    fig.tight_layout()
    fig.savefig(folder / "risk_coverage.png", dpi=120)
    plt.close(fig)

    nested = nested_metrics(rows)[id_name]
    fig, ax = plt.subplots(figsize=(5, 4))
    for policy, values in nested.items():
        if "cov@5" in values:
            ax.scatter(values["expected_macs"] / 1e6, values["cov@5"], label=policy, s=40)
    ax.set(xlabel="expected MMACs per sample", ylabel="cov@5", title=f"Cost vs cov@5 ({id_name})")
    ax.legend()
    fig.tight_layout()
    fig.savefig(folder / "macs_vs_cov5.png", dpi=120)
    plt.close(fig)
    return ["risk_coverage.png", "macs_vs_cov5.png"]


def write_results(
    results_dir: str | Path,
    rows: list[dict],
    policies: dict,
    members: list[dict],
    curves: dict | None = None,
    extra: dict | None = None,
) -> list[Path]:
    """Write metrics.csv, summary.json and plots into ``results_dir``; print the table.

    Returns:
        The paths written.
    """
    results_dir = Path(results_dir)
    results_dir.mkdir(parents=True, exist_ok=True)
    id_name = next(r["dataset"] for r in rows if r["role"] == "id")
    summary = {
        "members": members,
        "policies": policies,
        "metrics": nested_metrics(rows),
        **(extra or {}),
    }
    staging = Path(tempfile.mkdtemp(dir=results_dir, prefix=".staging-"))
    try:
        (staging / "metrics.csv").write_text(metrics_csv_text(rows))
        (staging / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
        names = ["metrics.csv", "summary.json"]
        if curves:
            names += _plot_files(staging, rows, curves, id_name)
        written = []
        for name in names:
            os.replace(staging / name, results_dir / name)
            written.append(results_dir / name)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    print(format_table(rows, [m["macs"] for m in members]))
    print("\nResults written to:")
    for path in written:
        print(f"  {path}")
    return written
