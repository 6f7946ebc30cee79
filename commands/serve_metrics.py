"""What a served cascade counts, as Prometheus text (``GET /metrics``).

``ServeMetrics`` lives in the server's HTTP process (one per server: ``serve`` runs one)
and is updated once per answered request; ``ServeMetrics.render`` writes the Prometheus
text exposition format 0.0.4 (``text/plain; version=0.0.4``) that Prometheus scrapes:

* ``window_cascades_requests_total{code}``: requests answered, by HTTP status;
* ``window_cascades_images_total``: images answered (a request may send several);
* ``window_cascades_exits_total{stage}`` and ``window_cascades_exit_fraction{stage}``: images
  that exited at cascade stage ``stage`` (1 = the first member), and their share;
* ``window_cascades_request_latency_seconds{exited, quantile}`` with ``_sum`` and ``_count``:
  latency percentiles (0.5, 0.95, 0.99) of the last ``WINDOW`` successful requests,
  overall (``exited="all"``), of those whose images all exited at stage 1 (``"true"``) and of
  the others (``"false"``); ``_sum``/``_count`` over every successful request;
* ``window_cascades_queue_depth{queue}``: requests in the server (``requests``: received and
  not yet answered) and images waiting for a member after the first (``stage2``).

The standard library only: nothing here imports a server framework.
"""

from __future__ import annotations

import math
import threading
from collections import Counter, deque
from collections.abc import Callable

WINDOW = 10_000  # latencies kept for the percentiles
QUANTILES = (0.5, 0.95, 0.99)
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def percentile(values: list[float], q: float) -> float:
    """The ``q`` quantile (0..1) of ``values`` by the nearest-rank rule (NaN when empty)."""
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]


class ServeMetrics:
    """Counters and latency windows of one server (thread-safe).

    Args:
        num_stages: the cascade's stages (members).
        stage_depth: returns the images waiting for a member after the first (None: 0).
    """

    def __init__(self, num_stages: int, stage_depth: Callable[[], int] | None = None):
        self.num_stages = num_stages
        self.stage_depth = stage_depth or (lambda: 0)
        self.in_flight = 0  # requests received and not yet answered
        self._lock = threading.Lock()
        self._codes: Counter[int] = Counter()
        self._exits = [0] * num_stages
        self._latency: dict[str, deque] = {k: deque(maxlen=WINDOW) for k in ("true", "false")}
        self._sums = {"true": 0.0, "false": 0.0}
        self._counts = {"true": 0, "false": 0}

    def observe(self, code: int, seconds: float, exit_stages: list[int] | None = None) -> None:
        """Count one answered request: its HTTP status, its latency in seconds and (when
        answered with decisions) each image's exit stage (from 1)."""
        with self._lock:
            self._codes[code] += 1
            if not exit_stages:
                return
            for stage in exit_stages:
                self._exits[stage - 1] += 1
            kind = "true" if max(exit_stages) == 1 else "false"
            self._latency[kind].append(seconds)
            self._sums[kind] += seconds
            self._counts[kind] += 1

    def render(self) -> str:
        """The Prometheus text of every metric (see the module docstring)."""
        with self._lock:
            codes, exits = dict(self._codes), list(self._exits)
            windows = {k: list(v) for k, v in self._latency.items()}
            sums, counts = dict(self._sums), dict(self._counts)
        windows["all"] = windows["true"] + windows["false"]
        sums["all"], counts["all"] = sum(sums.values()), sum(counts.values())
        images = sum(exits)
        name = "window_cascades"
        lines = [
            f"# HELP {name}_requests_total Requests answered, by HTTP status.",
            f"# TYPE {name}_requests_total counter",
            *(f'{name}_requests_total{{code="{c}"}} {n}' for c, n in sorted(codes.items())),
            f"# HELP {name}_images_total Images answered with a decision.",
            f"# TYPE {name}_images_total counter",
            f"{name}_images_total {images}",
            f"# HELP {name}_exits_total Images that exited at each cascade stage.",
            f"# TYPE {name}_exits_total counter",
            *(f'{name}_exits_total{{stage="{k + 1}"}} {n}' for k, n in enumerate(exits)),
            f"# HELP {name}_exit_fraction Share of the answered images that exited at each stage.",
            f"# TYPE {name}_exit_fraction gauge",
            *(
                f'{name}_exit_fraction{{stage="{k + 1}"}} {n / images if images else 0.0:.6g}'
                for k, n in enumerate(exits)
            ),
            f"# HELP {name}_request_latency_seconds Latency of successful requests (exited: "
            "every image exited at stage 1).",
            f"# TYPE {name}_request_latency_seconds summary",
        ]
        for kind in ("all", "true", "false"):
            for q in QUANTILES:
                value = percentile(windows[kind], q)
                shown = "NaN" if math.isnan(value) else f"{value:.6g}"
                lines.append(
                    f'{name}_request_latency_seconds{{exited="{kind}",quantile="{q}"}} {shown}'
                )
            lines.append(f'{name}_request_latency_seconds_sum{{exited="{kind}"}} {sums[kind]:.6g}')
            lines.append(f'{name}_request_latency_seconds_count{{exited="{kind}"}} {counts[kind]}')
        lines += [
            f"# HELP {name}_queue_depth Requests in the server; images waiting for member 2 or "
            "later.",
            f"# TYPE {name}_queue_depth gauge",
            f'{name}_queue_depth{{queue="requests"}} {self.in_flight}',
            f'{name}_queue_depth{{queue="stage2"}} {int(self.stage_depth())}',
        ]
        return "\n".join(lines) + "\n"
