"""Cached logits made elsewhere: no meta.json (MACs from --macs, or member units), float16 and
bfloat16 logits, NumPy files (never unpickled), and clear errors for the rest."""

import json

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from window_cascades.artifacts.cached_logits import load_cached_logits
from window_cascades.artifacts.results import read_metrics_csv
from window_cascades.commands.offline import main

SIZES = {"held": 400, "test": 300}


def write_external(directory, fmt: str, dtype=torch.float32) -> None:
    """Two members' logits on two datasets in ``fmt``, with no meta.json."""
    gen = torch.Generator().manual_seed(7)
    for name, n in SIZES.items():
        targets = torch.randint(5, (n,), generator=gen)
        shared = torch.randn(n, 5, generator=gen)
        shared[torch.arange(n), targets] += 2.5
        for member in ("a", "b"):
            logits = (shared + torch.randn(n, 5, generator=gen)).to(dtype)
            folder = directory / member
            folder.mkdir(parents=True, exist_ok=True)
            if fmt == "safetensors":
                save_file(
                    {"logits": logits, "targets": targets}, str(folder / f"{name}.safetensors")
                )
            elif fmt == "npz":
                np.savez(
                    folder / f"{name}.npz", logits=logits.float().numpy(), targets=targets.numpy()
                )
            else:
                np.save(folder / f"{name}.npy", logits.float().numpy().astype(np.float16))
                np.save(folder / f"{name}.targets.npy", targets.numpy().astype(np.int32))


def args(directory, out, *extra):
    return [
        "--logits-dir",
        str(directory),
        "--members",
        "a",
        "b",
        "--heldout",
        "held",
        "--id",
        "test",
        "--target",
        "cov@10",
        "--quiet",
        "--no-plots",
        "--out",
        str(out),
        *extra,
    ]


@pytest.mark.parametrize(
    "fmt, dtype",
    [
        ("safetensors", torch.float16),
        ("safetensors", torch.bfloat16),
        ("npz", torch.float32),
        ("npy", torch.float32),
    ],
)
def test_formats_and_precisions_give_the_same_metrics_within_their_rounding(tmp_path, fmt, dtype):
    write_external(tmp_path / "ref", "safetensors")
    write_external(tmp_path / "ext", fmt, dtype)
    assert main(args(tmp_path / "ref", tmp_path / "r")) == 0
    assert main(args(tmp_path / "ext", tmp_path / "e")) == 0
    ref = {
        (r["dataset"], r["policy"], r["metric"]): r["value"]
        for r in read_metrics_csv(tmp_path / "r" / "metrics.csv")
    }
    ext = read_metrics_csv(tmp_path / "e" / "metrics.csv")
    assert {(r["dataset"], r["policy"], r["metric"]) for r in ext} == set(ref)
    acc = {r["policy"]: r["value"] for r in ext if r["dataset"] == "test" and r["metric"] == "acc"}
    ref_acc = ref["test", "single", "acc"]
    assert abs(acc["single"] - ref_acc) <= 0.02  # a few samples may flip in low precision
    loaded = load_cached_logits(tmp_path / "ext", "a", "test")
    # kept in their stored precision (half the memory for float16), computed on in float32
    stored = torch.float16 if fmt == "npy" else dtype  # write_external saves .npy as float16
    assert loaded.logits.dtype == stored and loaded.targets.dtype == torch.int64


def test_without_meta_the_cost_is_in_member_units_unless_macs_are_given(tmp_path, capsys):
    write_external(tmp_path / "ext", "npz")
    assert main(args(tmp_path / "ext", tmp_path / "units")) == 0
    summary = json.loads((tmp_path / "units" / "summary.json").read_text())
    assert summary["cost_unit"].startswith("member evaluations")
    assert [m["macs"] for m in summary["members"]] == [1.0, 1.0]
    assert main(args(tmp_path / "ext", tmp_path / "macs", "--macs", "a=0.39e9", "b=1.0e9")) == 0
    summary = json.loads((tmp_path / "macs" / "summary.json").read_text())
    assert summary["cost_unit"] == "MACs"
    assert [m["macs"] for m in summary["members"]] == [0.39e9, 1.0e9]
    cost = summary["metrics"]["test"]["ensemble"]["expected_macs"]
    assert cost == pytest.approx(1.39e9)


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--macs", "c=1e9"], "--macs names unknown member(s) ['c']"),
        (["--macs", "a=1e9"], "no MACs for member(s) ['b']"),
        (["--macs", "a=-3", "b=1"], "--macs a=-3.0: MACs must be a positive number"),
        (["--macs", "a:1e9"], "expected MEMBER=MACS"),
    ],
)
def test_bad_macs_are_named(tmp_path, capsys, extra, message):
    write_external(tmp_path / "ext", "npz")
    assert main(args(tmp_path / "ext", tmp_path / "out", *extra)) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_pickles_wrong_dtypes_and_duplicate_formats_are_refused(tmp_path, capsys):
    write_external(tmp_path / "ext", "npz")
    held = tmp_path / "ext" / "a" / "held.npz"
    np.savez(held, logits=np.array([object()] * 3, dtype=object), targets=np.zeros(3))
    assert main(args(tmp_path / "ext", tmp_path / "out")) == 2
    assert "holds pickled objects, which are never loaded" in capsys.readouterr().err
    np.savez(held, logits=np.zeros((400, 5), dtype=np.int64), targets=np.zeros(400, dtype=np.int64))
    assert main(args(tmp_path / "ext", tmp_path / "out")) == 2
    assert "'logits' must be floating point, got dtype int64" in capsys.readouterr().err
    write_external(tmp_path / "ext", "npz")
    np.save(tmp_path / "ext" / "a" / "held.npy", np.zeros((400, 5), dtype=np.float32))
    assert main(args(tmp_path / "ext", tmp_path / "out")) == 2
    assert "logits of 'held' in several files (held.npz, held.npy)" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
