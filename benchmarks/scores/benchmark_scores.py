"""Every confidence score on notMNIST members: single model, ensemble and window cascade at
FPR@95 and AUROC with bootstrap intervals, the window's cost, and the score to pick.

    python benchmarks/scores/benchmark_scores.py --data data/notmnist \
        [--model resnet10t] [--seeds 0 1] [--epochs 8] [--bootstrap 200] \
        [--work outputs/scores] [--out benchmarks/scores/notmnist]

It trains one member per seed with the notMNIST recipe (``configs/notmnist/member.yaml``;
skipped when its ``last.ckpt`` exists), caches its logits and penultimate features on the
training split (role ``train``, unaugmented), the held-out split, the test split, two
corrupted test sets and the two OOD sets (skipped when cached from the same checkpoint), then
runs ``window-cascades evaluate-logits --scores <every registered score> --target fpr@95
--policies single,ensemble,window`` once on the cached folder (the parameters of each score
chosen by the default rule on the held-out split, the statistics fitted once on the training
split) and writes ``metrics.csv``, ``summary.json`` and ``report.md`` of that run plus
``table.md`` (per score and OOD set: FPR@95 and AUROC with 95% intervals for single,
ensemble and window, the window's cost) into ``--out``.
"""

from __future__ import annotations

import argparse
import csv
import subprocess
import sys
import time
from pathlib import Path

import yaml

from window_cascades.artifacts.atomic import write_text
from window_cascades.commands.pipeline_steps import cache_logits, fit_member
from window_cascades.uncertainty.score_registry import score_names

CONFIG = Path("configs/notmnist")
KEEP = ("notmnist_heldout", "notmnist_test", "gaussian_noise_s3", "contrast_s3")
KEEP += ("digits", "uniform_noise")
OOD = ("digits", "uniform_noise")
ID = "notmnist_test"
METRICS = ("fpr@95", "auroc", "expected_macs")
POLICIES = ("single", "ensemble", "window")


def log(msg: str) -> None:
    print(f"[scores {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def data_config(data: Path, work: Path) -> Path:
    """configs/notmnist/data.yaml reading ``data``, with the datasets of ``KEEP`` and the
    training split as a dataset of role ``train``."""
    cfg = yaml.safe_load((CONFIG / "data.yaml").read_text())
    init = cfg["init_args"]
    init["images"] = str(data / "t10k-images-idx3-ubyte.gz")
    init["labels"] = str(data / "t10k-labels-idx1-ubyte.gz")
    init["datasets"] = [d for d in init["datasets"] if d["name"] in KEEP]
    init["datasets"].append({"name": "notmnist_train", "role": "train", "source": "train"})
    path = work / "data_scores.yaml"
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return path


def train_and_cache(args, data_cfg: Path) -> list[str]:
    names = []
    for seed in args.seeds:
        name = f"{args.model}_s{seed}"
        names.append(name)
        member_dir = args.work / "members" / name
        ckpt = member_dir / "checkpoints" / "last.ckpt"
        model = [f"--model.model_name={args.model}"]
        if not ckpt.is_file():
            log(f"training {name}")
            epochs = [f"--trainer.max_epochs={args.epochs}", "--trainer.enable_model_summary=false"]
            fit_member(CONFIG / "member.yaml", seed, member_dir, data_cfg, overrides=model + epochs)
        if not (args.work / "logits" / name / "features").is_dir():
            log(f"caching logits and features of {name}")
            features = ["--cache.features=true"]
            cache_logits(CONFIG / "member.yaml", ckpt, args.work / "logits", name, data_cfg,
                         overrides=model + features)  # fmt: skip
    return names


def interval(rows: dict, key: tuple) -> str:
    value, low, high = rows[key]
    return f"{value:.3f} [{low:.3f}, {high:.3f}]" if low != "" else f"{value:.3f}"


def table(metrics: Path) -> str:
    """Markdown: per OOD set, one row per score."""
    rows: dict = {}
    scores: list[str] = []
    with metrics.open() as f:
        for r in csv.DictReader(f):
            wanted = r["dataset"] in (*OOD, ID) and r["metric"] in METRICS
            if wanted and r["policy"] in POLICIES:
                low = float(r["ci_low"]) if r["ci_low"] else ""
                high = float(r["ci_high"]) if r["ci_high"] else ""
                rows[(r["dataset"], r["score"], r["policy"], r["metric"])] = (
                    float(r["value"]), low, high
                )  # fmt: skip
                if r["score"] not in scores:
                    scores.append(r["score"])
    out = []
    for dataset in OOD:
        out += [f"### {dataset}", ""]
        head = [f"{p} {m}" for m in ("FPR@95", "AUROC") for p in POLICIES]
        head += ["window cost, ID test", f"window cost, {dataset}"]
        out += ["| score | " + " | ".join(head) + " |", "|---" * (len(head) + 1) + "|"]
        for score in scores:
            cells = [
                interval(rows, (dataset, score, p, m))
                for m in ("fpr@95", "auroc")
                for p in POLICIES
            ]
            for where in (ID, dataset):
                unit = rows[(where, score, "single", "expected_macs")][0]
                cells.append(f"{rows[(where, score, 'window', 'expected_macs')][0] / unit:.3f}")
            out.append(f"| {score} | " + " | ".join(cells) + " |")
        best = min(scores, key=lambda s: rows[(dataset, s, "window", "fpr@95")][0])
        fpr = rows[(dataset, best, "window", "fpr@95")][0]
        msp = rows[(dataset, "msp", "window", "fpr@95")][0]
        out += ["", f"Lowest window FPR@95 on {dataset}: {best} ({fpr:.3f}; msp {msp:.3f}).", ""]
    out.append("Cost: expected MACs per sample in units of the first member's.")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", type=Path, required=True, help="folder of notMNIST's IDX files")
    p.add_argument("--model", default="resnet10t")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    p.add_argument("--epochs", type=int, default=8)
    p.add_argument("--bootstrap", type=int, default=200)
    p.add_argument("--work", type=Path, default=Path("outputs/scores"))
    p.add_argument("--out", type=Path, default=Path("benchmarks/scores/notmnist"))
    args = p.parse_args(argv)
    if not (args.data / "t10k-images-idx3-ubyte.gz").is_file():
        p.error(f"--data {args.data}: no t10k-images-idx3-ubyte.gz there")
    args.work.mkdir(parents=True, exist_ok=True)
    start = time.time()
    members = train_and_cache(args, data_config(args.data, args.work))
    log(f"members ready in {(time.time() - start) / 60:.1f} min")
    run = args.work / "evaluation"
    command = [
        sys.executable, "-m", "window_cascades", "evaluate-logits",
        "--logits-dir", str(args.work / "logits"), "--members", *members,
        "--heldout", "notmnist_heldout", "--id", "notmnist_test",
        "--shift", "gaussian_noise_s3", "contrast_s3", "--ood", *OOD,
        "--train", "notmnist_train", "--scores", ",".join(score_names()),
        "--target", "fpr@95", "--policies", ",".join(POLICIES),
        "--bootstrap", str(args.bootstrap), "--out", str(run), "--overwrite",
    ]  # fmt: skip
    log(" ".join(command))
    t = time.time()
    subprocess.run(command, check=True)
    log(f"evaluated in {(time.time() - t) / 60:.1f} min")
    args.out.mkdir(parents=True, exist_ok=True)
    for name in ("metrics.csv", "summary.json", "report.md"):
        write_text(args.out / name, (run / name).read_text())
    write_text(args.out / "table.md", table(run / "metrics.csv"))
    log(f"written to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
