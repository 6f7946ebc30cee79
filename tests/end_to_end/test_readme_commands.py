"""The documented stage-by-stage commands (docs/howto/pipeline.md) run clean as written (in a
scratch folder)."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT


def stage_commands() -> list[str]:
    page = (ROOT / "docs" / "howto" / "pipeline.md").read_text()
    section = page.split("## The pipeline, step by step", 1)[1].split("\n### ", 1)[0]
    blocks = re.findall(r"```bash\n(.*?)```", section, re.S)
    return [re.sub(r"^ {3}", "", b, flags=re.M) for b in blocks]


@pytest.mark.slow
def test_readme_stage_commands_run_clean_as_written(tmp_path):
    commands = stage_commands()
    assert len(commands) == 4  # train, cache logits, evaluate the cascade, apply it
    packages = [p.parent.name for p in ROOT.glob("*/__init__.py") if p.parent.name != "tests"]
    for name in ("configs", "scripts", *packages):
        (tmp_path / name).symlink_to(ROOT / name)
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
        "PYTHONPATH": str(tmp_path),
    }
    outputs = []
    for command in commands:
        proc = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", command],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert proc.returncode == 0, command + proc.stdout[-2000:] + proc.stderr[-2000:]
        outputs.append(proc.stdout + proc.stderr)
    out = tmp_path / "outputs" / "quickstart"
    for i in (0, 1):  # both members, each logging under its own name
        assert (out / "members" / f"m{i}" / "checkpoints" / "last.ckpt").is_file()
        assert (out / "members" / f"m{i}" / "version_0" / "metrics.csv").is_file()
        assert (out / "logits" / f"m{i}" / "digits_test.safetensors").is_file()
    assert not (out / "members" / "m0" / "version_1").exists()
    assert not (tmp_path / "config.yaml").exists() and not (tmp_path / "checkpoints").exists()
    assert "dirpath has changed" not in outputs[1]
    assert (out / "results" / "metrics.csv").is_file() and (
        out / "results" / "fitted_cascade.json"
    ).is_file()
    assert len(outputs[2].splitlines()) < 150  # the results table, not a per-dataloader dump
    assert "digits_test (id)" in outputs[2]
    rows = (out / "predictions.csv").read_text().splitlines()
    assert rows[0] == "dataset,index,prediction,confidence,decision,accepted,ood,exit_stage"
    assert len(rows) > 2000  # every sample of every configured dataset
