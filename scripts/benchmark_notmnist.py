"""The real-data benchmark: window cascades vs scaling a single model, on notMNIST.

    python scripts/benchmark_notmnist.py                 # the whole benchmark (BENCHMARK.md)
    python scripts/benchmark_notmnist.py --smoke --out /tmp/smoke --work /tmp/smoke_work

For every model size and seed it trains a member through LightningCLI ``fit`` (skipped when
its ``last.ckpt`` exists), caches its logits on every dataset (skipped when cached from the
same checkpoint), evaluates every policy offline per size (single, ensemble,
single-threshold, window for cov@1 / cov@2 / risk@90 with MSP and fpr@95 with energy,
window_adjusted, random), measures latency and throughput of single model, full ensemble and
window cascade with real early exit, and writes ``metrics.csv`` (tidy, with a ``model``
column), ``timing.csv``, ``summary.json`` and the plots into ``--out``.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import torch
import yaml

from artifacts.atomic import write_csv, write_json, write_text
from artifacts.cached_logits import file_sha256
from artifacts.experiment_logits import load_experiment
from artifacts.results import metrics_csv_text
from artifacts.tradeoff_plots import exit_fraction_plot, tradeoff_plot
from cascade.evaluation import ROW_FIELDS
from cascade.metric_registry import MetricSettings
from cascade.offline import evaluate_policies, prepare_experiment
from cascade.policies import ensemble_policy, single_policy
from cascade.policy_registry import PolicySettings
from cascade.roles import DatasetRoles
from cascade.timing import measure
from lightning_modules.member import load_member
from lightning_modules.stages import cache_logits, fit_member
from uncertainty.selective import UnreachableTargetError

SIZES = ["resnet10t", "resnet18", "resnet34", "resnet101"]
WIDTH = 0.1
MSP_TARGETS = ["cov@1", "cov@2", "risk@90"]
RISKS, COVERAGES = (0.01, 0.02, 0.05), (0.8, 0.9, 0.95)
CONFIG = Path("configs/notmnist")


def log(msg: str) -> None:
    print(f"[benchmark {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def smoke_data_config(work: Path, base: Path) -> Path:
    """The data config shrunk for the smoke test: a few shift and OOD sets (and every set read
    from disk), small."""
    cfg = yaml.safe_load(base.read_text())
    args = cfg["init_args"]
    keep = {"notmnist_heldout", "notmnist_test", "gaussian_noise_s3", "contrast_s2", "digits"}
    args["datasets"] = [
        d for d in args["datasets"] if d["name"] in keep or d.get("source") == "path"
    ]
    for d in args["datasets"]:
        if d["role"] == "ood":
            d["size"] = 300
    args["train_limit"] = 600
    path = work / "data_smoke.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def train_and_cache(args, data_cfg: Path, work: Path) -> dict[str, list[str]]:
    """Train (or reuse) every member and cache its logits; returns size -> member names.

    The time left is estimated from the time spent so far per MAC of the members done
    (training and caching cost grows with a member's MACs).
    """
    import timm

    from lightning_modules.complexity import count_macs_params

    weight = {
        size: count_macs_params(timm.create_model(size, num_classes=10, in_chans=1), (1, 32, 32))[0]
        for size in args.sizes
    }
    jobs = [(size, seed) for size in args.sizes for seed in args.seeds]
    start, done_weight = time.time(), 0.0
    members: dict[str, list[str]] = {}
    for i, (size, seed) in enumerate(jobs):
        name = f"{size}_s{seed}"
        members.setdefault(size, []).append(name)
        member_dir = work / "members" / name
        ckpt = member_dir / "checkpoints" / "last.ckpt"
        left = sum(weight[s] for s, _ in jobs[i:])
        eta = ""
        if done_weight:
            eta = f", about {(time.time() - start) / done_weight * left / 60:.0f} min left"
        if ckpt.is_file():
            log(f"member {i + 1}/{len(jobs)} {name}: cached checkpoint, not retrained")
        else:
            log(f"member {i + 1}/{len(jobs)} {name}: training{eta}")
            t = time.time()
            fit_member(
                CONFIG / "member.yaml", seed, member_dir, data_cfg,
                overrides=[f"--model.model_name={size}", f"--trainer.max_epochs={args.epochs}",
                           "--trainer.enable_model_summary=false"],
            )  # fmt: skip
            log(f"member {name} trained in {(time.time() - t) / 60:.1f} min")
            done_weight += weight[size]
        meta = work / "logits" / name / "meta.json"
        if meta.is_file() and json.loads(meta.read_text()).get("checkpoint_sha256") == file_sha256(
            ckpt
        ):
            continue
        log(f"caching logits of {name}")
        cache_logits(
            CONFIG / "member.yaml", ckpt, work / "logits", name, data_cfg,
            overrides=[f"--model.model_name={size}"],
        )  # fmt: skip
    return members


def evaluate(members: dict[str, list[str]], roles: dict[str, str], work: Path):
    """Every policy for every size, offline on the cached logits.

    Returns:
        (rows with a ``model`` column, size -> the cov@2 window policy, size -> member MACs).
    """
    metric_settings = MetricSettings(RISKS, COVERAGES)
    rows, windows, macs_of = [], {}, {}
    for size, names in members.items():
        data, macs = load_experiment(work / "logits", names, roles)
        macs_of[size] = macs
        msp = prepare_experiment(data, roles, macs, "msp")
        part, _ = evaluate_policies(
            msp, ["single", "ensemble", "single_threshold", "random"],
            PolicySettings(width=WIDTH), metric_settings,
        )  # fmt: skip
        for target in MSP_TARGETS:
            try:
                more, fitted = evaluate_policies(
                    msp, ["window", "window_adjusted"], PolicySettings(target, WIDTH),
                    metric_settings,
                )  # fmt: skip
            except UnreachableTargetError as err:
                log(f"{size}: window[{target}] skipped: {err}")
                continue
            part += more
            windows[size] = fitted["window"] if target == "cov@2" else windows.get(size)
        energy = prepare_experiment(data, roles, macs, "energy")
        more, _ = evaluate_policies(
            energy, ["single", "ensemble", "window"], PolicySettings("fpr@95", WIDTH),
            metric_settings,
        )  # fmt: skip
        part += more
        rows += [{"model": size, **r} for r in part]
    return rows, windows, macs_of


def timing(members, windows, id_images: torch.Tensor, work: Path, args) -> list[dict]:
    """Latency (batch 1) and throughput (batch 256) of single, ensemble and window cascade."""
    out = []
    for size, names in members.items():
        nets = [
            load_member(work / "members" / n / "checkpoints" / "last.ckpt").model for n in names
        ]
        policies = {"single": single_policy(len(nets)), "ensemble": ensemble_policy(len(nets))}
        if windows.get(size) is not None:
            policies["window[cov@2]"] = windows[size]
        for label, policy in policies.items():
            t = measure(nets, policy, "msp", id_images, args.latency_samples, 20, 256, args.device)
            out.append(
                {
                    "model": size, "policy": label, "device": args.device_name,
                    "latency_median_ms": round(t.latency_median * 1e3, 4),
                    "latency_p90_ms": round(t.latency_p90 * 1e3, 4),
                    "throughput_img_s": round(t.throughput, 1),
                }
            )  # fmt: skip
            log(
                f"timing {size} {label}: {t.latency_median * 1e3:.2f} ms median, "
                f"{t.throughput:.0f} img/s"
            )
    return out


def id_images(data_cfg: Path, roles: dict[str, str]) -> torch.Tensor:
    """The normalised ID test images, as the members see them."""
    from datamodules.idx_images import IDXDataModule

    dm = IDXDataModule(**yaml.safe_load(data_cfg.read_text())["init_args"])
    dm.setup()
    ds = dm.eval_sets[roles.id]
    return torch.stack([ds[i][0] for i in range(len(ds))])


def check(rows: list[dict], members) -> list[str]:
    """The protocol's checks, as lines of text (PASS/FAIL)."""
    lines = []
    for size in members:

        def val(policy, metric, dataset="notmnist_test", setting=None, size=size):
            for r in rows:
                if (
                    (r["model"], r["policy"], r["metric"], r["dataset"], r["score"])
                    == (size, policy, metric, dataset, "msp")
                    and (setting is None or r["setting"] == setting)
                ):  # fmt: skip
                    return r["value"]
            return None

        single = val("single", "expected_macs")
        for target in MSP_TARGETS:
            window = val("window", "expected_macs", setting=f"{target},w={WIDTH:g}")
            if window is None:
                lines.append(f"SKIP {size} window[{target}]: target unreachable on held-out")
                continue
            cost = window / single
            ok = abs(cost - (1 + 2 * WIDTH)) <= 0.03
            lines.append(
                f"{'PASS' if ok else 'FAIL'} {size} window[{target}] ID cost {cost:.3f} "
                f"(1 + 2w = {1 + 2 * WIDTH:.2f} +- 0.03)"
            )
        s, e = val("single", "aurc", setting=""), val("ensemble", "aurc", setting="")
        lines.append(f"{'PASS' if e < s else 'FAIL'} {size} ensemble AURC {e:.4f} < single {s:.4f}")
    return lines


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--sizes", nargs="+", default=SIZES)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    p.add_argument("--epochs", type=int, default=None, help="default: the member config's")
    p.add_argument(
        "--out",
        type=Path,
        default=Path("outputs/notmnist_benchmark"),
        help="results folder (the published results are benchmarks/notmnist/)",
    )
    p.add_argument("--work", type=Path, default=Path("outputs/notmnist"))
    p.add_argument("--smoke", action="store_true", help="2 sizes, 1 epoch, tiny splits")
    p.add_argument("--skip-timing", action="store_true")
    p.add_argument("--latency-samples", type=int, default=200)
    p.add_argument("--device", default="cpu")
    p.add_argument(
        "--data-config",
        type=Path,
        default=CONFIG / "data.yaml",
        help="IDXDataModule config (e.g. with an extra MNIST OOD set read from IDX files)",
    )
    args = p.parse_args(argv)
    if not Path("../shared/data/notmnist").is_dir():
        raise FileNotFoundError(
            "notMNIST not found at ../shared/data/notmnist: run from the repository root"
        )
    if args.epochs is None:
        args.epochs = yaml.safe_load((CONFIG / "member.yaml").read_text())["trainer"]["max_epochs"]
    args.work.mkdir(parents=True, exist_ok=True)
    args.out.mkdir(parents=True, exist_ok=True)
    data_cfg = args.data_config
    if args.smoke:
        args.sizes, args.epochs, args.latency_samples = args.sizes[:2], 1, 20
        data_cfg = smoke_data_config(args.work, data_cfg)
    args.device_name = (
        torch.cuda.get_device_name() if args.device.startswith("cuda") else
        f"{platform.machine()} CPU x{torch.get_num_threads()} threads"
    )  # fmt: skip
    start = time.time()
    members = train_and_cache(args, data_cfg, args.work)
    train_s = time.time() - start
    from datamodules.specs import parse_dataset_specs

    specs = parse_dataset_specs(yaml.safe_load(data_cfg.read_text())["init_args"]["datasets"])
    roles = DatasetRoles({s.name: s.role for s in specs})
    t = time.time()
    rows, windows, macs = evaluate(members, roles, args.work)
    eval_s = time.time() - t
    write_text(args.out / "metrics.csv", metrics_csv_text(rows, ("model", *ROW_FIELDS)))
    ood, id_name = roles.ood, roles.id
    sizes = list(members)
    for metric, datasets, target, score, ylabel in (
        ("cov@2", [id_name], "cov@2", "msp", "coverage at 2% risk (ID)"),
        ("risk@90", [id_name], "risk@90", "msp", "selective risk at 90% coverage (ID)"),
        ("fpr@95", ood, "fpr@95", "energy", "FPR@95 (mean over OOD sets)"),
    ):
        families = {
            "single model": ("single", "", score),
            "ensemble (M=2)": ("ensemble", "", score),
            f"window cascade [{target}]": ("window", f"{target},w={WIDTH:g}", score),
        }
        if score == "msp":
            families["single-threshold cascade"] = ("single_threshold", "pass=0.2", "msp")
        path = args.out / f"macs_vs_{metric.replace('@', '')}.png"
        tradeoff_plot(rows, sizes, metric, datasets, id_name, families, path, ylabel)
    exit_fraction_plot(rows, sizes, "window", f"cov@2,w={WIDTH:g}", args.out / "exit_fractions.png")
    timings = []
    if not args.skip_timing:
        timings = timing(members, windows, id_images(data_cfg, roles), args.work, args)
        write_csv(args.out / f"timing_{args.device.split(':')[0]}.csv", timings)
    summary = {
        "sizes": sizes, "seeds": args.seeds, "epochs": args.epochs, "width": WIDTH,
        "macs": macs, "windows_cov2": {k: w.to_dict() for k, w in windows.items() if w},
        # this run only: training is skipped for cached members, timing with --skip-timing
        "this_run": {
            "train_and_cache_s": round(train_s, 1), "evaluate_s": round(eval_s, 2),
            "timing_file": f"timing_{args.device.split(':')[0]}.csv" if timings else None,
            "machine": args.device_name,
        },
    }  # fmt: skip
    write_json(args.out / "summary.json", summary)
    lines = check(rows, members)
    print("\n".join(lines))
    log(
        f"done in {(time.time() - start) / 60:.1f} min (train+cache {train_s / 60:.1f} min, "
        f"evaluation {eval_s:.1f} s); results in {args.out}/"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
