"""DDP on CPU: 2 gloo processes give exactly the metrics of one process, with no padding."""

import json
import os
import subprocess
import sys

import pytest

from artifacts.results import read_metrics_csv
from tests.conftest import ROOT, cascade_args


@pytest.mark.ddp
@pytest.mark.slow
def test_two_process_test_metrics_equal_single_process(tiny_members, tmp_path):
    runs, calls = {}, {}
    for name, extra in {
        "single": ["--trainer.devices=1"],
        "ddp": ["--trainer.strategy=ddp", "--trainer.devices=2", "--trainer.accelerator=cpu"],
    }.items():
        out = tmp_path / name
        args = cascade_args(tiny_members["data_cfg"], tiny_members["ckpts"], out, *extra)
        env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
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
