"""The quick start's cascade.ckpt travels and is served: copied alone into an empty folder (its
members' files gone) it predicts what it predicts in place; served from there by a real
``window-cascades serve`` process on 127.0.0.1 it answers the quick start's test images with
the decisions of ``cascade predict``, answers garbage with a 4xx and goes on serving, and on
SIGTERM answers every request in flight, then exits with status 0, leaving no process and no
file behind. Every request goes to 127.0.0.1, bounded in count and time."""

from __future__ import annotations

import csv
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.end_to_end.test_quickstart import run_pipeline

pytest.importorskip("litserve", reason="the [serve] extra is not installed")
httpx = pytest.importorskip("httpx")

NUM_IMAGES = 48


def digits_test_images(folder: Path) -> list[Path]:
    """The quick start's first ``NUM_IMAGES`` test images (digits_test), as PNG files."""
    from window_cascades.datamodules.digits import DigitsDataModule

    dm = DigitsDataModule()
    dm.setup()
    mean, std = (np.array(v).reshape(-1, 1, 1) for v in dm.normalization)
    folder.mkdir()
    files = []
    for i in range(NUM_IMAGES):
        x = dm.eval_sets["digits_test"][i][0].numpy() * std + mean  # back to [0, 1]
        files.append(folder / f"digit_{i:03d}.png")
        Image.fromarray(np.rint(x[0] * 255).clip(0, 255).astype(np.uint8)).save(files[-1])
    return files


def predict(ckpt: str, inputs: Path, out: Path, cwd: Path) -> list[dict]:
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "window_cascades",
            "cascade",
            "predict",
            f"--ckpt_path={ckpt}",
            f"--predictions.inputs={inputs}",
            f"--predictions.path={out}",
        ],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    with open(cwd / out) as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="module")
def travelled(tmp_path_factory):
    """The quick start run; its cascade.ckpt copied alone into an empty folder; the member
    files deleted; predictions in place (before) and from the empty folder (after)."""
    tmp = tmp_path_factory.mktemp("serve")
    out = tmp / "quickstart"
    run_pipeline(tmp, "--out", str(out), "--no-progress")
    images = digits_test_images(tmp / "images")
    in_place = predict(str(out / "results" / "cascade.ckpt"), images[0].parent, tmp / "p.csv", tmp)
    alone = tmp / "alone"
    alone.mkdir()
    shutil.copy(out / "results" / "cascade.ckpt", alone / "cascade.ckpt")
    shutil.rmtree(out / "members")
    moved = predict("cascade.ckpt", images[0].parent, Path("predictions.csv"), alone)
    (alone / "predictions.csv").unlink()
    shutil.rmtree(alone / "lightning_logs")
    return {"alone": alone, "images": images, "in_place": in_place, "moved": moved}


@pytest.mark.slow  # the quick start pipeline, then predict twice in processes of their own
def test_the_quickstart_cascade_predicts_alone_in_an_empty_folder(travelled):
    assert travelled["moved"] == travelled["in_place"]
    stages = {r["exit_stage"] for r in travelled["in_place"]}
    assert stages == {"1", "2"} and len(travelled["in_place"]) == NUM_IMAGES


def session(leader: int) -> list[str]:
    """The processes of ``leader``'s session, with their command lines."""
    found = subprocess.run(["pgrep", "-a", "-s", str(leader)], capture_output=True, text=True)
    return found.stdout.splitlines()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def agrees(result: dict, row: dict) -> None:
    assert result["prediction"] == int(row["prediction"]), row["path"]
    assert result["exit_stage"] == int(row["exit_stage"]), row["path"]
    assert result["accepted"] == bool(int(row["accepted"])), row["path"]
    assert result["ood"] == bool(int(row["ood"])), row["path"]
    assert result["confidence"] == pytest.approx(float(row["confidence"]), abs=1e-6)
    assert result["members"] == ["m0", "m1"][: result["exit_stage"]]


@pytest.mark.slow  # the quick start pipeline, then a real server process (start-up: seconds)
def test_a_real_server_answers_as_predict_refuses_garbage_and_drains_on_sigterm(travelled):
    alone, images = travelled["alone"], travelled["images"]
    rows = {Path(r["path"]).name: r for r in travelled["moved"]}
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = open(alone.parent / "server.log", "w")
    command = [sys.executable, "-m", "window_cascades", "serve", "--ckpt_path", "cascade.ckpt"]
    server = subprocess.Popen(
        [*command, "--port", str(port), "--max_batch_size", "1", "--threads", "1"],
        cwd=alone,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        with httpx.Client(base_url=url, timeout=60) as client:
            deadline = time.monotonic() + 240
            while True:
                assert server.poll() is None, (alone.parent / "server.log").read_text()[-3000:]
                assert time.monotonic() < deadline, "not ready in 240 s"
                try:
                    if client.get("/health").status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                time.sleep(0.25)
            for f in images:
                answer = client.post("/predict", content=f.read_bytes())
                assert answer.status_code == 200, answer.text
                agrees(answer.json()["results"][0], rows[f.name])
            garbage = client.post("/predict", content=os.urandom(300))
            assert garbage.status_code == 400 and "not an image" in garbage.json()["detail"]
            again = client.post("/predict", content=images[0].read_bytes())
            assert again.status_code == 200
            agrees(again.json()["results"][0], rows[images[0].name])
            drained = drain_on_sigterm(server, client, url, images, rows)
        assert drained >= 8  # at least those inside the server at SIGTERM
        assert server.wait(timeout=120) == 0
        deadline = time.monotonic() + 20  # multiprocessing's resource tracker ends after main
        while left := session(server.pid):
            assert time.monotonic() < deadline, f"processes left in the server's session: {left}"
            time.sleep(0.2)
        assert sorted(p.name for p in alone.iterdir()) == ["cascade.ckpt"]  # nothing written
        said = (alone.parent / "server.log").read_text()
        assert f"on http://127.0.0.1:{port}" in said and "Traceback" not in said, said[-3000:]
    finally:
        if server.poll() is None:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait(timeout=60)
        log.close()


def drain_on_sigterm(server, client, url, images, rows) -> int:
    """16 requests of 64 test images each, sent at once; SIGTERM once at least 8 are inside the
    server (the server runs member 1 on one request at a time). A request the server accepted
    must be answered in full; one sent after it stopped listening may only be refused. Returns
    how many were answered."""
    answers: dict[int, httpx.Response | Exception] = {}
    sent = [images[i % len(images)] for i in range(64)]
    files = [("image", (f.name, f.read_bytes())) for f in sent]
    barrier = threading.Barrier(16)

    def send(i: int) -> None:
        with httpx.Client(timeout=120) as own:
            barrier.wait(timeout=60)
            try:
                answers[i] = own.post(f"{url}/predict", files=files)
            except httpx.TransportError as err:
                answers[i] = err

    threads = [threading.Thread(target=send, args=(i,)) for i in range(16)]
    for thread in threads:
        thread.start()
    deadline, inside = time.monotonic() + 60, 0
    while inside < 8:
        assert time.monotonic() < deadline and len(answers) < 16, "never 8 requests in flight"
        metrics = client.get("/metrics").text
        line = next(
            x
            for x in metrics.splitlines()
            if x.startswith('window_cascades_queue_depth{queue="requests"}')
        )
        inside = int(line.split()[-1])
        time.sleep(0.005)
    server.send_signal(signal.SIGTERM)
    for thread in threads:
        thread.join(timeout=180)
    answered = 0
    for answer in answers.values():
        if isinstance(answer, httpx.ConnectError):  # sent after the server stopped listening
            continue
        assert isinstance(answer, httpx.Response) and answer.status_code == 200, answer
        results = answer.json()["results"]
        assert len(results) == len(sent)
        for result, f in zip(results, sent, strict=True):
            agrees(result, rows[f.name])
        answered += 1
    return answered
