"""Time fitting every training-split statistic the built-in feature scores read, and one KNN
search, on synthetic features of ImageNet's shape (what a user waits for the first time
``evaluate-logits --scores ...`` meets a member's training features).

    OMP_NUM_THREADS=2 python benchmarks/scores/fit_speed.py [--rows 50000] [--dim 2048] \
        [--classes 1000] [--queries 10000] [--bank 50000] [--knn-dim 512] [--repeats 1]

Features: seeded post-ReLU-like values stored in float16 (as ``features_dtype: float16``
caches them), class-clustered so the covariances are those of real features. Prints one line
per statistic (seconds) and the total; then the KNN search of ``--queries`` rows against a
``--bank``-row bank at k = 50 (no N x M matrix is held). Statistics fitted: those of
``statistics_for`` over every registered score, ReAct's percentiles at its whole grid.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time

import torch

from window_cascades.uncertainty.feature_scores import LinearHead
from window_cascades.uncertainty.feature_statistics import TrainInputs, fit_statistics
from window_cascades.uncertainty.knn import kth_neighbour_similarity, unit_rows
from window_cascades.uncertainty.score_registry import score_entry, score_names, statistics_for


def synthetic_train(rows: int, dim: int, classes: int, seed: int = 0) -> TrainInputs:
    g = torch.Generator().manual_seed(seed)
    centres = torch.randn(classes, dim, generator=g)
    targets = torch.randint(classes, (rows,), generator=g)
    features = torch.empty(rows, dim, dtype=torch.float16)
    for start in range(0, rows, 8192):
        y = targets[start : start + 8192]
        block = centres[y] + torch.randn(y.shape[0], dim, generator=g)
        features[start : start + 8192] = torch.relu(block).half()
    head = LinearHead(torch.randn(classes, dim, generator=g) * dim**-0.5, torch.zeros(classes))
    return TrainInputs(features, targets, head, classes)


def time_statistics(train: TrainInputs) -> tuple[dict[str, float], float]:
    from window_cascades.uncertainty.score_registry import statistic_entry

    names = statistics_for(list(score_names()))
    values = {"activations": tuple(score_entry("react").parameter("p").grid)}
    fitted: dict = {}
    seconds: dict[str, float] = {}
    start = time.perf_counter()
    for name in names:  # each after those it requires (statistics_for's order)
        began = time.perf_counter()
        fitted = fit_statistics([name], train, values, fitted)
        seconds[name] = time.perf_counter() - began
        assert statistic_entry(name).name in fitted
    return seconds, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=50_000)
    parser.add_argument("--dim", type=int, default=2048)
    parser.add_argument("--classes", type=int, default=1000)
    parser.add_argument("--queries", type=int, default=10_000)
    parser.add_argument("--bank", type=int, default=50_000)
    parser.add_argument("--knn-dim", type=int, default=512)
    parser.add_argument("--repeats", type=int, default=1)
    args = parser.parse_args()
    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cpus, "
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, "
        f"load average {os.getloadavg()[0]:.2f}"
    )
    train = synthetic_train(args.rows, args.dim, args.classes)
    totals = []
    for repeat in range(args.repeats):
        seconds, total = time_statistics(train)
        totals.append(total)
        parts = ", ".join(f"{n} {s:.1f} s" for n, s in seconds.items())
        print(f"fit {args.rows} x {args.dim} (C={args.classes}) run {repeat + 1}: {parts}")
        print(f"  total {total:.1f} s (load average {os.getloadavg()[0]:.2f})")
    print(f"statistics fit, median of {len(totals)}: {statistics.median(totals):.1f} s")
    g = torch.Generator().manual_seed(1)
    bank = unit_rows(torch.relu(torch.randn(args.bank, args.knn_dim, generator=g)))
    queries = torch.relu(torch.randn(args.queries, args.knn_dim, generator=g))
    began = time.perf_counter()
    kth_neighbour_similarity(queries, bank, 50)
    print(
        f"knn k=50: {args.queries} queries x {args.bank} bank x {args.knn_dim}: "
        f"{time.perf_counter() - began:.1f} s (load average {os.getloadavg()[0]:.2f})"
    )


if __name__ == "__main__":
    main()
