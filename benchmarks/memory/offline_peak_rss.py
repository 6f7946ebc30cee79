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
    # a million samples of 3 members from the outputs cache, logits kept for another run
    python benchmarks/memory/offline_peak_rss.py --members 3 --samples 1000000 \
        --bootstrap 1000 --outputs-cache --runs 2 --logits /tmp/million

With ``--outputs-cache`` the evaluator reads the outputs cache (``--outputs-cache``, in a
temporary folder); with ``--runs 2`` it runs twice per ``--bootstrap`` value: the first run
writes the cache from the logits, the second reads it. ``--logits DIR`` keeps the logits in DIR
(written when DIR does not exist, reused when it does) instead of a temporary folder.

The logits are synthetic (a class signal plus noise, so members agree on most samples as
trained members do); memory depends on the shapes, not on the values.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
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


def run_evaluator(
    repo: Path, logits: Path, out: Path, members: int, bootstrap: int, cache: Path | None = None
):
    """Run the offline evaluator of ``repo`` (from the outputs cache in ``cache`` when
    given); return (peak RSS bytes, wall seconds, CPU seconds, status)."""
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
        "--overwrite",
        "--bootstrap",
        str(bootstrap),
        *(("--outputs-cache", str(cache)) if cache is not None else ()),
    ]
    env = {**os.environ, "PYTHONPATH": str(repo)}
    start = time.perf_counter()
    proc = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    cpu = usage.ru_utime + usage.ru_stime
    return usage.ru_maxrss * 1024, wall, cpu, os.waitstatus_to_exitcode(status)


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
    p.add_argument("--outputs-cache", action="store_true", help="evaluate with --outputs-cache")
    p.add_argument("--runs", type=int, default=1, help="runs per --bootstrap value")
    p.add_argument("--logits", type=Path, default=None, help="keep the logits here (reused)")
    args = p.parse_args(argv)
    samples = round(args.samples * args.scale)
    with tempfile.TemporaryDirectory(prefix="offline-rss-") as tmp:
        tmp = Path(tmp)
        logits = args.logits or tmp / "logits"
        start = time.perf_counter()
        if logits.is_dir():
            print(f"logits: reused from {logits}")
        else:  # in a child process: the evaluators forked from this one would otherwise count
            # its generation buffers in their peak RSS (a forked child's RSS starts at its parent's)
            code = (
                "import sys; from pathlib import Path; sys.path.insert(0, sys.argv[1]); "
                "from offline_peak_rss import write_logits; "
                "write_logits(Path(sys.argv[2]), *map(int, sys.argv[3:]))"
            )
            subprocess.run(
                [
                    sys.executable,
                    "-c",
                    code,
                    str(Path(__file__).parent),
                    str(logits),
                    *map(str, (args.members, samples, args.classes, args.seed)),
                ],
                check=True,
            )
        files = sorted(logits.glob("m*/*.safetensors"))
        size = sum(f.stat().st_size for f in files)
        member = max(
            sum(f.stat().st_size for f in files if f.parent.name == f"m{m}")
            for m in range(args.members)
        )
        largest = max(f.stat().st_size for f in files)
        print(
            f"logits: {args.members} members x {samples:,} samples x {args.classes} classes, "
            f"float16, {size / 1e9:.3f} GB on disk (ready in {time.perf_counter() - start:.0f} "
            f"s); one member's logits {member / 1e9:.3f} GB, largest file {largest / 1e9:.3f} GB"
        )
        print(f"machine: {platform.machine()}, {os.cpu_count()} CPUs, load {os.getloadavg()}")
        print(f"evaluator: {args.repo}{' --outputs-cache' if args.outputs_cache else ''}")
        print(f"import-only process: {import_baseline(args.repo) / 1e9:.3f} GB peak RSS")
        print(
            f"{'bootstrap':>9} {'run':>3} {'peak RSS GB':>12} {'peak / logits':>14} "
            f"{'peak / member':>14} {'wall s':>8} {'cpu s':>8} status"
        )
        for b in args.bootstrap:
            cache = tmp / f"cache{b}" if args.outputs_cache else None
            for run in range(1, args.runs + 1):
                peak, wall, cpu, status = run_evaluator(
                    args.repo, logits, tmp / f"out{b}", args.members, b, cache
                )
                print(
                    f"{b:>9} {run:>3} {peak / 1e9:>12.3f} {peak / size:>14.2f} "
                    f"{peak / member:>14.2f} {wall:>8.1f} {cpu:>8.1f} {status}"
                )
                sys.stdout.flush()
    print(f"load after: {os.getloadavg()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
