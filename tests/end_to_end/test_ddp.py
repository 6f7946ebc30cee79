"""DDP on CPU: 2 gloo processes give exactly the metrics of one process, with no padding."""

import json
import os
import subprocess
import sys

import pytest

from tests.conftest import ROOT
from window_cascades.artifacts.results import read_metrics_csv


@pytest.mark.ddp
@pytest.mark.slow
def test_two_process_test_metrics_equal_single_process(tiny_members, tmp_path, cascade_test_args):
    runs, calls = {}, {}
    for name, extra in {
        "single": ["--trainer.devices=1"],
        "ddp": ["--trainer.strategy=ddp", "--trainer.devices=2", "--trainer.accelerator=cpu"],
    }.items():
        out = tmp_path / name
        args = cascade_test_args(tiny_members["data_cfg"], tiny_members["ckpts"], out, *extra)
        env = {**os.environ, "OMP_NUM_THREADS": "1"}
        proc = subprocess.run(
            [sys.executable, str(ROOT / "scripts" / "evaluate_cascade.py"), *args],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert proc.returncode == 0, proc.stderr[-4000:]
        runs[name] = {
            (r["dataset"], r["policy"], r["metric"]): r["value"]
            for r in read_metrics_csv(out / "metrics.csv")
        }
        calls[name] = json.loads((out / "summary.json").read_text())["member_calls"]
    assert runs["single"].keys() == runs["ddp"].keys()
    # the held-out split has 269 samples: a padding sampler would duplicate one of them
    for key, value in runs["single"].items():
        assert runs["ddp"][key] == pytest.approx(value, rel=1e-6, abs=1e-9), key
    # the members processed the same samples in total, counted over both processes
    assert calls["ddp"] == calls["single"]


def test_resumable_sampler_shards_ranks_without_overlap_and_resumes():
    from window_cascades.datamodules.samplers import ResumableShuffleSampler

    data = list(range(103))
    ranks = [ResumableShuffleSampler(data, seed=4, num_replicas=2, rank=r) for r in (0, 1)]
    for s in ranks:
        s.set_epoch(3)
    shards = [list(s) for s in ranks]
    assert len(shards[0]) == len(shards[1]) == 52  # one sample repeated to even the ranks
    assert set(shards[0]) | set(shards[1]) == set(data)
    assert len(set(shards[0]) & set(shards[1])) <= 1
    again = ResumableShuffleSampler(data, seed=4, num_replicas=2, rank=1)
    again.set_epoch(3)
    again.resume_at(epoch=3, samples_done=20)
    assert list(again) == shards[1][20:]
    assert list(again) == shards[1]  # the skip applies to one pass only


@pytest.mark.ddp
@pytest.mark.slow
@pytest.mark.parametrize(
    "program",
    [
        [str(ROOT / "scripts" / "train_member.py")],
        ["-m", "window_cascades", "member"],
    ],  # Lightning starts rank 1 the same way
    ids=["script", "command"],
)
def test_two_process_training_splits_the_data_and_finishes(
    tmp_path, member_fit_args, small_data_config, program
):

    data_cfg = small_data_config(tmp_path / "data.yaml", train_limit=256)
    args = member_fit_args(data_cfg, tmp_path, "m0", seed=0, epochs=1)
    ddp = ["--trainer.strategy=ddp", "--trainer.devices=2", "--trainer.accelerator=cpu"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        [sys.executable, *program, *args, *ddp],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    import torch

    ckpt = torch.load(tmp_path / "m0" / "checkpoints" / "last.ckpt", weights_only=True)
    # 256 images over 2 ranks with batch 64: 2 optimiser steps per epoch, not 4
    assert ckpt["global_step"] == 2
    # both ranks computed the held-out metrics (every rank logs val/sc/* from all samples)
    assert "val/sc/cov@5" in (tmp_path / "m0" / "version_0" / "metrics.csv").read_text()
