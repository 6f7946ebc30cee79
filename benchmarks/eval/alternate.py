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
import shlex
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from process_timing import alternate, evaluator_command, print_ratio  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--logits-dir", required=True)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--a", default="", help="options of command A (one string)")
    p.add_argument("--b", default="", help="options of command B (one string)")
    args = p.parse_args()
    base = evaluator_command(args.logits_dir, tempfile.mkdtemp(prefix="bench_alt_"))
    commands = {"A": [*base, *shlex.split(args.a)], "B": [*base, *shlex.split(args.b)]}
    print_ratio(alternate(commands, args.repeats), "A", "B")


if __name__ == "__main__":
    main()
