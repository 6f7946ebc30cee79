"""Whole commands timed as a user runs them, alternated: the shared helper of the benchmark
programs that compare two command lines (``benchmarks/eval/alternate.py``,
``benchmarks/bootstrap/benchmark_bootstrap.py``).

Each command runs as its own process (interpreter start-up and imports included); its wall
time, CPU time (user + system) and peak resident memory come from ``os.wait4``. The commands
run in turn, ``repeats`` rounds, so a change of machine load hits both alike; the ratio is
taken pair by pair and reported as a median with its range.
"""

from __future__ import annotations

import os
import platform
import shlex
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def timed(cmd: list[str]) -> tuple[float, float, float]:
    """(wall s, CPU s, peak RSS GiB) of one whole process; exits naming it if it fails."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"error: {shlex.join(cmd)} failed")
    return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 2**20


def alternate(commands: dict[str, list[str]], repeats: int) -> dict[str, list[tuple]]:
    """Run the commands in turn, ``repeats`` rounds; print the machine, the load average
    before and after and each command's medians; return each command's (wall, CPU, RSS) runs."""
    runs: dict[str, list[tuple]] = {name: [] for name in commands}
    load_before = os.getloadavg()
    for _ in range(repeats):
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
    return runs


def print_ratio(runs: dict[str, list[tuple]], base: str, other: str) -> None:
    """Print ``other`` / ``base``, wall and CPU, pair by pair: median and range."""
    wall = [b[0] / a[0] for a, b in zip(runs[base], runs[other], strict=True)]
    cpu = [b[1] / a[1] for a, b in zip(runs[base], runs[other], strict=True)]
    print(
        f"{other} / {base} pair by pair: wall median {statistics.median(wall):.2f}x "
        f"({min(wall):.2f}-{max(wall):.2f}); cpu median {statistics.median(cpu):.2f}x"
    )


def evaluator_command(logits_dir: str, out: str) -> list[str]:
    """The offline evaluator on the ImageNet-shaped layout of
    ``benchmarks/eval/benchmark_eval.py`` (members m0 m1, held-out ``heldout``, ID ``test``,
    OOD ``ood_a ood_b``; ``--quiet --no-plots --overwrite``), writing to ``out``."""
    return [
        *(sys.executable, str(ROOT / "scripts" / "evaluate_logits.py")),
        *("--logits-dir", logits_dir, "--members", "m0", "m1", "--heldout", "heldout"),
        *("--id", "test", "--ood", "ood_a", "ood_b", "--quiet", "--no-plots", "--overwrite"),
        *("--out", out),
    ]
