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
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from process_timing import alternate, evaluator_command, print_ratio  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--logits-dir", required=True)
    p.add_argument("--resamples", type=int, default=1000)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("extra", nargs="*", help="more evaluator options (after --)")
    args = p.parse_args()
    base = evaluator_command(args.logits_dir, tempfile.mkdtemp(prefix="bench_boot_"))
    base += args.extra
    commands = {"plain": base, "bootstrap": [*base, "--bootstrap", str(args.resamples)]}
    print_ratio(alternate(commands, args.repeats), "plain", "bootstrap")


if __name__ == "__main__":
    main()
