"""Peak memory of the offline evaluator against the size of the logits it reads.

Generates float16 cached logits of M members on five datasets (held-out, ID test, two shifted
sets, one OOD set; ImageNet-shaped by default: 270,000 samples x 1,000 classes in all) in a
temporary folder (deleted afterwards), then runs ``scripts/evaluate_logits.py`` on them as a
subprocess, once per ``--bootstrap`` value, and prints per run: the peak resident memory of
that process (``ru_maxrss`` from ``os.wait4``, the kernel's high-water mark), the peak divided
by the logits' size on disk, and the wall time.

    python benchmarks/memory/offline_peak_rss.py                      # full size, no bootstrap
    python benchmarks/memory/offline_peak_rss.py --scale 0.25 --bootstrap 0 1000
    python benchmarks/memory/offline_peak_rss.py --repo /tmp/older-checkout   # another version

The logits are synthetic (a class signal plus noise, so members agree on most samples as
trained members do); memory depends on the shapes, not on the values.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
from safetensors.torch import save_file

ROOT = Path(__file__).resolve().parents[2]
# dataset -> (role, share of the samples)
DATASETS = {
    "heldout": ("heldout", 50 / 270),
    "test": ("id", 50 / 270),
    "shift_a": ("shift", 50 / 270),
    "shift_b": ("shift", 50 / 270),
    "ood": ("ood", 70 / 270),
}
ROWS = 10_000  # generated at a time


def write_logits(folder: Path, members: int, samples: int, classes: int, seed: int) -> int:
    """Write the members' float16 logits and meta.json; return the logits' bytes on disk."""
    gen = torch.Generator().manual_seed(seed)
    sizes = {name: max(1, round(samples * share)) for name, (_, share) in DATASETS.items()}
    targets = {
        name: torch.randint(classes, (n,), generator=gen)
        if DATASETS[name][0] != "ood"
        else torch.full((n,), -1, dtype=torch.long)
        for name, n in sizes.items()
    }
    total = 0
    for m in range(members):
        member = folder / f"m{m}"
        member.mkdir(parents=True)
        for name, n in sizes.items():
            logits = torch.empty(n, classes, dtype=torch.float16)
            for a in range(0, n, ROWS):
                b = min(n, a + ROWS)
                block = torch.randn(b - a, classes, generator=gen) * 1.5
                y = targets[name][a:b]
                hit = (y >= 0) & (torch.rand(b - a, generator=gen) < 0.8)
                block[hit.nonzero().squeeze(1), y[hit]] += 6.0
                logits[a:b] = block.half()
            path = member / f"{name}.safetensors"
            save_file({"logits": logits, "targets": targets[name]}, str(path))
            total += path.stat().st_size
            del logits
        meta = {
            "model_name": "synthetic",
            "macs": 1e9 * (m + 1),
            "params": 1000,
            "num_classes": classes,
        }
        (member / "meta.json").write_text(json.dumps(meta))
    return total


def run_evaluator(repo: Path, logits: Path, out: Path, members: int, bootstrap: int):
    """Run the offline evaluator of ``repo``; return (peak RSS bytes, wall seconds, status)."""
    shifts = [n for n, (role, _) in DATASETS.items() if role == "shift"]
    command = [
        sys.executable,
        str(repo / "scripts" / "evaluate_logits.py"),
        "--logits-dir",
        str(logits),
        "--members",
        *[f"m{m}" for m in range(members)],
        "--heldout",
        "heldout",
        "--id",
        "test",
        "--shift",
        *shifts,
        "--ood",
        "ood",
        "--out",
        str(out),
        "--quiet",
        "--bootstrap",
        str(bootstrap),
    ]
    env = {**os.environ, "PYTHONPATH": str(repo)}
    start = time.perf_counter()
    proc = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    return usage.ru_maxrss * 1024, wall, os.waitstatus_to_exitcode(status)


def import_baseline(repo: Path) -> int:
    """Peak RSS of a process that only imports what the evaluator imports (bytes)."""
    code = "import torch, matplotlib.pyplot, window_cascades.commands.offline"
    proc = subprocess.Popen(
        [sys.executable, "-c", code], env={**os.environ, "PYTHONPATH": str(repo)}
    )
    _, _, usage = os.wait4(proc.pid, 0)
    return usage.ru_maxrss * 1024


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--members", type=int, default=2)
    p.add_argument("--samples", type=int, default=270_000, help="over all datasets")
    p.add_argument("--classes", type=int, default=1000)
    p.add_argument("--scale", type=float, default=1.0, help="multiplies --samples")
    p.add_argument("--bootstrap", type=int, nargs="+", default=[0], help="one run per value")
    p.add_argument("--repo", type=Path, default=ROOT, help="the checkout whose evaluator runs")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    samples = round(args.samples * args.scale)
    with tempfile.TemporaryDirectory(prefix="offline-rss-") as tmp:
        tmp = Path(tmp)
        start = time.perf_counter()
        size = write_logits(tmp / "logits", args.members, samples, args.classes, args.seed)
        print(
            f"logits: {args.members} members x {samples:,} samples x {args.classes} classes, "
            f"float16, {size / 1e9:.3f} GB on disk (written in "
            f"{time.perf_counter() - start:.0f} s)"
        )
        print(f"evaluator: {args.repo}")
        print(f"import-only process: {import_baseline(args.repo) / 1e9:.3f} GB peak RSS")
        print(f"{'bootstrap':>9} {'peak RSS GB':>12} {'peak / logits':>14} {'wall s':>8} status")
        for b in args.bootstrap:
            peak, wall, status = run_evaluator(
                args.repo, tmp / "logits", tmp / f"out{b}", args.members, b
            )
            print(f"{b:>9} {peak / 1e9:>12.3f} {peak / size:>14.2f} {wall:>8.1f} {status}")
            sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
