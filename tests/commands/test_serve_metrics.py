"""A served cascade's metrics as Prometheus text: requests by status, exits by stage, latency
percentiles of exited and passed-on requests, queue depths."""

from __future__ import annotations

import math
import re

from window_cascades.commands.serve_metrics import ServeMetrics, percentile


def parse(text: str) -> dict[str, float]:
    """``name{labels} value`` lines as a dict (comments skipped)."""
    found = {}
    for line in text.splitlines():
        if line.startswith("#"):
            continue
        key, value = line.rsplit(" ", 1)
        found[key] = float(value)
    return found


def test_percentiles_by_the_nearest_rank():
    assert percentile([3.0, 1.0, 2.0, 4.0], 0.5) == 2.0
    assert percentile([3.0, 1.0, 2.0, 4.0], 0.95) == 4.0
    assert percentile([5.0], 0.99) == 5.0 and math.isnan(percentile([], 0.5))


def test_the_text_counts_requests_exits_latencies_and_queues():
    waiting = {"n": 3}
    metrics = ServeMetrics(2, lambda: waiting["n"])
    for ms in range(1, 101):  # exited requests: 1..100 ms
        metrics.observe(200, ms / 1000, [1])
    metrics.observe(200, 0.5, [1, 2])  # one image passed on: the request is not "exited"
    metrics.observe(200, 0.7, [2])
    metrics.observe(400, 0.001)
    metrics.observe(503, 0.0002)
    metrics.in_flight = 4
    text = metrics.render()
    values = parse(text)
    assert values['window_cascades_requests_total{code="200"}'] == 102
    assert values['window_cascades_requests_total{code="400"}'] == 1
    assert values['window_cascades_requests_total{code="503"}'] == 1
    assert values["window_cascades_images_total"] == 103
    assert values['window_cascades_exits_total{stage="1"}'] == 101
    assert values['window_cascades_exits_total{stage="2"}'] == 2
    assert values['window_cascades_exit_fraction{stage="2"}'] == float(f"{2 / 103:.6g}")
    latency = "window_cascades_request_latency_seconds"
    assert values[f'{latency}{{exited="true",quantile="0.5"}}'] == 0.05
    assert values[f'{latency}{{exited="true",quantile="0.99"}}'] == 0.099
    assert values[f'{latency}{{exited="false",quantile="0.5"}}'] == 0.5
    assert values[f'{latency}_count{{exited="all"}}'] == 102
    assert values[f'{latency}_sum{{exited="false"}}'] == 1.2
    assert values['window_cascades_queue_depth{queue="requests"}'] == 4
    assert values['window_cascades_queue_depth{queue="stage2"}'] == 3
    # every sample line is name{labels} value; every metric has HELP and TYPE
    names = set(re.findall(r"^# TYPE (\S+) (counter|gauge|summary)$", text, re.M))
    assert len(names) == 6 and text.endswith("\n")
    assert "NaN" not in text


def test_no_request_yet_gives_nan_percentiles():
    values = parse(ServeMetrics(3).render())
    assert math.isnan(
        values['window_cascades_request_latency_seconds{exited="all",quantile="0.5"}']
    )
    assert values['window_cascades_exits_total{stage="3"}'] == 0
    assert values['window_cascades_queue_depth{queue="stage2"}'] == 0
