"""Measured adaptive inference: latency and throughput of a cascade with real early exit.

The live source runs member k only on the samples passed on to it, so a window cascade
really skips the later members for samples that exit early. Timings use
``time.perf_counter`` and, on CUDA, synchronise the device before reading the clock.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass

import torch

from window_cascades.cascade.engine import run_cascade
from window_cascades.cascade.policies import CascadePolicy
from window_cascades.cascade.streaming import StreamingCascade


@dataclass
class Timing:
    """Latency at batch 1 (seconds per sample) and throughput at a large batch (samples/s)."""

    latency_median: float
    latency_p90: float
    throughput: float
    latency_samples: int
    throughput_batch: int


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


@torch.inference_mode()
def cascade_forward(
    members: list[torch.nn.Module],
    x: torch.Tensor,
    policy: CascadePolicy,
    score: str,
    sample_ids: torch.Tensor | None = None,
) -> torch.Tensor:
    """Predicted classes of a batch, running member k + 1 only on the samples passed on."""

    def source(k: int, index: torch.Tensor) -> torch.Tensor:
        return members[k](x[index.to(x.device)]).float().cpu()

    return run_cascade(source, x.shape[0], policy, score, sample_ids).probs.argmax(-1)


def measure(
    members: list[torch.nn.Module],
    policy: CascadePolicy,
    score: str,
    images: torch.Tensor,
    latency_samples: int = 200,
    warmup: int = 20,
    batch_size: int = 256,
    device: str | torch.device = "cpu",
    throughput_repeats: int = 3,
    queued: bool = False,
) -> Timing:
    """Batch-1 latency over ``latency_samples`` images (after ``warmup``; median and p90) and
    throughput over all ``images`` in batches of ``batch_size`` (median of
    ``throughput_repeats`` passes, after 3 warm-up batches). ``queued``: the throughput pass
    gathers passed-on samples across batches
    ([`window_cascades.cascade.streaming.StreamingCascade`][]), so later members run on full
    batches."""
    device = torch.device(device)
    members = [m.to(device).eval() for m in members]
    images = images.to(device)
    n = images.shape[0]
    ids = torch.arange(n)
    for i in range(warmup):
        cascade_forward(members, images[i % n : i % n + 1], policy, score, ids[i % n : i % n + 1])
    times = []
    for i in range(latency_samples):
        x, sid = images[i % n : i % n + 1], ids[i % n : i % n + 1]
        _sync(device)
        t = time.perf_counter()
        cascade_forward(members, x, policy, score, sid)
        _sync(device)
        times.append(time.perf_counter() - t)
    for _ in range(3):  # warm-up at full batch (allocator, cuDNN algorithm choice)
        cascade_forward(members, images[:batch_size], policy, score, ids[:batch_size])
    rates = []
    for _ in range(throughput_repeats):
        _sync(device)
        t = time.perf_counter()
        if queued:
            stream = StreamingCascade(members, policy, score, batch_size)
            for s in range(0, n, batch_size):
                stream.push(images[s : s + batch_size], ids[s : s + batch_size])
            stream.finish().probs.argmax(-1)
        else:
            for s in range(0, n, batch_size):
                batch = slice(s, s + batch_size)
                cascade_forward(members, images[batch], policy, score, ids[batch])
        _sync(device)
        rates.append(n / (time.perf_counter() - t))
    return Timing(
        latency_median=statistics.median(times),
        latency_p90=statistics.quantiles(times, n=10)[-1],
        throughput=statistics.median(rates),
        latency_samples=latency_samples,
        throughput_batch=batch_size,
    )
