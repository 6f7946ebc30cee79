"""The offline evaluator's memory savings change no output: per-sample outputs computed a chunk
of samples at a time equal one pass, and float16 logits kept as float16 give the results of the
same values stored as float32 (benchmarks/memory/ measures the memory)."""

from __future__ import annotations

from dataclasses import fields

import pytest
import torch
from safetensors.torch import save_file

from window_cascades.artifacts.member_meta import save_member_meta
from window_cascades.cascade.offline import dataset_prefix_outputs
from window_cascades.cascade.sample_outputs import SampleOutputs
from window_cascades.cascade.stage_scores import Temperatures
from window_cascades.commands.offline import main


@pytest.mark.parametrize("score", ["msp", "entropy", "energy", "mutual_information"])
@pytest.mark.parametrize("temperatures", [None, Temperatures([1.3, 0.8, 1.1], {2: 1.2, 3: 0.9})])
def test_outputs_computed_in_chunks_equal_one_pass(score, temperatures):
    gen = torch.Generator().manual_seed(0)
    logits = [(torch.randn(103, 7, generator=gen) * 3).half() for _ in range(3)]
    targets = torch.randint(7, (103,), generator=gen)
    targets[::10] = -1
    whole = dataset_prefix_outputs(logits, targets, score, temperatures, rows=1000)
    for rows in (1, 10, 64):
        parts = dataset_prefix_outputs(logits, targets, score, temperatures, rows=rows)
        for a, b in zip(whole, parts, strict=True):
            for f in fields(SampleOutputs):
                assert torch.equal(getattr(a, f.name), getattr(b, f.name)), (rows, f.name)


def write(folder, dtype: torch.dtype, logits: dict, targets: dict) -> None:
    for m, per_set in logits.items():
        (folder / m).mkdir(parents=True)
        for name, z in per_set.items():
            save_file(
                {"logits": z.to(dtype), "targets": targets[name]},
                str(folder / m / f"{name}.safetensors"),
            )
        meta = {"model_name": "x", "macs": 1e6, "params": 1, "num_classes": 6}
        save_member_meta(folder, m, meta)


@pytest.mark.parametrize(
    "extra", [[], ["--temperature-scaling", "--policies", "single,ensemble,window,window_adjusted"]]
)
def test_float16_logits_give_the_results_of_the_same_values_in_float32(tmp_path, extra):
    gen = torch.Generator().manual_seed(1)
    sizes = {"held": 400, "test": 300, "ood": 200}
    targets = {n: torch.randint(6, (k,), generator=gen) for n, k in sizes.items()}
    targets["ood"] = torch.full((200,), -1)
    logits = {
        m: {
            n: (
                torch.randn(k, 6, generator=gen) * 2
                + 3 * torch.nn.functional.one_hot(targets[n].clamp_min(0), 6)
            ).half()
            for n, k in sizes.items()
        }
        for m in ("m0", "m1")
    }
    write(tmp_path / "f16", torch.float16, logits, targets)
    write(tmp_path / "f32", torch.float32, logits, targets)  # the same values, exactly
    for kind in ("f16", "f32"):
        args = [
            "--logits-dir",
            str(tmp_path / kind),
            "--members",
            "m0",
            "m1",
            "--heldout",
            "held",
            "--id",
            "test",
            "--ood",
            "ood",
            "--out",
            str(tmp_path / f"out_{kind}"),
            "--quiet",
            "--no-plots",
            "--bootstrap",
            "20",
            *extra,
        ]
        assert main(args) == 0
    for name in ("metrics.csv", "deltas.csv"):
        assert (tmp_path / "out_f16" / name).read_bytes() == (
            tmp_path / "out_f32" / name
        ).read_bytes()
