"""The real-data benchmark: window cascades vs scaling a single model, on notMNIST.

    python benchmarks/notmnist/benchmark_notmnist.py   # the whole benchmark
    python benchmarks/notmnist/benchmark_notmnist.py --smoke --out /tmp/smoke --work /tmp/smoke_work

For every model size and seed it trains a member through LightningCLI ``fit`` (skipped when
its ``last.ckpt`` exists) and caches its logits on every dataset (skipped when cached from the
same checkpoint). It then evaluates offline every ordered pair of members of each size and
every growing pair (a smaller size's member followed by a larger one's, with per-member MACs)
under every policy (single, ensemble, single-threshold, random; window and window_adjusted for
cov@1 / cov@2 / risk@90 with MSP; budget_window at 1.1 / 1.2 / 1.3x for cov@2; the window with
a guaranteed cov@2 threshold; single, ensemble and window for fpr@95 with energy), with
bootstrap intervals on every row and paired differences against single and ensemble; measures
latency and throughput of single model, full ensemble and window cascade with real early exit
(the first two seeds of each size); and writes ``metrics.csv`` (tidy, with ``model`` and
``members`` columns; gzipped, as are the next), ``deltas.csv``, ``orders.csv`` (mean and
spread across member orders), ``significance.csv`` (significant differences per model),
``timing_<device>.csv``, ``summary.json``, the per-set summaries of every ID, shifted and OOD
set (``shift_summary.csv``, ``ood_summary.csv``, ``sets.md``: ``set_summaries.py``) and the
plots into ``--out``.

The data: notMNIST in MNIST's IDX format, the 10,000-glyph file pair
``t10k-images-idx3-ubyte.gz`` and ``t10k-labels-idx1-ubyte.gz``, in ``data/notmnist/`` under
the repository root (``configs/notmnist/data.yaml``), or in the folder ``--data-dir`` names
(docs/benchmarks/notmnist.md says where to download it).
"""

from __future__ import annotations

import argparse
import gzip
import json
import platform
import sys
import time
from pathlib import Path

import torch
import yaml
from cascade_grid import PlanEntry, evaluate_grid, growing_pairs, size_orders
from set_summaries import write as write_set_summaries
from tradeoff_plots import exit_fraction_plot, mean_with_interval, tradeoff_plot

from window_cascades.artifacts.atomic import write_csv, write_json, write_text, write_with
from window_cascades.artifacts.cached_logits import file_sha256
from window_cascades.artifacts.experiment_logits import member_macs
from window_cascades.artifacts.results import metrics_csv_text
from window_cascades.cascade.bootstrap import DELTA_FIELDS, Bootstrap
from window_cascades.cascade.evaluation import ROW_FIELDS
from window_cascades.cascade.metric_registry import MetricSettings, higher_is_better
from window_cascades.cascade.orders import ORDERS_FIELDS, order_label, spread_across_orders
from window_cascades.cascade.policies import ensemble_policy, single_policy
from window_cascades.cascade.policy_registry import PolicySettings
from window_cascades.cascade.timing import measure
from window_cascades.commands.console import add_console_options, apply_console_options
from window_cascades.commands.pipeline_steps import cache_logits, fit_member
from window_cascades.lightning_modules.member_checkpoint import load_member
from window_cascades.vocabulary.roles import DatasetRoles

SIZES = ["resnet10t", "resnet18", "resnet34", "resnet101"]
SEED_CAP = {"resnet101": 2}  # a third resnet101 (~9-14 min) does not fit the 90-minute budget
WIDTH = 0.1
BUDGETS = (1.1, 1.2, 1.3)
GUARANTEE = 0.1  # DELTA of the guaranteed cov@2 window
BOOTSTRAP = 200  # 1000 resamples: ~11 min of evaluation on 2 cores (BENCHMARKS.md)
MSP_TARGETS = ["cov@1", "cov@2", "risk@90"]
RISKS, COVERAGES = (0.01, 0.02, 0.05), (0.8, 0.9, 0.95)
CONFIG = Path("configs/notmnist")
NOTMNIST_FILES = ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")


def write_gzip(path: Path, text: str) -> None:
    """The big tables gzipped (pandas and csv readers take them as they are), atomically."""
    write_with(path, lambda tmp: tmp.write_bytes(gzip.compress(text.encode(), mtime=0)))


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


def data_config_in(data_dir: Path, base: Path, work: Path) -> Path:
    """A copy of the data config ``base`` (in ``work``) that reads notMNIST from
    ``data_dir``."""
    cfg = yaml.safe_load(base.read_text())
    images, labels = (str((data_dir / name).resolve()) for name in NOTMNIST_FILES)
    cfg["init_args"]["images"], cfg["init_args"]["labels"] = images, labels
    path = work / "data_notmnist.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def missing_data(data_cfg: Path) -> str | None:
    """What is missing of the notMNIST files the data config reads, or None."""
    args = yaml.safe_load(data_cfg.read_text())["init_args"]
    absent = [args[key] for key in ("images", "labels") if not Path(args[key]).is_file()]
    if not absent:
        return None
    return (
        f"notMNIST not found: {', '.join(absent)} (run from the repository root with the files "
        "in data/notmnist/, or give --data-dir; docs/benchmarks/notmnist.md says where to "
        "download them)"
    )


def train_and_cache(args, data_cfg: Path, work: Path) -> dict[str, list[str]]:
    """Train (or reuse) every member and cache its logits; returns size -> member names.

    The time left is estimated from the time spent so far per MAC of the members done
    (training and caching cost grows with a member's MACs).
    """
    import timm

    from window_cascades.lightning_modules.complexity import count_macs_params

    weight = {
        size: count_macs_params(timm.create_model(size, num_classes=10, in_chans=1), (1, 32, 32))[0]
        for size in args.sizes
    }
    jobs = [(size, seed) for size in args.sizes for seed in args.seeds[: SEED_CAP.get(size)]]
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
                CONFIG / "member.yaml",
                seed,
                member_dir,
                data_cfg,
                overrides=[
                    f"--model.model_name={size}",
                    f"--trainer.max_epochs={args.epochs}",
                    "--trainer.enable_model_summary=false",
                ],
            )
            log(f"member {name} trained in {(time.time() - t) / 60:.1f} min")
            done_weight += weight[size]
        meta = work / "logits" / name / "meta.json"
        if meta.is_file() and json.loads(meta.read_text()).get("checkpoint_sha256") == file_sha256(
            ckpt
        ):
            continue
        log(f"caching logits of {name}")
        cache_logits(
            CONFIG / "member.yaml",
            ckpt,
            work / "logits",
            name,
            data_cfg,
            overrides=[f"--model.model_name={size}"],
        )
    return members


def policy_plan() -> list[PlanEntry]:
    """Every policy: single, ensemble, single-threshold, random; window and window_adjusted
    for each MSP target; budget_window at each budget (cov@2); the window with a guaranteed
    cov@2 threshold; single, ensemble and window for fpr@95 with energy."""
    plan = [
        PlanEntry(
            "msp",
            ("single", "ensemble", "single_threshold", "random"),
            PolicySettings("cov@2", width=WIDTH),
        ),
        *(
            PlanEntry("msp", ("window", "window_adjusted"), PolicySettings(t, width=WIDTH))
            for t in MSP_TARGETS
        ),
        *(
            PlanEntry("msp", ("budget_window",), PolicySettings("cov@2", width=WIDTH, budget=b))
            for b in BUDGETS
        ),
        PlanEntry("msp", ("window",), PolicySettings("cov@2", width=WIDTH, guarantee=GUARANTEE)),
        PlanEntry(
            "energy", ("single", "ensemble", "window"), PolicySettings("fpr@95", width=WIDTH)
        ),
    ]
    return plan


def evaluate(members: dict[str, list[str]], roles: DatasetRoles, work: Path, resamples: int):
    """Every policy for every ordered pair of each size and every growing pair, offline on the
    cached logits, with one bootstrap over all of them.

    Returns:
        (rows with ``model`` and ``members``, paired differences with ``model``, the fitted
        cov@2 window of each cascade, skipped entries as text, size -> member MACs).
    """
    cascades = size_orders(members) + growing_pairs(members)
    skipped = []

    def skip(cascade, entry, err):
        s = entry.settings
        what = f"{','.join(entry.policies)}[{s.target}" + (
            f", guarantee {s.guarantee:g}]" if s.guarantee is not None else "]"
        )
        skipped.append(f"{order_label(cascade.members)} {what}")
        log(f"{order_label(cascade.members)}: {what} skipped: {err}")

    boot = Bootstrap(resamples)
    rows, fitted = evaluate_grid(
        work / "logits",
        cascades,
        roles,
        policy_plan(),
        MetricSettings(RISKS, COVERAGES),
        boot,
        skip,
    )
    model_of = {r["members"]: r["model"] for r in rows}
    deltas = [{"model": model_of[d["members"]], **d} for d in boot.delta_rows(rows)]
    windows = {
        label: policy
        for (label, name, setting, score), policy in fitted.items()
        if name == "window" and setting == f"cov@2,w={WIDTH:g}" and score == "msp"
    }
    macs = {size: member_macs(work / "logits", names)[0] for size, names in members.items()}
    return rows, deltas, windows, skipped, macs


def timing(members, windows, id_images: torch.Tensor, work: Path, args) -> list[dict]:
    """Latency (batch 1) and throughput (batch 256) of single, ensemble and window cascade."""
    out = []
    for size, names in members.items():
        nets = [
            load_member(work / "members" / n / "checkpoints" / "last.ckpt").model for n in names[:2]
        ]
        policies = {"single": single_policy(len(nets)), "ensemble": ensemble_policy(len(nets))}
        first = order_label(names[:2])  # the cascade timed: the first two seeds in order
        if windows.get(first) is not None:
            policies["window[cov@2]"] = windows[first]
        for label, policy in policies.items():
            t = measure(nets, policy, "msp", id_images, args.latency_samples, 20, 256, args.device)
            out.append(
                {
                    "model": size,
                    "policy": label,
                    "device": args.device_name,
                    "latency_median_ms": round(t.latency_median * 1e3, 4),
                    "latency_p90_ms": round(t.latency_p90 * 1e3, 4),
                    "throughput_img_s": round(t.throughput, 1),
                }
            )
            log(
                f"timing {size} {label}: {t.latency_median * 1e3:.2f} ms median, "
                f"{t.throughput:.0f} img/s"
            )
    return out


def id_images(data_cfg: Path, roles: dict[str, str]) -> torch.Tensor:
    """The normalised ID test images, as the members see them."""
    from window_cascades.datamodules.idx_images import IDXDataModule

    dm = IDXDataModule(**yaml.safe_load(data_cfg.read_text())["init_args"])
    dm.setup()
    ds = dm.eval_sets[roles.id]
    return torch.stack([ds[i][0] for i in range(len(ds))])


def check(rows: list[dict], members) -> list[str]:
    """The protocol's checks, as lines of text (PASS/FAIL), on means over member orders."""
    lines = []
    for size in members:

        def val(policy, metric, dataset="notmnist_test", setting=None, size=size):
            vals = [
                r["value"]
                for r in rows
                if (r["model"], r["policy"], r["metric"], r["dataset"], r["score"])
                == (size, policy, metric, dataset, "msp")
                and (setting is None or r["setting"] == setting)
            ]
            return sum(vals) / len(vals) if vals else None

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


SIGNIFICANCE_FIELDS = (
    "model",
    "dataset",
    "policy",
    "setting",
    "score",
    "baseline",
    "metric",
    "orders",
    "mean_delta",
    "mean_ci_low",
    "mean_ci_high",
    "better",
    "worse",
)
SIGNIFICANCE_METRICS = (
    "acc",
    "aurc",
    "augrc",
    "cov@1",
    "cov@2",
    "risk@90",
    "op_risk",
    "op_cov",
    "auroc",
    "fpr@95",
    "expected_macs",
)
ID_SIGNIFICANCE = tuple(m for m in SIGNIFICANCE_METRICS if m not in ("auroc", "fpr@95"))


def significance(deltas: list[dict]) -> list[dict]:
    """Per model, policy, baseline and metric on the ID and OOD sets: over the member orders,
    the mean paired difference, the mean interval, and in how many orders the difference is
    significantly better or worse (interval excluding 0, direction by the metric's)."""
    groups: dict[tuple, list[dict]] = {}
    for d in deltas:
        if d["metric"] in SIGNIFICANCE_METRICS and d["role"] in ("id", "ood"):
            key = tuple(d[f] for f in SIGNIFICANCE_FIELDS[:7])
            groups.setdefault(key, []).append(d)
    out = []
    for key, ds in groups.items():
        n = len(ds)
        up = higher_is_better(key[6])
        out.append(
            {
                **dict(zip(SIGNIFICANCE_FIELDS[:7], key, strict=True)),
                "orders": n,
                "mean_delta": sum(d["delta"] for d in ds) / n,
                "mean_ci_low": sum(d["ci_low"] for d in ds) / n,
                "mean_ci_high": sum(d["ci_high"] for d in ds) / n,
                "better": sum(d["significant"] and (d["delta"] > 0) == up for d in ds),
                "worse": sum(d["significant"] and (d["delta"] > 0) != up for d in ds),
            }
        )
    return out


TABLE_POLICIES = (
    ("single", "", "msp"),
    ("ensemble", "", "msp"),
    ("single_threshold", "pass=0.2", "msp"),
    ("window", f"cov@2,w={WIDTH:g}", "msp"),
    ("window", f"cov@2,w={WIDTH:g},ltt@{GUARANTEE:g}", "msp"),
    ("window_adjusted", f"cov@2,w={WIDTH:g}", "msp"),
    *(("budget_window", f"cov@2,B={b:g}", "msp") for b in BUDGETS),
)
TABLE_METRICS = ("expected_macs", "acc", "aurc", "cov@2", "risk@90", "op_risk", "op_cov")


def markdown_tables(rows: list[dict], table: list[dict], id_name: str) -> str:
    """tables.md: per model and policy on the ID set, the mean over member orders and the mean
    95% interval of each figure; then, per model, in how many orders each policy is
    significantly better / worse than single and than ensemble."""

    def cell(model, family, metric):
        picked = [
            r
            for r in rows
            if (r["model"], r["policy"], r["setting"], r["score"], r["metric"], r["dataset"])
            == (model, *family, metric, id_name)
        ]
        stat = mean_with_interval(picked)
        if stat is None:
            return "-"
        scale = 1e6 if metric == "expected_macs" else 1.0
        value, lo, hi = (None if v is None else v / scale for v in stat)
        digits = 1 if metric == "expected_macs" else 4
        return f"{value:.{digits}f}" + (
            "" if lo is None else f" [{lo:.{digits}f}, {hi:.{digits}f}]"
        )

    models = list(dict.fromkeys(r["model"] for r in rows))
    orders = {m: len({r["members"] for r in rows if r["model"] == m}) for m in models}
    head = "| model (orders) | policy | " + " | ".join(TABLE_METRICS) + " |"
    lines = [
        f"## {id_name}: mean over member orders [mean 95% interval]",
        "",
        head,
        "| --- " * (len(TABLE_METRICS) + 2) + "|",
    ]
    for model in models:
        for family in TABLE_POLICIES:
            label = family[0] + (f"[{family[1]}]" if family[1] else "")
            cells = " | ".join(cell(model, family, m) for m in TABLE_METRICS)
            lines.append(f"| {model} ({orders[model]}) | {label} | {cells} |")
    lines += ["", "## Significant paired differences: better / worse in how many orders", ""]
    lines += [
        "| model | policy | baseline | " + " | ".join(ID_SIGNIFICANCE) + " |",
        "| --- " * (len(ID_SIGNIFICANCE) + 3) + "|",
    ]
    by = {
        (t["model"], t["policy"], t["setting"], t["score"], t["baseline"], t["metric"]): t
        for t in table
        if t["dataset"] == id_name
    }
    for model in models:
        for family in TABLE_POLICIES[1:]:
            for baseline in ("single", "ensemble"):
                if family[0] == baseline:
                    continue
                cells = []
                for metric in ID_SIGNIFICANCE:
                    t = by.get((model, *family, baseline, metric))
                    cells.append(
                        "-" if t is None else f"{t['better']}/{t['worse']} of {t['orders']}"
                    )
                label = family[0] + (f"[{family[1]}]" if family[1] else "")
                lines.append(f"| {model} | {label} | {baseline} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def plots(rows: list[dict], deltas, sizes: list[str], roles: DatasetRoles, out: Path) -> None:
    """The Pareto fronts (cost vs cov@2, risk@90, fpr@95) per policy family, and the exit
    fractions per dataset role, with interval bars."""
    pairs = sorted({r["model"] for r in rows if ">" in r["model"]})
    for metric, datasets, target, score, ylabel in (
        ("cov@2", [roles.id], "cov@2", "msp", "coverage at 2% risk (ID)"),
        ("risk@90", [roles.id], "risk@90", "msp", "selective risk at 90% coverage (ID)"),
        ("fpr@95", roles.ood, "fpr@95", "energy", "FPR@95 (mean over OOD sets)"),
    ):
        base = f"{target},w={WIDTH:g}"
        families = {
            "single model": (("single", "", score), sizes),
            "ensemble (M=2)": (("ensemble", "", score), sizes),
            f"window [{target}]": (("window", base, score), sizes),
            f"window [{target}], small > large": (("window", base, score), pairs),
        }
        if score == "msp":
            families["single-threshold (pass 0.2)"] = (
                ("single_threshold", "pass=0.2", "msp"),
                sizes,
            )
            for b in BUDGETS:
                families[f"budget_window B={b:g} [cov@2]"] = (
                    ("budget_window", f"cov@2,B={b:g}", "msp"),
                    sizes,
                )
        path = out / f"macs_vs_{metric.replace('@', '')}.png"
        tradeoff_plot(rows, metric, datasets, roles.id, families, path, ylabel)
    exit_fraction_plot(
        rows, sizes + pairs, "window", f"cov@2,w={WIDTH:g}", out / "exit_fractions.png"
    )


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--sizes", nargs="+", default=SIZES)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument(
        "--bootstrap",
        type=int,
        default=BOOTSTRAP,
        help="resamples of every test set for the intervals and paired differences (0: off)",
    )
    p.add_argument("--epochs", type=int, default=None, help="default: the member config's")
    p.add_argument(
        "--out",
        type=Path,
        default=Path("outputs/notmnist_benchmark"),
        help="results folder (the published results are benchmarks/notmnist/)",
    )
    p.add_argument("--work", type=Path, default=Path("outputs/notmnist"))
    p.add_argument(
        "--smoke",
        action="store_true",
        help="2 sizes x 2 seeds, 1 epoch, tiny splits, 20 resamples",
    )
    p.add_argument("--skip-timing", action="store_true")
    p.add_argument("--latency-samples", type=int, default=200)
    p.add_argument("--device", default="cpu")
    p.add_argument(
        "--data-dir",
        type=Path,
        default=None,
        help="folder holding notMNIST's t10k-images-idx3-ubyte.gz and t10k-labels-idx1-ubyte.gz "
        "(default: the data config's paths, data/notmnist/ under the repository root)",
    )
    p.add_argument(
        "--data-config",
        type=Path,
        default=CONFIG / "data.yaml",
        help="IDXDataModule config (e.g. with an extra MNIST OOD set read from IDX files)",
    )
    add_console_options(p)
    args = p.parse_args(argv)
    apply_console_options(args)
    if args.epochs is None:
        args.epochs = yaml.safe_load((CONFIG / "member.yaml").read_text())["trainer"]["max_epochs"]
    args.work.mkdir(parents=True, exist_ok=True)
    args.out.mkdir(parents=True, exist_ok=True)
    data_cfg = args.data_config
    if args.data_dir is not None:
        data_cfg = data_config_in(args.data_dir, data_cfg, args.work)
    problem = missing_data(data_cfg)
    if problem:
        print(f"error: {problem}", file=sys.stderr)
        return 2
    if args.smoke:
        args.sizes, args.epochs, args.latency_samples = args.sizes[:2], 1, 20
        args.seeds, args.bootstrap = args.seeds[:2], min(args.bootstrap, 20)
        data_cfg = smoke_data_config(args.work, data_cfg)
    args.device_name = (
        torch.cuda.get_device_name()
        if args.device.startswith("cuda")
        else f"{platform.machine()} CPU x{torch.get_num_threads()} threads"
    )
    start = time.time()
    members = train_and_cache(args, data_cfg, args.work)
    train_s = time.time() - start
    from window_cascades.datamodules.specs import parse_dataset_specs

    specs = parse_dataset_specs(yaml.safe_load(data_cfg.read_text())["init_args"]["datasets"])
    roles = DatasetRoles({s.name: s.role for s in specs})
    t = time.time()
    rows, deltas, windows, skipped, macs = evaluate(members, roles, args.work, args.bootstrap)
    eval_s = time.time() - t
    lead = ("model", "members")
    write_gzip(args.out / "metrics.csv.gz", metrics_csv_text(rows, (*lead, *ROW_FIELDS)))
    if deltas:
        write_gzip(args.out / "deltas.csv.gz", metrics_csv_text(deltas, (*lead, *DELTA_FIELDS)))
        table = significance(deltas)
        write_text(args.out / "significance.csv", metrics_csv_text(table, SIGNIFICANCE_FIELDS))
        write_text(args.out / "tables.md", markdown_tables(rows, table, roles.id))
    write_set_summaries(rows, args.out)
    spread = spread_across_orders(rows)
    write_gzip(args.out / "orders.csv.gz", metrics_csv_text(spread, ("model", *ORDERS_FIELDS)))
    sizes = list(members)
    plots(rows, deltas, sizes, roles, args.out)
    timings = []
    if not args.skip_timing:
        timings = timing(members, windows, id_images(data_cfg, roles), args.work, args)
        write_csv(args.out / f"timing_{args.device.split(':')[0]}.csv", timings)
    summary = {
        "sizes": sizes,
        "seeds": args.seeds,
        "epochs": args.epochs,
        "width": WIDTH,
        "budgets": list(BUDGETS),
        "guarantee": GUARANTEE,
        "bootstrap": {"resamples": args.bootstrap, "seed": 0, "level": 0.95},
        "cascades": sorted({r["members"] for r in rows}),
        "skipped": skipped,
        "macs": macs,
        "windows_cov2": {k: w.to_dict() for k, w in windows.items() if w},
        # this run only: training is skipped for cached members, timing with --skip-timing
        "this_run": {
            "train_and_cache_s": round(train_s, 1),
            "evaluate_s": round(eval_s, 2),
            "timing_file": f"timing_{args.device.split(':')[0]}.csv" if timings else None,
            "machine": args.device_name,
        },
    }
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
