"""The notMNIST benchmark's smoke run: 2 sizes, 1 epoch, tiny splits, every output written."""

import csv
import gzip
import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT

NOTMNIST = ROOT.parent / "shared" / "data" / "notmnist"


@pytest.mark.slow
@pytest.mark.skipif(not NOTMNIST.is_dir(), reason=f"notMNIST not found in {NOTMNIST}")
def test_benchmark_smoke_run(tmp_path):
    """Also: a data config with an extra OOD set read from IDX files (as MNIST would be)."""
    import struct

    import torch
    import yaml

    out, work = tmp_path / "out", tmp_path / "work"
    gen = torch.Generator().manual_seed(0)
    extra = {}
    for name, array in (
        ("img", torch.randint(0, 256, (40, 28, 28), generator=gen)),
        ("lab", torch.arange(40) % 10),
    ):
        header = bytes([0, 0, 8, array.ndim]) + b"".join(struct.pack(">I", d) for d in array.shape)
        extra[name] = tmp_path / f"mnist-{name}.gz"
        extra[name].write_bytes(gzip.compress(header + array.to(torch.uint8).numpy().tobytes()))
    cfg = yaml.safe_load((ROOT / "configs/notmnist/data.yaml").read_text())
    for key in ("images", "labels"):  # the same file names, in the folder the data lives in
        cfg["init_args"][key] = str(NOTMNIST / Path(cfg["init_args"][key]).name)
    cfg["init_args"]["datasets"].append(
        {
            "name": "mnist",
            "role": "ood",
            "source": "path",
            "format": "idx",
            "path": str(extra["img"]),
            "labels": str(extra["lab"]),
        }
    )
    data_cfg = tmp_path / "data.yaml"
    data_cfg.write_text(yaml.safe_dump(cfg))
    cmd = [
        sys.executable,
        "benchmarks/notmnist/benchmark_notmnist.py",
        "--smoke",
        "--data-config",
        str(data_cfg),
        "--sizes",
        "resnet10t",
        "resnet18",
        "--out",
        str(out),
        "--work",
        str(work),
    ]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=1200)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    with gzip.open(out / "metrics.csv.gz", "rt") as f:
        rows = list(csv.DictReader(f))
    assert {r["model"] for r in rows} == {"resnet10t", "resnet18", "resnet10t>resnet18"}
    # both orders of each size's pair and the growing pairs, each row with its interval
    assert {r["members"] for r in rows if r["model"] == "resnet18"} == {
        "resnet18_s0>resnet18_s1",
        "resnet18_s1>resnet18_s0",
    }
    # (a percentile interval of a biased statistic on tiny splits need not hold its value)
    assert all(r["ci_low"] != "" and float(r["ci_low"]) <= float(r["ci_high"]) for r in rows)
    assert {"budget_window"} <= {r["policy"] for r in rows}
    summary = json.loads((out / "summary.json").read_text())
    # the guaranteed window: evaluated, or (1 epoch, tiny held-out split) skipped and said so
    assert any(r["setting"].endswith("ltt@0.1") for r in rows) or any(
        "guarantee 0.1" in s for s in summary["skipped"]
    )
    with open(out / "significance.csv") as f:
        table = list(csv.DictReader(f))
    # against single and ensemble; on the target's operating-point metrics also against the
    # policy registered as the cost-matched comparator (single_threshold)
    assert {t["baseline"] for t in table} == {"single", "ensemble", "single_threshold"}
    assert all(t["metric"].startswith("op_") for t in table if t["baseline"] == "single_threshold")
    assert {r["role"] for r in rows if r["dataset"] == "mnist"} == {"ood"}
    assert {"single", "ensemble", "single_threshold", "random"} <= {r["policy"] for r in rows}
    assert {r["score"] for r in rows} == {"msp", "energy"}
    for name in (
        "macs_vs_cov2.png",
        "macs_vs_risk90.png",
        "macs_vs_fpr95.png",
        "exit_fractions.png",
        "deltas.csv.gz",
        "orders.csv.gz",
        "timing_cpu.csv",
        "summary.json",
    ):
        assert (out / name).stat().st_size > 0, name
    summary = json.loads((out / "summary.json").read_text())
    assert summary["macs"]["resnet18"][0] > summary["macs"]["resnet10t"][0]
    # the per-set summaries kept in the repository: every ID, shifted and OOD set, each figure
    # with its interval, cost and the share passed on
    with open(out / "shift_summary.csv") as f:
        shift = list(csv.DictReader(f))
    assert {r["dataset"] for r in shift} == {"notmnist_test", "gaussian_noise_s3", "contrast_s2"}
    window = [r for r in shift if r["policy"] == "window" and r["model"] == "resnet18"]
    assert window and all(
        float(r["cov@2_low"]) <= float(r["cov@2_high"]) and 0 < float(r["exit_frac@2"]) < 1
        for r in window
    )
    with open(out / "ood_summary.csv") as f:
        ood = list(csv.DictReader(f))
    assert {r["dataset"] for r in ood} == {"digits", "mnist"}
    assert all(r["fpr@95_low"] != "" and float(r["expected_macs"]) > 0 for r in ood)
    assert "### gaussian_noise_s3 (shift)" in (out / "sets.md").read_text()
    assert "ensemble AURC" in proc.stdout
    # a second run reuses the members and the cached logits
    proc = subprocess.run(
        cmd + ["--skip-timing"], cwd=ROOT, capture_output=True, text=True, timeout=600
    )
    assert proc.returncode == 0
    assert proc.stdout.count("cached checkpoint, not retrained") == 4
    assert "caching logits" not in proc.stdout


def test_benchmark_says_where_the_notmnist_files_are_missing(tmp_path):
    proc = subprocess.run(
        [
            sys.executable,
            "benchmarks/notmnist/benchmark_notmnist.py",
            "--data-dir",
            str(tmp_path / "nowhere"),
            "--out",
            str(tmp_path / "out"),
            "--work",
            str(tmp_path / "work"),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 2, proc.stderr[-2000:]
    (line,) = proc.stderr.strip().splitlines()
    assert line.startswith("error: notMNIST not found: ")
    assert str(tmp_path / "nowhere" / "t10k-images-idx3-ubyte.gz") in line
    assert "docs/benchmarks/notmnist.md" in line
    assert not (tmp_path / "out" / "metrics.csv.gz").exists()


@pytest.mark.slow  # runs a benchmark program: the fast loop leaves it to the full suite
def test_cascade_timing_script_writes_one_row_per_policy(tmp_path):
    out = tmp_path / "timing.csv"
    cmd = [
        sys.executable,
        "benchmarks/streaming/benchmark_cascade_timing.py",
        "--models",
        "resnet10t",
        "--samples",
        "64",
        "--latency-samples",
        "10",
        "--batch-size",
        "32",
        "--pass-fraction",
        "0.25",
        "--queued",
        "--out",
        str(out),
    ]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    with open(out) as f:
        rows = list(csv.DictReader(f))
    assert [r["policy"] for r in rows] == [
        "single",
        "ensemble",
        "cascade(pass=0.25)",
        "cascade(pass=0.25,queued)",
    ]
    assert [float(r["macs_predicted"]) for r in rows] == [2.0, 1.0, 1.6, 1.6]
    assert float(rows[1]["vs_ensemble"]) == 1.0
    for r in rows:
        assert float(r["latency_median_ms"]) > 0 and float(r["throughput_img_s"]) > 0
        assert float(r["latency_p90_ms"]) >= float(r["latency_median_ms"])
