"""``window-cascades submit --wait``: wait for the submitted jobs, then report each one (array
tasks separately: state, reason, exit code, log) and whether all completed."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time


def field(line: str, name: str) -> str:
    """The value of ``name=value`` in one line of ``scontrol -o show job``."""
    match = re.search(rf"(?:^|\s){name}=(\S*)", line)
    return match.group(1) if match else ""


def job_report(lines: list[str], evaluate_id: str) -> tuple[list[str], bool]:
    """One line per job (array tasks separately, members first), and whether all completed."""
    rows, failed = [], False
    for line in lines:
        if not line.strip():
            continue
        job, task, state = field(line, "JobId"), field(line, "ArrayTaskId"), field(line, "JobState")
        what = "evaluation" if job == evaluate_id else "members"
        if task and task != "N/A":
            job = f"{field(line, 'ArrayJobId')}_{task}"
        note = ""
        if state != "COMPLETED":
            failed = True
            reason = field(line, "Reason")
            note = "" if reason == "None" else f" ({reason})"
        text = f"{what} job {job}: {state}{note}, exit {field(line, 'ExitCode')}, log "
        rows.append((what != "members", natural(job), text + field(line, "StdOut")))
    return [text for *_, text in sorted(rows)], not failed


def natural(text: str) -> list:
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", text)]


def wait_for_jobs(train_id: str, evaluate_id: str) -> int:
    """Poll until no job is queued, then print one line per job; 0 only when all completed."""
    poll = float(os.environ.get("SUBMIT_POLL", "10"))
    jobs = f"{train_id},{evaluate_id}"
    while subprocess.run(
        ["squeue", "-h", "-j", jobs], capture_output=True, text=True
    ).stdout.strip():
        time.sleep(poll)
    lines = []
    for job in (train_id, evaluate_id):
        shown = subprocess.run(
            ["scontrol", "-o", "show", "job", job], capture_output=True, text=True
        )
        lines += shown.stdout.splitlines()
    rows, completed = job_report(lines, evaluate_id)
    print("\n".join(rows), flush=True)
    if not completed:
        print("error: not every job completed; read the logs above", file=sys.stderr)
        return 1
    return 0
