"""Time the offline evaluator on ImageNet-shaped cached logits.

Makes synthetic logits shaped like an ImageNet experiment (1000 classes, 2 members, held-out
10k, test 20k, two OOD sets of 10k and 6k) in the cached-logits layout, then times
``scripts/evaluate_logits.py`` (loading, fitting and every metric, files written, no plots)
for the single + ensemble + window policies with one score, then the fitting alone of the
window (with and without a guarantee) and of budget_window on the 10k held-out split. Prints
the figures; nothing is asserted.

    python benchmarks/eval/benchmark_eval.py [--repeats 5] [--dir /tmp/bench_logits]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

import torch

from window_cascades.artifacts.cached_logits import save_cached_logits
from window_cascades.artifacts.experiment_logits import load_experiment
from window_cascades.artifacts.member_meta import save_member_meta
from window_cascades.cascade.offline import prepare_experiment
from window_cascades.cascade.policy_registry import FitInputs, PolicySettings, fit_policies
from window_cascades.commands.offline import main as evaluate_main

SIZES = {"heldout": 10_000, "test": 20_000, "ood_a": 10_000, "ood_b": 6_000}
CLASSES = 1000


def make_logits(directory: Path, seed: int = 0) -> None:
    """Two members sharing a class signal (about 75% top-1) with their own noise."""
    gen = torch.Generator().manual_seed(seed)
    for name, n in SIZES.items():
        ood = name.startswith("ood")
        targets = torch.full((n,), -1) if ood else torch.randint(CLASSES, (n,), generator=gen)
        shared = torch.randn(n, CLASSES, generator=gen)
        if not ood:
            strength = 3.0 + 2.0 * torch.rand(n, generator=gen)
            shared[torch.arange(n), targets] += strength
        for m in ("m0", "m1"):
            logits = 2.0 * (shared + 0.7 * torch.randn(n, CLASSES, generator=gen))
            save_cached_logits(directory, m, name, logits, targets)
    for m in ("m0", "m1"):
        save_member_meta(
            directory,
            m,
            {"model_name": "synthetic", "macs": 1, "params": 1, "num_classes": CLASSES},
        )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--dir", default=None, help="where the synthetic logits go (default: temp)")
    p.add_argument("--score", default="msp")
    args = p.parse_args()
    directory = Path(args.dir or tempfile.mkdtemp(prefix="bench_logits_"))
    if not (directory / "m1" / "ood_b.safetensors").exists():
        t = time.perf_counter()
        make_logits(directory)
        print(f"made logits in {time.perf_counter() - t:.1f} s under {directory}")
    out = directory.with_name(directory.name + "_results")  # outside --logits-dir (refused)
    cli = [
        "--logits-dir",
        str(directory),
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
        "--score",
        args.score,
        "--target",
        "cov@5",
        "--policies",
        "single,ensemble,window",
        "--out",
        str(out),
        "--quiet",
        "--overwrite",
        "--no-plots",
    ]
    times = []
    for _ in range(args.repeats):
        t = time.perf_counter()
        assert evaluate_main(cli) == 0
        times.append(time.perf_counter() - t)
    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
        f"torch {torch.__version__}, threads {torch.get_num_threads()}"
    )
    print(
        f"evaluate_logits (single+ensemble+window, {args.score}), {args.repeats} runs: "
        f"median {statistics.median(times):.2f} s, min {min(times):.2f} s, "
        f"max {max(times):.2f} s"
    )
    print_fit_times(directory, args.score, args.repeats)


def print_fit_times(directory: Path, score: str, repeats: int) -> None:
    """Median time of fitting the policies alone on the 10k held-out split (logits loaded)."""
    roles = {"heldout": "heldout", "test": "id"}
    data, macs = load_experiment(directory, ["m0", "m1"], roles)
    prepared = prepare_experiment(data, roles, macs, score)
    final = prepared.prefix_outputs["heldout"][-1]
    inputs = FitInputs(
        prepared.heldout_confidence,
        prepared.heldout_correct,
        None,
        "heldout",
        final.confidence,
        final.correct,
        macs,
    )
    for label, names, settings in (
        ("window", ["window"], PolicySettings()),
        ("window with --guarantee 0.1 (ltt)", ["window"], PolicySettings(guarantee=0.1)),
        (
            "window with --guarantee 0.1 (sgr)",
            ["window"],
            PolicySettings(guarantee=0.1, guarantee_method="sgr"),
        ),
        ("budget_window, budget 1.2, grid 200", ["budget_window"], PolicySettings(budget=1.2)),
    ):
        times = []
        for _ in range(repeats):
            t = time.perf_counter()
            fit_policies(names, inputs, settings)
            times.append(time.perf_counter() - t)
        print(f"fit {label}: median {statistics.median(times):.3f} s over {repeats} runs")


if __name__ == "__main__":
    main()
