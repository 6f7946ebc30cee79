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
        cmd,
        capture_output=True,
        encoding="utf-8",
        errors="replace",
        env=env,
        cwd=ROOT,
        timeout=timeout,
    )
    assert proc.returncode == 0, f"{' '.join(cmd)} failed:\n{proc.stdout}{proc.stderr}"
    return proc.stdout


def job_fields(env: dict, job: str) -> list[dict[str, str]]:
    """``scontrol show job`` as one dict per job (array tasks are separate entries)."""
    text = run(env, "scontrol", "show", "job", job)
    blocks = [b for b in text.split("\n\n") if b.strip()]
    return [dict(re.findall(r"(\w+)=(\S*)", block)) for block in blocks]


FAILED_STATES = {"FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL", "OUT_OF_MEMORY", "BOOT_FAIL"}


def failure(fields: dict[str, str]) -> str | None:
    """What went wrong with a job (its state, reason and log's end), or None if nothing has."""
    state, reason = fields.get("JobState", ""), fields.get("Reason", "")
    if state not in FAILED_STATES and reason != "DependencyNeverSatisfied":
        return None
    log = Path(fields.get("StdOut", ""))
    tail = log.read_text(errors="replace")[-3000:] if log.is_file() else "(no log)"
    return f"job {fields.get('JobId')} {state} ({reason}); {log}:\n{tail}"


def wait_until_done(
    env: dict, jobs: list[str], timeout: float = 900, fail_fast: bool = True
) -> None:
    """Poll until none of ``jobs`` is pending or running; with ``fail_fast``, raise as soon as
    one of them (or of their array tasks) failed, with the end of its log."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        if fail_fast:
            for job in jobs:
                for fields in job_fields(env, job):
                    problem = failure(fields)
                    if problem:
                        raise AssertionError(problem)
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


def start_requeued_job(env: dict, job: str) -> None:
    """Start ``job`` now once it is back in the queue after a requeue (``Restarts=1``, PENDING).

    Slurm holds a requeued job back (BeginTime = requeue + credential lifetime + 1 s) because
    the node revoked the job's old launch credential when the requeue killed it, and slurmd
    refuses any credential of that job id stamped (in whole seconds) no later than the revoke
    (slurm_cred.c: ``cred->ctime <= j->revoked``); slurmctld then fails the job with "Killing
    non-startable batch JobId=N: Job credential revoked". Skipping the hold with
    ``StartTime=now`` is only safe once the clock has left the second of the revoke: the
    revoke was stamped before the job showed up as requeued, so wait for the next second.
    """

    def requeued() -> bool:
        fields = job_fields(env, job)[0]
        return fields["Restarts"] == "1" and fields["JobState"] == "PENDING"

    wait_for(requeued, f"job {job} to be requeued", timeout=120)
    revoked_by = int(time.time())  # the revoke's time stamp is this second or earlier
    while time.time() < revoked_by + 1.05:
        time.sleep(0.05)
    run(env, "scontrol", "update", f"JobId={job}", "StartTime=now")
