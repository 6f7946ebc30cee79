"""The claim of an output folder: a lock path that cannot be a lock, and file systems without
flock (a one-line refusal naming the setting, and its lock-file and off fallbacks)."""

from __future__ import annotations

import errno
import fcntl
import json
import socket
import subprocess
import sys

import pytest

from window_cascades.artifacts.folder_claim import (
    LOCKING_ENV,
    OutputFolderError,
    claim_output_folder,
    claimed,
    holds_claim,
    lock_path,
    release_output_folder,
)


def test_a_lock_path_that_is_a_folder_is_one_line(tmp_path):
    out = tmp_path / "out"
    lock_path(out).mkdir()
    with pytest.raises(OutputFolderError) as err:
        claim_output_folder(out, "--out")
    assert str(err.value) == (
        f"--out {out}: its lock {lock_path(out)} is a folder; remove it and run again"
    )
    assert not claimed(out)


def no_flock(fd, operation):
    raise OSError(errno.ENOLCK, "No locks available")


def test_no_flock_is_refused_in_one_line_naming_the_fallbacks(tmp_path, monkeypatch):
    monkeypatch.setattr(fcntl, "flock", no_flock)
    monkeypatch.delenv(LOCKING_ENV, raising=False)
    with pytest.raises(OutputFolderError) as err:
        claim_output_folder(tmp_path / "out", "--out")
    message = str(err.value)
    assert "\n" not in message and "does not support flock" in message
    assert f"{LOCKING_ENV}=lockfile" in message and f"{LOCKING_ENV}=off" in message
    monkeypatch.setenv(LOCKING_ENV, "flocks")
    with pytest.raises(OutputFolderError, match="expected one of flock, lockfile, off"):
        claim_output_folder(tmp_path / "out", "--out")


def test_the_lock_file_fallback_claims_and_refuses_a_second_run(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(fcntl, "flock", no_flock)  # as on such a file system
    monkeypatch.setenv(LOCKING_ENV, "lockfile")
    out = tmp_path / "out"
    holder = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(60)"], stdout=subprocess.DEVNULL
    )
    try:
        info = {"pid": holder.pid, "host": socket.gethostname(), "since": "then"}
        lock_path(out).write_text(json.dumps(info))
        with pytest.raises(OutputFolderError, match=f"in use by another run \\(pid {holder.pid}"):
            claim_output_folder(out, "--out")
    finally:
        holder.kill()
        holder.wait()
    # its process has ended: stale, replaced with a notice
    claim_output_folder(out, "--out")
    assert f"note: replaced the lock file {lock_path(out)}" in capsys.readouterr().err
    assert holds_claim(out)
    assert json.loads(lock_path(out).read_text())["pid"] != holder.pid
    release_output_folder(out)
    assert not lock_path(out).exists()
    # one left on another host: this host cannot tell whether it runs
    lock_path(out).write_text(json.dumps({**info, "host": "node-elsewhere"}))
    with pytest.raises(OutputFolderError, match="on host node-elsewhere.*remove the file"):
        claim_output_folder(out, "--out")


def test_locking_off_claims_without_a_lock(tmp_path, monkeypatch):
    monkeypatch.setattr(fcntl, "flock", no_flock)
    monkeypatch.setenv(LOCKING_ENV, "off")
    out = tmp_path / "out"
    claim_output_folder(out, "--out")
    assert claimed(out) and holds_claim(out) and not lock_path(out).exists()
    release_output_folder(out)
    assert not claimed(out)
