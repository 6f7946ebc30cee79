"""The served cascade on LitServe: the worker's stage-aware loop driven step by step (a queue and
a recording transport, no process), and the HTTP endpoints in process (LitServe's test
wrapper and FastAPI's test client, one spawned worker). Answers are those of ``cascade
predict`` on the same files; bad requests get a 4xx with one line and the server goes on."""

from __future__ import annotations

import base64
import csv
import io
import queue
import struct
import time
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from tests.lightning_modules.test_cascade_data_input import write_cascade
from window_cascades.commands.cli_entry import CASCADE, run_command

pytest.importorskip("litserve", reason="the [serve] extra is not installed")

from window_cascades.commands.serve import build_parser, serve_settings  # noqa: E402
from window_cascades.commands.serve_app import (  # noqa: E402
    LITSERVE_ATTRIBUTES,
    LITSERVE_PRIVATE,
    CascadeAPI,
    CascadeServer,
)

NUM_IMAGES = 16


def write_served_cascade(folder: Path) -> tuple[str, list[Path]]:
    """write_cascade's cascade with its window refitted to pass on about half of the images
    written beside it (members untrained: their confidences are close to each other), and
    accept the more confident half of stage 1."""
    path = write_cascade(folder)
    rng = np.random.default_rng(5)
    files = []
    for i in range(NUM_IMAGES):
        size = (36, 36) if i % 3 else (40, 28)
        image = Image.fromarray(rng.integers(0, 255, (*size, 3), dtype=np.uint8))
        files.append(folder / "images" / f"{i:02d}.png")
        files[-1].parent.mkdir(exist_ok=True)
        image.save(files[-1])
    settings = settings_for(path)
    prep = settings.preparation
    x = prep.to_batch([prep.prepare(f.read_bytes()) for f in files])
    from window_cascades.lightning_modules.cascade_module import CascadeModule

    cascade = CascadeModule.load_from_checkpoint(path, weights_only=True).eval()
    conf = cascade.decide(x, "single")["confidence"]
    median = float(conf.median())
    ckpt = torch.load(path, weights_only=True)
    ckpt["fitted_cascade"]["policies"]["window"]["bounds"] = [[0.0, median]]
    ckpt["fitted_cascade"]["operating_points"]["window"]["accept"] = median
    torch.save(ckpt, path)
    return path, files


def settings_for(path: str, *options: str):
    settings, _, _ = serve_settings(build_parser().parse_args(["--ckpt_path", path, *options]))
    settings.threads = torch.get_num_threads()  # the test process's own
    return settings


def predicted(path: str, folder: Path, out: Path) -> dict[str, dict]:
    """``cascade predict`` on the folder: the decisions by file name."""
    inputs = f"--predictions.inputs={folder}"
    assert (
        run_command(
            CASCADE, ["predict", f"--ckpt_path={path}", inputs, f"--predictions.path={out}"]
        )
        == 0
    )
    with open(out) as f:
        return {Path(r["path"]).name: r for r in csv.DictReader(f)}


def agrees(result: dict, row: dict, names: list[str]) -> None:
    """A served decision equals predict's row (confidence to float rounding)."""
    assert result["prediction"] == int(row["prediction"])
    assert result["exit_stage"] == int(row["exit_stage"])
    assert result["accepted"] == bool(int(row["accepted"]))
    assert result["ood"] == bool(int(row["ood"]))
    assert result["confidence"] == pytest.approx(float(row["confidence"]), abs=1e-6)
    assert result["members"] == names[: result["exit_stage"]]


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    folder = tmp_path_factory.mktemp("served")
    path, files = write_served_cascade(folder)
    rows = predicted(path, folder / "images", folder / "predictions.csv")
    stages = [int(rows[f.name]["exit_stage"]) for f in files]
    assert 1 in stages and 2 in stages  # both stages are exercised
    return {"path": path, "files": files, "rows": rows}


class Transport:
    """Records what the loop answers, as LitServe's transport would carry it."""

    def __init__(self):
        self.sent: list = []

    def send(self, item, consumer_id):
        self.sent.append(item)

    def answers(self) -> dict:
        found = {}
        for uid, (body, status, _, _) in self.sent:
            assert status == "OK" and uid not in found
            found[uid] = body
        return found


def loop_api(path: str, scheduler: str = "stage", **options) -> CascadeAPI:
    settings = settings_for(path, "--scheduler", scheduler)
    for key, value in options.items():
        setattr(settings, key, value)
    api = CascadeAPI(settings, max_batch_size=8, batch_timeout=0.0)
    api.worker_signals = False  # not in this test process
    api.request_timeout = 30
    api.setup("cpu")
    return api


def request(api: CascadeAPI, files: list[Path], uid: str, queued_at: float | None = None):
    prep = api.settings.preparation
    images = [prep.prepare(f.read_bytes()) for f in files]
    return (
        0,
        uid,
        time.monotonic() if queued_at is None else queued_at,
        {"id": uid, "images": images},
    )


def step(api: CascadeAPI, requests: queue.Queue, transport: Transport) -> None:
    api.loop.run(api, "cpu", 0, requests, transport, {}, None)


def test_the_loop_answers_exited_requests_at_once_and_passed_ones_at_idle(served):
    api = loop_api(served["path"], stage_timeout=60.0)
    files, rows = served["files"], served["rows"]
    exits = [f for f in files if rows[f.name]["exit_stage"] == "1"][:3]
    passes = [f for f in files if rows[f.name]["exit_stage"] == "2"][:3]
    requests, transport = queue.Queue(), Transport()
    for f in [passes[0], exits[0], passes[1], exits[1], exits[2], passes[2]]:
        requests.put(request(api, [f], f.name))
    step(api, requests, transport)  # member 1 on all six; the exited three answer now
    assert sorted(transport.answers()) == sorted(f.name for f in exits)
    assert api.scheduler.waiting == 3 and api.scheduler.calls == [6, 0]
    step(api, requests, transport)  # no request waits: member 2 on the passed three
    answers = transport.answers()
    assert sorted(answers) == sorted(f.name for f in files if f in exits + passes)
    assert api.scheduler.calls == [6, 3]
    for uid, body in answers.items():
        assert body["request_id"] == uid and body["policy"] == "window"
        (result,) = body["results"]
        agrees(result, rows[uid], ["m0", "m1"])


def test_the_naive_loop_answers_a_batch_when_every_stage_is_done(served):
    api = loop_api(served["path"], "naive")
    requests, transport = queue.Queue(), Transport()
    files = served["files"][:6]
    requests.put(request(api, files[:2], "two"))
    for f in files[2:]:
        requests.put(request(api, [f], f.name))
    step(api, requests, transport)
    answers = transport.answers()
    assert len(answers) == 5 and api.scheduler.waiting == 0
    for result, f in zip(answers["two"]["results"], files[:2], strict=True):
        agrees(result, served["rows"][f.name], ["m0", "m1"])


def test_the_loop_refuses_bad_payloads_alone_and_times_out_old_requests(served):
    api = loop_api(served["path"])
    requests, transport = queue.Queue(), Transport()
    good = request(api, served["files"][:1], "good")
    requests.put((0, "empty", time.monotonic(), {"id": "empty", "images": []}))
    requests.put((0, "shape", time.monotonic(), {"id": "shape", "images": [np.zeros((5, 5, 1))]}))
    requests.put((0, "junk", time.monotonic(), "not a payload"))
    requests.put(request(api, served["files"][:1], "old", queued_at=time.monotonic() - 100))
    requests.put(good)
    step(api, requests, transport)
    step(api, requests, transport)
    answers = transport.answers()
    for uid in ("empty", "shape", "junk"):
        assert answers[uid]["error"]["status"] == 400, answers[uid]
        assert answers[uid]["error"]["detail"].startswith("malformed request payload")
    assert answers["old"]["error"] == {
        "status": 504,
        "detail": "the request waited more than 30 s (--timeout)",
    }
    assert answers["good"]["results"][0]["prediction"] == int(
        served["rows"][served["files"][0].name]["prediction"]
    )


def test_the_stop_sentinel_answers_everything_still_waiting(served):
    from litserve.loops.base import _SENTINEL_VALUE

    api = loop_api(served["path"], stage_timeout=60.0)
    passes = [f for f in served["files"] if served["rows"][f.name]["exit_stage"] == "2"]
    requests, transport = queue.Queue(), Transport()
    requests.put(request(api, passes[:2], "both"))
    requests.put(_SENTINEL_VALUE)
    step(api, requests, transport)
    assert list(transport.answers()) == ["both"] and api.scheduler.waiting == 0


def test_litserve_has_what_the_wiring_relies_on():
    import importlib

    import litserve

    for name in LITSERVE_PRIVATE:
        module, _, attribute = name.rpartition(".")
        try:
            owner = importlib.import_module(module)
        except ModuleNotFoundError:
            module, _, cls = module.rpartition(".")
            owner = getattr(importlib.import_module(module), cls)
        assert hasattr(owner, attribute), f"litserve {litserve.__version__} has no {name}"


# -- HTTP, in process -------------------------------------------------------------------------


def png(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, "PNG")
    return buf.getvalue()


def bomb() -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    header = struct.pack(">IIBBBBB", 50_000, 50_000, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b""))
        + chunk(b"IEND", b"")
    )


@pytest.fixture(scope="module")
def client(served):
    from fastapi.testclient import TestClient
    from litserve.utils import wrap_litserve_start

    settings = settings_for(served["path"], "--max_images", "4")
    settings.token = "s3cret"
    api = CascadeAPI(settings, max_batch_size=8, batch_timeout=0.001)
    server = CascadeServer(api, settings, None, max_body=60_000, accelerator="cpu", timeout=30)
    for attribute in LITSERVE_ATTRIBUTES:
        assert hasattr(server, attribute), attribute
    with wrap_litserve_start(server) as started, TestClient(started.app) as test_client:
        deadline = time.monotonic() + 180
        while test_client.get("/health").status_code != 200:  # the worker imports and loads
            assert time.monotonic() < deadline, "the worker did not get ready in 180 s"
            time.sleep(0.2)
        test_client.headers["Authorization"] = "Bearer s3cret"
        yield test_client, server


@pytest.mark.slow  # spawns LitServe's inference worker (imports torch, Lightning, timm)
def test_http_answers_equal_cascade_predict_for_every_way_of_sending(served, client):
    test_client, _ = client
    files, rows = served["files"], served["rows"]
    for f in files:  # one image as the raw body
        answer = test_client.post(
            "/predict", content=f.read_bytes(), headers={"X-Request-Id": f.name}
        )
        assert answer.status_code == 200 and answer.headers["X-Request-Id"] == f.name
        body = answer.json()
        assert body["request_id"] == f.name and body["policy"] == "window"
        agrees(body["results"][0], rows[f.name], ["m0", "m1"])
    several = files[:3]
    multipart = test_client.post(
        "/predict", files=[("image", (f.name, f.read_bytes())) for f in several]
    )
    as_json = test_client.post(
        "/predict", json=[base64.b64encode(f.read_bytes()).decode() for f in several]
    )
    wrapped = test_client.post(
        "/predict", json={"images": [base64.b64encode(several[0].read_bytes()).decode()]}
    )
    for answer, expected in ((multipart, several), (as_json, several), (wrapped, several[:1])):
        assert answer.status_code == 200, answer.text
        for result, f in zip(answer.json()["results"], expected, strict=True):
            agrees(result, rows[f.name], ["m0", "m1"])


@pytest.mark.slow  # spawns LitServe's inference worker (imports torch, Lightning, timm)
def test_http_refuses_bad_requests_in_one_line_and_goes_on_serving(served, client):
    test_client, server = client
    good = served["files"][0].read_bytes()
    noise = np.random.default_rng(0).integers(0, 255, (160, 160, 3), dtype=np.uint8)
    cases = [
        (b"\x00\x01garbage bytes", 400, "not an image"),
        (b"GIF89a" + bytes(64), 415, "image format gif is not accepted (accepted: png, jpeg)"),
        (bomb(), 413, "image is 50000 x 50000 = 2,500,000,000 pixels"),
        (good[: len(good) // 2], 400, "unreadable png image"),
        (png(np.zeros((3, 40), np.uint8)), 400, "its sides must be at least 8"),
        (png(noise), 413, "over the limit of 60,000 (--max_body)"),
        (b"", 400, "empty body"),
    ]
    for body, status, reason in cases:
        answer = test_client.post("/predict", content=body)
        assert answer.status_code == status, (reason, answer.text)
        detail = answer.json()["detail"]
        assert reason in detail and "\n" not in detail, detail
        assert test_client.post("/predict", content=good).status_code == 200  # still serving
    too_many = test_client.post("/predict", files=[("f", (f"{i}.png", good)) for i in range(5)])
    assert too_many.status_code == 413 and "(--max_images)" in too_many.json()["detail"]
    for body, reason in [
        (b"[1, 2]", "unexpected JSON body"),
        (b'["%%%"]', "not valid base64"),
        (b"{", "not valid JSON"),
    ]:
        answer = test_client.post(
            "/predict", content=body, headers={"Content-Type": "application/json"}
        )
        assert answer.status_code == 400 and reason in answer.json()["detail"]
    # the token: /predict, /info and /metrics need it, /health does not
    bare = {"Authorization": ""}
    refused = test_client.post("/predict", content=good, headers=bare)
    assert refused.status_code == 401 and refused.headers["WWW-Authenticate"] == "Bearer"
    assert test_client.get("/metrics", headers=bare).status_code == 401
    assert test_client.get("/info", headers=bare).status_code == 401
    assert test_client.get("/health", headers=bare).text == "ok"
    # a full server answers 503 at once (the bound is the requests in the server)
    server.metrics.in_flight = server.settings.max_queue
    try:
        busy = test_client.post("/predict", content=good)
    finally:
        server.metrics.in_flight = 0
    assert busy.status_code == 503 and busy.headers["Retry-After"] == "1"
    assert "server busy: 256 requests in the server (--max_queue 256)" in busy.json()["detail"]
    metrics = test_client.get("/metrics")
    assert metrics.headers["content-type"].startswith("text/plain; version=0.0.4")
    assert 'window_cascades_requests_total{code="415"} 1' in metrics.text
    assert 'window_cascades_requests_total{code="503"} 1' in metrics.text
    info = test_client.get("/info").json()
    assert [m["name"] for m in info["members"]] == ["m0", "m1"] and info["policy"] == "window"
