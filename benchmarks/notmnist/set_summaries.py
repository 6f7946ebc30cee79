"""Compact per-set summaries of the notMNIST benchmark: every ID, shifted and OOD set.

    python benchmarks/notmnist/set_summaries.py RUN/metrics.csv.gz --out benchmarks/notmnist

The full table of a run (``metrics.csv.gz``: every figure of every member order, about 5 MB)
stays out of the repository; these summaries stay in it. For every model (a size, or a growing
pair ``small>large``), policy and set, each figure is the mean over the model's member orders,
with the mean of the orders' 95% bootstrap intervals (the test-sample uncertainty of one
cascade, as in ``tables.md``):

- ``shift_summary.csv``: the ID test set and the 15 shifted sets, policies calibrated for cov@2
  with MSP (single, ensemble, the window, the adjusted window, the single threshold and
  ``budget_window`` at 1.2x): cost (expected MMACs), the share passed on to member 2, accuracy,
  cov@2 and AURC;
- ``ood_summary.csv``: each OOD set against the ID test set: the fpr@95 window with the energy
  score (and single, ensemble with that score), and the cov@2 windows with MSP: cost, share
  passed on, AUROC and fpr@95;
- ``sets.md``: both as tables, one per set.

``benchmark_notmnist.py`` writes them with every run; this script makes them from the full
table of an earlier run.
"""

from __future__ import annotations

import argparse
import csv
import gzip
import io
import sys
from pathlib import Path

WIDTH = 0.1
SHIFT_POLICIES = (
    ("single", "", "msp"),
    ("ensemble", "", "msp"),
    ("window", f"cov@2,w={WIDTH:g}", "msp"),
    ("window_adjusted", f"cov@2,w={WIDTH:g}", "msp"),
    ("single_threshold", "pass=0.2", "msp"),
    ("budget_window", "cov@2,B=1.2", "msp"),
)
"""The policies summarised on the ID and shifted sets: (policy, setting, score)."""
SHIFT_METRICS = ("expected_macs", "exit_frac@2", "acc", "cov@2", "aurc")
OOD_POLICIES = (
    ("single", "", "energy"),
    ("ensemble", "", "energy"),
    ("window", f"fpr@95,w={WIDTH:g}", "energy"),
    ("window", f"cov@2,w={WIDTH:g}", "msp"),
    ("window_adjusted", f"cov@2,w={WIDTH:g}", "msp"),
)
"""The policies summarised on the OOD sets: (policy, setting, score)."""
OOD_METRICS = ("expected_macs", "exit_frac@2", "auroc", "fpr@95")
KEY = ("model", "orders", "policy", "setting", "score", "dataset", "role")


def read_rows(path: Path) -> list[dict]:
    """The tidy rows of a run's ``metrics.csv`` or ``metrics.csv.gz`` (values as floats)."""
    raw = path.read_bytes()
    text = gzip.decompress(raw).decode() if path.suffix == ".gz" else raw.decode()
    rows = list(csv.DictReader(io.StringIO(text)))
    for r in rows:
        for field in ("value", "ci_low", "ci_high"):
            r[field] = float(r[field]) if r.get(field) not in (None, "") else None
    return rows


def _summary(rows: list[dict], roles: tuple[str, ...], policies, metrics) -> list[dict]:
    groups: dict[tuple, dict[str, list[dict]]] = {}
    for r in rows:
        family = (r["policy"], r["setting"], r["score"])
        if r["role"] in roles and family in policies and r["metric"] in metrics:
            key = (r["model"], *family, r["dataset"], r["role"])
            groups.setdefault(key, {}).setdefault(r["metric"], []).append(r)
    out = []
    models = list(dict.fromkeys(r["model"] for r in rows))
    datasets = list(dict.fromkeys(r["dataset"] for r in rows))
    order = {k: i for i, k in enumerate(models)}
    for key in sorted(
        groups,
        key=lambda k: (datasets.index(k[4]), order[k[0]], policies.index(k[1:4])),
    ):
        by_metric = groups[key]
        orders = max(len(v) for v in by_metric.values())
        row = dict(zip(KEY, (key[0], orders, *key[1:]), strict=True))
        for metric in metrics:
            picked = by_metric.get(metric, [])
            scale = 1e6 if metric == "expected_macs" else 1.0
            for suffix, field in (("", "value"), ("_low", "ci_low"), ("_high", "ci_high")):
                values = [p[field] for p in picked]
                ok = values and all(v is not None for v in values)
                row[metric + suffix] = f"{sum(values) / len(values) / scale:.5g}" if ok else ""
        out.append(row)
    return out


def summaries(rows: list[dict]) -> tuple[list[dict], list[dict]]:
    """(ID and shifted sets, OOD sets): one row per model, policy and set."""
    return (
        _summary(rows, ("id", "shift"), SHIFT_POLICIES, SHIFT_METRICS),
        _summary(rows, ("ood",), OOD_POLICIES, OOD_METRICS),
    )


def csv_text(rows: list[dict], metrics: tuple[str, ...]) -> str:
    """The summary rows as CSV text (the columns: the key, then each metric with its
    ``_low`` and ``_high`` interval ends)."""
    fields = [*KEY, *(m + s for m in metrics for s in ("", "_low", "_high"))]
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=fields, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


def _cell(row: dict, metric: str, digits: int) -> str:
    if not row.get(metric):
        return "-"
    value = f"{float(row[metric]):.{digits}f}"
    if row.get(metric + "_low"):
        value += f" [{float(row[metric + '_low']):.{digits}f}, {float(row[metric + '_high']):.{digits}f}]"  # noqa: E501
    return value


def _label(policy: tuple[str, str, str]) -> str:
    name, setting, score = policy
    return name + (f"[{setting}]" if setting else "") + (f" ({score})" if score != "msp" else "")


def markdown(shift: list[dict], ood: list[dict]) -> str:
    """``sets.md``: per set, one row per model, the target metric of each policy with its
    interval, and the window's cost and share passed on."""

    def tables(rows, policies, metric, digits, title):
        lines = []
        window = next(p for p in policies if p[0] == "window")
        for dataset in dict.fromkeys(r["dataset"] for r in rows):
            here = [r for r in rows if r["dataset"] == dataset]
            role = here[0]["role"]
            lines += [f"### {dataset} ({role}): {title}", ""]
            head = [_label(p) for p in policies]
            lines.append(
                "| model (orders) | "
                + " | ".join(head)
                + f" | {_label(window)}: MMACs | passed on |"
            )
            lines.append("| --- " * (len(policies) + 3) + "|")
            for model in dict.fromkeys(r["model"] for r in here):
                cells, orders = [], 0
                for policy in policies:
                    row = next(
                        (
                            r
                            for r in here
                            if r["model"] == model
                            and tuple(r[f] for f in ("policy", "setting", "score")) == policy
                        ),
                        None,
                    )  # fmt: skip - one lookup per policy column
                    cells.append(_cell(row, metric, digits) if row else "-")
                    orders = max(orders, int(row["orders"])) if row else orders
                w = next(  # None where no member order could fit the window (target unreachable)
                    (
                        r
                        for r in here
                        if r["model"] == model and (r["policy"], r["setting"], r["score"]) == window
                    ),
                    None,
                )
                cost = (
                    f"{_cell(w, 'expected_macs', 1)} | {_cell(w, 'exit_frac@2', 3)}"
                    if w
                    else "- | -"
                )
                lines.append(f"| {model} ({orders}) | " + " | ".join(cells) + f" | {cost} |")
            lines.append("")
        return lines

    out = [
        "## ID and shifted sets: cov@2 (mean over member orders [mean 95% interval])",
        "",
    ]
    out += tables(shift, list(SHIFT_POLICIES[:4]), "cov@2", 4, "cov@2")
    out += ["## OOD sets: fpr@95 (mean over member orders [mean 95% interval])", ""]
    out += tables(ood, list(OOD_POLICIES), "fpr@95", 4, "fpr@95")
    return "\n".join(out).rstrip("\n") + "\n"


def write(rows: list[dict], out: Path) -> list[Path]:
    """Write ``shift_summary.csv``, ``ood_summary.csv`` and ``sets.md`` into ``out``
    (each atomically); returns their paths."""
    from window_cascades.artifacts.atomic import write_text

    shift, ood = summaries(rows)
    files = {
        "shift_summary.csv": csv_text(shift, SHIFT_METRICS),
        "ood_summary.csv": csv_text(ood, OOD_METRICS),
        "sets.md": markdown(shift, ood),
    }
    for name, text in files.items():
        write_text(out / name, text)
    return [out / name for name in files]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("metrics", type=Path, help="a run's metrics.csv or metrics.csv.gz")
    p.add_argument("--out", type=Path, required=True, help="folder to write the summaries into")
    args = p.parse_args(argv)
    if not args.metrics.is_file():
        print(f"error: {args.metrics}: no such file (a run's metrics.csv.gz)", file=sys.stderr)
        return 2
    for path in write(read_rows(args.metrics), args.out):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
