"""The README's quick-start table, generated from a run's results and checked against one.

The table sits in ``README.md`` between two markers; the start marker names the datasets it
shows::

    <!-- quickstart-table datasets: digits_test digits_noise photo_patches -->
    ```
    ...the printed table of those datasets...
    ```
    <!-- /quickstart-table -->

[`render_table`][] prints what the quick start prints for those datasets (from
``metrics.csv`` and ``summary.json`` of a results folder), [`replace_table`][] puts it into the
README text, and [`table_differences`][] compares two tables cell by cell: the same datasets,
policies and columns, and every value within ``atol`` (training on another CPU model takes other
kernels and moves a few test samples; see README "One result").
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import tempfile
from pathlib import Path

from window_cascades.artifacts.results import format_table, read_metrics_csv
from window_cascades.commands.plugins import (
    PluginError,
    add_plugin_option,
    load_command_plugins,
    plugin_error,
)

START = re.compile(
    r"<!-- quickstart-table datasets: ([^>]*?) -->\n```\n(.*?)```\n<!-- /quickstart-table -->",
    re.S,
)


class ReadmeTableError(ValueError):
    """The README has no generated table, or the results lack what it shows."""


def find_table(readme_text: str, readme: str | Path = "README.md") -> tuple[list[str], str]:
    """(datasets named by the start marker, the table text) of the README's generated block."""
    match = START.search(readme_text)
    if match is None:
        raise ReadmeTableError(
            f"{readme}: no block between '<!-- quickstart-table datasets: ... -->' and "
            "'<!-- /quickstart-table -->' holding a fenced table"
        )
    return match.group(1).split(), match.group(2)


def render_table(results_dir: str | Path, datasets: list[str]) -> str:
    """The table the run printed, restricted to ``datasets`` (in the order given), with its
    closing lines (the cost unit, policies that gave identical results, clamped windows)."""
    results_dir = Path(results_dir)
    for name in ("metrics.csv", "summary.json"):
        if not (results_dir / name).is_file():
            raise ReadmeTableError(f"{results_dir / name} not found: give a results folder")
    rows = read_metrics_csv(results_dir / "metrics.csv")
    missing = sorted(set(datasets) - {r["dataset"] for r in rows})
    if missing:
        raise ReadmeTableError(f"{results_dir / 'metrics.csv'} has no dataset(s) {missing}")
    summary = json.loads((results_dir / "summary.json").read_text())
    macs = [m["macs"] for m in summary["members"]]
    blocks = format_table(rows, macs, summary.get("policies")).split("\n\n")
    by_name = {block.split()[0]: block for block in blocks[:-1]}
    return "\n\n".join([*(by_name[name] for name in datasets), blocks[-1]]) + "\n"


def replace_table(readme_text: str, table: str) -> str:
    """The README text with the generated block's table replaced by ``table``."""
    datasets, _ = find_table(readme_text)
    block = (
        f"<!-- quickstart-table datasets: {' '.join(datasets)} -->\n```\n{table}```\n"
        "<!-- /quickstart-table -->"
    )
    return START.sub(lambda _: block, readme_text, count=1)


def _cells(table: str) -> list[list[str]]:
    return [line.split() for line in table.strip().splitlines()]


def table_differences(expected: str, actual: str, atol: float) -> list[str]:
    """Where ``actual`` differs from ``expected``: a changed label or layout, or a value that
    moved by more than ``atol``. Empty when they match."""
    exp, act = _cells(expected), _cells(actual)
    if len(exp) != len(act):
        return [f"{len(act)} lines instead of {len(exp)}"]
    out = []
    for e, a in zip(exp, act, strict=True):
        if len(e) != len(a):
            out.append(f"line {' '.join(a)!r} instead of {' '.join(e)!r}")
            continue
        for x, y in zip(e, a, strict=True):
            try:
                fx, fy = float(x), float(y)
            except ValueError:
                if x != y:
                    out.append(f"{y!r} instead of {x!r} in line {' '.join(a)!r}")
                continue
            if abs(fx - fy) > atol:
                out.append(f"{a[0]}: {y} instead of {x} (more than {atol} apart)")
    return out


CHECKOUT_README = Path(__file__).resolve().parents[1] / "README.md"


def default_readme() -> Path:
    """The checkout's README (a development install), else ``README.md`` in the current folder
    (an installed package ships no README)."""
    return CHECKOUT_README if CHECKOUT_README.is_file() else Path("README.md")


def main(argv: list[str] | None = None) -> int:
    """``scripts/update_readme_table.py``: rewrite the table, or ``--check`` it (1: stale)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        _, argv = load_command_plugins(argv)  # a plugin metric may be in the results
    except PluginError as err:
        return plugin_error(err, argv)
    p = argparse.ArgumentParser(description="Write or check the README's quick-start table.")
    p.add_argument("results", help="a results folder (metrics.csv, summary.json)")
    p.add_argument(
        "--readme",
        default=None,
        help="the Markdown file holding the table (default: the checkout's README.md, else "
        "README.md in the current folder)",
    )
    p.add_argument("--check", action="store_true", help="compare only; exit 1 when stale")
    p.add_argument("--atol", type=float, default=0.05, help="largest accepted difference")
    add_plugin_option(p)
    args = p.parse_args(argv)
    readme = Path(args.readme) if args.readme else default_readme()
    if not readme.is_file():
        print(
            f"error: --readme {readme}: no such file (the README holding the table)",
            file=sys.stderr,
        )
        return 2
    try:
        text = readme.read_text()
        datasets, current = find_table(text, readme)
        table = render_table(args.results, datasets)
    except (ReadmeTableError, OSError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    if args.check:
        diffs = table_differences(current, table, args.atol)
        for line in diffs:
            print(f"README table is stale: {line}", file=sys.stderr)
        if diffs:
            print(f"regenerate: python scripts/update_readme_table.py {args.results}")
        return 1 if diffs else 0
    fd, tmp = tempfile.mkstemp(dir=readme.parent, prefix=".README.")
    with os.fdopen(fd, "w") as f:
        f.write(replace_table(text, table))
    os.chmod(tmp, readme.stat().st_mode & 0o777)
    os.replace(tmp, readme)
    print(f"{readme}: table from {args.results} ({', '.join(datasets)})")
    return 0
