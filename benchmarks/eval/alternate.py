"""Two evaluator command lines side by side: whole processes, alternated, medians.

    python benchmarks/eval/alternate.py --logits-dir /tmp/bench_logits --repeats 5 \
        --a="--gain-shares" --b=""   # "=" because the values start with --

Both run ``scripts/evaluate_logits.py`` on the ImageNet-shaped layout of
``benchmarks/eval/benchmark_eval.py`` (members m0 m1, held-out ``heldout``, ID ``test``, OOD
``ood_a ood_b``; ``--quiet --no-plots``) plus the options of ``--a`` and ``--b``, A then B
``--repeats`` times. Printed: per command the wall and CPU seconds (median, ``os.wait4``) and
peak RSS, the B / A ratio pair by pair, the machine and the load average before and after.
Nothing is asserted.
"""

from __future__ import annotations

import argparse
import os
import platform
import shlex
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
        raise SystemExit(f"error: {shlex.join(cmd)} failed")
    return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 2**20


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--logits-dir", required=True)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--a", default="", help="options of command A (one string)")
    p.add_argument("--b", default="", help="options of command B (one string)")
    args = p.parse_args()
    out = Path(tempfile.mkdtemp(prefix="bench_alt_"))
    base = [
        *(sys.executable, str(ROOT / "scripts" / "evaluate_logits.py")),
        *("--logits-dir", args.logits_dir, "--members", "m0", "m1", "--heldout", "heldout"),
        *("--id", "test", "--ood", "ood_a", "ood_b", "--quiet", "--no-plots", "--overwrite"),
        *("--out", str(out)),
    ]
    commands = {"A": [*base, *shlex.split(args.a)], "B": [*base, *shlex.split(args.b)]}
    runs: dict[str, list] = {"A": [], "B": []}
    load_before = os.getloadavg()
    for _ in range(args.repeats):
        for name, cmd in commands.items():
            runs[name].append(timed(cmd))
    load_after = os.getloadavg()
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs")
    print(f"load average (1, 5, 15 min): before {load_before}, after {load_after}")
    for name, rows in runs.items():
        walls = ", ".join(f"{r[0]:.2f}" for r in rows)
        print(
            f"{name}: {shlex.join(commands[name][1:])}\n"
            f"   wall median {statistics.median(r[0] for r in rows):.2f} s ({walls}); "
            f"cpu {statistics.median(r[1] for r in rows):.2f} s; "
            f"peak {max(r[2] for r in rows):.2f} GiB"
        )
    ratio = [b[0] / a[0] for a, b in zip(runs["A"], runs["B"], strict=True)]
    cpu = [b[1] / a[1] for a, b in zip(runs["A"], runs["B"], strict=True)]
    print(
        f"B / A pair by pair: wall median {statistics.median(ratio):.2f}x "
        f"({min(ratio):.2f}-{max(ratio):.2f}); cpu median {statistics.median(cpu):.2f}x"
    )


if __name__ == "__main__":
    main()
