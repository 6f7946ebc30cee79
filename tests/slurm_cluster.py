"""Helpers for the `slurm` tests: a one-node cluster on localhost and job polling."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TOOLS = ("munged", "slurmctld", "slurmd", "sbatch", "srun", "scontrol")


def start_cluster(folder: Path) -> dict:
    """Start the cluster (skip when Slurm cannot run here); returns the env for its commands."""
    if os.geteuid() != 0:
        pytest.skip("the local Slurm cluster runs its daemons as root")
    path = f"{os.environ.get('PATH', '')}:/usr/sbin:/usr/bin"
    missing = [t for t in TOOLS if shutil.which(t, path=path) is None]
    if missing:
        pytest.skip(
            f"Slurm is not installed ({', '.join(missing)} missing): "
            "apt-get install slurmctld slurmd slurm-client munge (.ci/run does this)"
        )
    proc = subprocess.run(
        ["bash", str(ROOT / "scripts/slurm/local_cluster.sh"), "start", str(folder)],
        capture_output=True,
        text=True,
        env={**os.environ, "PATH": path},
        timeout=120,
    )
    assert proc.returncode == 0, f"local Slurm cluster did not start:\n{proc.stdout}{proc.stderr}"
    return {
        **os.environ,
        "PATH": path,
        "SLURM_CONF": str(folder / "slurm.conf"),
        "PYTHON": sys.executable,
        "WANDB_MODE": "offline",
    }


def stop_cluster(folder: Path) -> None:
    subprocess.run(["bash", str(ROOT / "scripts/slurm/local_cluster.sh"), "stop", str(folder)])


def run(env: dict, *cmd: str, timeout: float = 120) -> str:
    proc = subprocess.run(
        cmd, capture_output=True, encoding="utf-8", errors="replace", env=env, cwd=ROOT,
        timeout=timeout,
    )  # fmt: skip
    assert proc.returncode == 0, f"{' '.join(cmd)} failed:\n{proc.stdout}{proc.stderr}"
    return proc.stdout


def job_fields(env: dict, job: str) -> list[dict[str, str]]:
    """``scontrol show job`` as one dict per job (array tasks are separate entries)."""
    text = run(env, "scontrol", "show", "job", job)
    blocks = [b for b in text.split("\n\n") if b.strip()]
    return [dict(re.findall(r"(\w+)=(\S*)", block)) for block in blocks]


def wait_until_done(env: dict, jobs: list[str], timeout: float = 900) -> None:
    """Poll until none of ``jobs`` is pending or running."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        if not run(env, "squeue", "-h", "-j", ",".join(jobs)).strip():
            return
        time.sleep(2)
    raise AssertionError(f"jobs {jobs} still queued after {timeout} s:\n{run(env, 'squeue')}")


def wait_for(condition, what: str, timeout: float = 300) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if condition():
            return
        time.sleep(1)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")
