"""The serve load test's client and figures (``benchmarks/serve/load_test.py``), against a fake
server: open-loop arrivals independent of the answers, latency from the scheduled send time,
answers split into exited and passed on, and a wrong echoed id counted."""

import asyncio
import importlib.util
import math

import httpx
import pytest

from tests.conftest import ROOT

pytest.importorskip("litserve")  # the benchmark serves through the [serve] extra


@pytest.fixture(scope="module")
def load_test():
    path = ROOT / "benchmarks" / "serve" / "load_test.py"
    spec = importlib.util.spec_from_file_location("serve_load_test", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def fake_client(monkeypatch, load_test, delay: float, wrong: set[str]):
    """httpx.AsyncClient answering /predict after ``delay`` s: exit stage 2 for every fifth
    request number, 1 otherwise; the ids in ``wrong`` echoed wrongly."""
    seen = []

    async def handler(request: httpx.Request) -> httpx.Response:
        rid = request.headers["X-Request-Id"]
        seen.append(rid)
        await asyncio.sleep(delay)
        stage = 2 if int(rid.rsplit("-", 1)[1]) % 5 == 0 else 1
        echo = rid + "x" if rid in wrong else rid
        return httpx.Response(200, json={"request_id": echo, "results": [{"exit_stage": stage}]})

    real = httpx.AsyncClient

    def client(**kwargs):
        return real(transport=httpx.MockTransport(handler), timeout=kwargs.get("timeout"))

    monkeypatch.setattr(load_test.httpx, "AsyncClient", client)
    return seen


def test_open_loop_sends_at_the_rate_whatever_the_answers_take(monkeypatch, load_test):
    # answers take 0.3 s, far longer than the 0.01 s between arrivals: a closed-loop client
    # would send a handful; the open-loop one keeps the schedule
    seen = fake_client(monkeypatch, load_test, delay=0.3, wrong={"t-7"})
    records, seconds = asyncio.run(
        load_test.open_loop("http://fake", 100.0, 1.0, 0.5, [b"img"], seed=3, prefix="t")
    )
    assert seconds == 1.0
    assert 100 <= len(seen) <= 200  # Poisson, 100/s over 1.5 s: about 150
    assert len(records) < len(seen)  # the warm-up's requests are sent but not recorded
    assert len({r["id"] for r in records}) == len(records)
    # latency runs from the scheduled send time, so it includes the answer's 0.3 s
    assert min(r["latency"] for r in records) >= 0.3
    row = load_test.summarise(records, seconds)
    assert row["answered"] == len(records) and row["errors"] == 0
    assert row["mismatched_ids"] == (1 if any(r["id"] == "t-7" for r in records) else 0)
    passed = sum(1 for r in records if int(r["id"].rsplit("-", 1)[1]) % 5 == 0)
    assert row["passed_fraction"] == pytest.approx(passed / len(records))
    assert row["p50_exited_ms"] >= 300 and row["p50_passed_ms"] >= 300
    assert row["goodput"] == pytest.approx(len(records) / 1.0)


def test_summarise_counts_failures_and_keeps_the_quantiles_apart(load_test):
    records = [
        {"id": "a", "status": 200, "latency": 0.010, "echo": "a", "exit_stage": 1},
        {"id": "b", "status": 200, "latency": 0.020, "echo": "b", "exit_stage": 1},
        {"id": "c", "status": 200, "latency": 0.100, "echo": "c", "exit_stage": 2},
        {"id": "d", "status": 503, "latency": 0.001},
        {"id": "e", "status": "ReadTimeout", "latency": 120.0},
    ]
    row = load_test.summarise(records, 2.0)
    assert (row["requests"], row["answered"], row["errors"]) == (5, 3, 2)
    assert row["goodput"] == 1.5
    assert row["p50_exited_ms"] == pytest.approx(10.0)
    assert row["p99_exited_ms"] == pytest.approx(20.0)
    assert row["p50_passed_ms"] == pytest.approx(100.0)
    assert row["p50_all_ms"] == pytest.approx(20.0)
    assert row["passed_fraction"] == pytest.approx(1 / 3)
    assert math.isnan(load_test.summarise([], 1.0)["p50_all_ms"])
