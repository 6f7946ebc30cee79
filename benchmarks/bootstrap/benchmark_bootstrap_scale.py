"""How the bootstrap scales in the number of samples: time and peak memory of ``Bootstrap``
on synthetic per-sample outputs of one policy (a labelled ID set and one OOD set of
``--samples`` samples each), as the offline evaluator and the cache-backed evaluation call it.

Prints the resampling's wall and CPU seconds (the outputs' construction excluded) and the
process's peak RSS before and after it. Nothing is asserted.

    python benchmarks/bootstrap/benchmark_bootstrap_scale.py --samples 1000000 --resamples 1000
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import time
from types import SimpleNamespace

import torch

from window_cascades.cascade.bootstrap import Bootstrap
from window_cascades.cascade.metric_registry import MetricInputs, MetricSettings
from window_cascades.cascade.operating_point import fit_operating_point
from window_cascades.cascade.sample_outputs import SampleOutputs


def synthetic_outputs(n: int, labelled: bool, gen: torch.Generator) -> SampleOutputs:
    """Outputs of n samples over 10 classes, stages 1 or 2; a labelled sample's arg-max is
    right with probability its confidence (so the curve metrics are not degenerate)."""
    probs = torch.softmax(2 * torch.randn(n, 10, generator=gen), -1)
    confidence = probs.max(-1).values
    targets = torch.full((n,), -1)
    if labelled:
        right = torch.rand(n, generator=gen) < confidence
        targets = torch.where(right, probs.argmax(-1), torch.randint(10, (n,), generator=gen))
    stages = torch.randint(1, 3, (n,), generator=gen)
    return SampleOutputs.from_probs(probs, confidence, stages, targets)


def peak_rss_gib() -> float:
    """The process's peak resident memory so far (GiB; Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--samples", type=int, default=1_000_000, help="samples per set")
    p.add_argument("--resamples", type=int, default=1000)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    gen = torch.Generator().manual_seed(args.seed)
    ids = synthetic_outputs(args.samples, True, gen)
    ood = synthetic_outputs(args.samples, False, gen)
    point = fit_operating_point(ids, "cov@5", "standard")
    settings = MetricSettings(target="cov@5")
    before = peak_rss_gib()
    boot = Bootstrap(args.resamples, seed=args.seed)
    boot.add(
        SimpleNamespace(name="window", setting=""),
        "msp",
        {
            "test": ("id", MetricInputs(ids, ids, [1.0, 2.5], settings, point)),
            "ood": ("ood", MetricInputs(ood, ids, [1.0, 2.5], settings, point)),
        },
    )
    load_before = os.getloadavg()
    wall, cpu = time.perf_counter(), time.process_time()
    boot.run()
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs")
    print(f"load average (1, 5, 15 min) before {load_before}, after {os.getloadavg()}")
    print(
        f"{args.samples} ID (labelled) + {args.samples} OOD samples, one policy, "
        f"{args.resamples} resamples ({len(boot.values)} resampled values each): "
        f"{wall:.1f} s wall, {cpu:.1f} s CPU; peak RSS {peak_rss_gib():.2f} GiB "
        f"({before:.2f} GiB before the resampling)"
    )


if __name__ == "__main__":
    main()
