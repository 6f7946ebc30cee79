"""What ``--bootstrap N`` costs: the offline evaluator with and without it, as a user runs it.

Alternates the two whole commands (interpreter start-up and imports included) ``--repeats``
times on cached logits (``benchmarks/eval/benchmark_eval.py --dir DIR`` makes ImageNet-shaped
ones) and prints, per command, the median wall and CPU seconds (``os.wait4``), the peak RSS,
the ratio pair by pair and the load average before and after. Nothing is asserted.

    python benchmarks/bootstrap/benchmark_bootstrap.py --logits-dir /tmp/bench_logits \
        [--resamples 1000] [--repeats 3] [-- extra evaluator options]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def timed(cmd: list[str]) -> tuple[float, float, float]:
    """(wall s, CPU s, peak RSS GiB) of one whole process."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"error: {' '.join(cmd)} failed")
    return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 2**20


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--logits-dir", required=True)
    p.add_argument("--resamples", type=int, default=1000)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("extra", nargs="*", help="more evaluator options (after --)")
    args = p.parse_args()
    out = Path(tempfile.mkdtemp(prefix="bench_boot_"))
    base = [
        sys.executable,
        str(ROOT / "scripts" / "evaluate_logits.py"),
        "--logits-dir",
        args.logits_dir,
        "--members",
        "m0",
        "m1",
        "--heldout",
        "heldout",
        "--id",
        "test",
        "--ood",
        "ood_a",
        "ood_b",
        "--quiet",
        "--no-plots",
        "--overwrite",
        "--out",
        str(out),
        *args.extra,
    ]
    runs = {"plain": [], "bootstrap": []}
    load_before = os.getloadavg()
    for _ in range(args.repeats):
        runs["plain"].append(timed(base))
        runs["bootstrap"].append(timed([*base, "--bootstrap", str(args.resamples)]))
    load_after = os.getloadavg()
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs")
    print(f"load average (1, 5, 15 min) before {load_before}, after {load_after}")
    print(f"command: {' '.join(base[1:])} [--bootstrap {args.resamples}]")
    for name, rows in runs.items():
        wall = statistics.median(r[0] for r in rows)
        cpu = statistics.median(r[1] for r in rows)
        rss = max(r[2] for r in rows)
        walls = ", ".join(f"{r[0]:.2f}" for r in rows)
        print(f"{name:10s} wall median {wall:.2f} s ({walls}); cpu {cpu:.2f} s; peak {rss:.2f} GiB")
    ratios = [b[0] / a[0] for a, b in zip(runs["plain"], runs["bootstrap"], strict=True)]
    cpu_ratios = [b[1] / a[1] for a, b in zip(runs["plain"], runs["bootstrap"], strict=True)]
    print(
        f"ratio pair by pair: wall median {statistics.median(ratios):.2f}x "
        f"({min(ratios):.2f}-{max(ratios):.2f}), cpu median {statistics.median(cpu_ratios):.2f}x"
    )


if __name__ == "__main__":
    main()
