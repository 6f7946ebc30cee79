"""Regenerate the golden files of the output regression test (tests/data/regression_metrics.csv
and regression_summary.json, compared by tests/end_to_end/test_golden_outputs.py) and print what
changed.

    python scripts/regenerate_golden.py                   # write them if no existing row changed
    python scripts/regenerate_golden.py --check           # print what would change; exit 1 if any
    python scripts/regenerate_golden.py --accept-changed  # write them though existing rows changed

When: a new metric or policy adds rows to metrics.csv (and fields to summary.json); every row
the files already hold keeps its value and its place among the others. A run where an existing
row changed, moved or went is refused (exit 1) unless ``--accept-changed`` is given: a
deliberate change of the numbers, to be explained in the commit and the CHANGELOG.
"""

import argparse
import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the tests package, from a checkout

from tests.regression_case import (  # noqa: E402
    GOLDEN_METRICS,
    GOLDEN_SUMMARY,
    metrics_changes,
    run_case,
    summary_changes,
)

SHOWN = 10  # lines listed per kind of change


def _listed(title: str, items: list, show) -> list[str]:
    if not items:
        return []
    lines = [f"  {title}: {len(items)}"]
    lines += [f"    {show(item)}" for item in items[:SHOWN]]
    if len(items) > SHOWN:
        lines.append(f"    ... and {len(items) - SHOWN} more")
    return lines


def _row(key: tuple) -> str:
    return ",".join(v for _, v in key)


def report(rows: dict, fields: dict) -> list[str]:
    """What changed, as printed lines (one heading per file, then each kind of change)."""
    lines = [f"{GOLDEN_METRICS.name}:"]
    lines += _listed("rows added", rows["added"], _row)
    lines += _listed("rows removed", rows["removed"], _row)
    lines += _listed("rows changed", rows["changed"], lambda c: f"{_row(c[0])}: {c[1]} -> {c[2]}")
    lines += _listed("rows moved", rows["moved"], _row)
    lines += [f"{GOLDEN_SUMMARY.name}:"]
    lines += _listed("fields added", fields["added"], str)
    lines += _listed("fields removed", fields["removed"], str)
    lines += _listed("fields changed", fields["changed"], lambda c: f"{c[0]}: {c[1]!r} -> {c[2]!r}")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--check", action="store_true", help="write nothing; exit 1 on a change")
    parser.add_argument(
        "--accept-changed",
        action="store_true",
        help="write even when existing rows or fields changed, moved or went (deliberately)",
    )
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        out = run_case(Path(tmp))
        metrics, summary = (out / "metrics.csv").read_text(), (out / "summary.json").read_text()
    rows = metrics_changes(GOLDEN_METRICS.read_text(), metrics)
    fields = summary_changes(GOLDEN_SUMMARY.read_text(), summary)
    if not any(rows.values()) and not any(fields.values()):
        print("golden files unchanged")
        return 0
    print("\n".join(report(rows, fields)))
    broken = rows["removed"] or rows["changed"] or rows["moved"]
    broken = broken or fields["removed"] or fields["changed"]
    if args.check:
        return 1
    if broken and not args.accept_changed:
        print("not written: existing rows or fields changed (--accept-changed writes them)")
        return 1
    for path, text in ((GOLDEN_METRICS, metrics), (GOLDEN_SUMMARY, summary)):
        staged = path.with_name(path.name + ".new")  # whole files or none: write, then rename
        staged.write_text(text)
        os.replace(staged, path)
    print(f"wrote {GOLDEN_METRICS} and {GOLDEN_SUMMARY}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
