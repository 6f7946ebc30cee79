"""Time single model, full ensemble and a cascade that passes a fixed fraction, per architecture.

    python benchmarks/streaming/benchmark_cascade_timing.py --models resnet10t resnet18 \
        --pass-fraction 0.2 --device cuda --out timing_gpu.csv

Latency and throughput depend on the architectures and on how many samples reach the second
member, not on the weights: this script uses untrained timm models and the ``random`` policy
with ``--pass-fraction`` (set it to the window cascade's measured ID pass fraction), so it can
run where trained checkpoints cannot travel. On CUDA the timings synchronise the device.
"""

from __future__ import annotations

import argparse
import sys

import timm
import torch

from window_cascades.artifacts.atomic import write_csv
from window_cascades.cascade.policies import RandomPolicy, ensemble_policy, single_policy
from window_cascades.cascade.timing import measure


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--models", nargs="+", required=True)
    p.add_argument("--pass-fraction", type=float, default=0.2)
    p.add_argument("--image-size", type=int, default=32)
    p.add_argument("--in-chans", type=int, default=1)
    p.add_argument("--num-classes", type=int, default=10)
    p.add_argument("--samples", type=int, default=3000, help="images for throughput")
    p.add_argument("--latency-samples", type=int, default=300)
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--device", default="cpu")
    p.add_argument(
        "--queued",
        action="store_true",
        help="also time the cascade that gathers passed samples across batches",
    )
    p.add_argument("--out", required=True)
    args = p.parse_args(argv)
    device = torch.device(args.device)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    gen = torch.Generator().manual_seed(0)
    images = torch.randn(
        args.samples, args.in_chans, args.image_size, args.image_size, generator=gen
    )
    rows = []
    for model in args.models:
        members = [
            timm.create_model(model, num_classes=args.num_classes, in_chans=args.in_chans)
            for _ in range(2)
        ]
        cascade = RandomPolicy(2, args.pass_fraction, seed=0)
        policies = {
            "single": (single_policy(2), False),
            "ensemble": (ensemble_policy(2), False),
            f"cascade(pass={args.pass_fraction:g})": (cascade, False),
        }
        if args.queued:
            policies[f"cascade(pass={args.pass_fraction:g},queued)"] = (cascade, True)
        timed = {}
        for label, (policy, queued) in policies.items():
            timed[label] = measure(
                members,
                policy,
                "msp",
                images,
                args.latency_samples,
                20,
                args.batch_size,
                device,
                queued=queued,
            )
        for label, t in timed.items():
            # the MACs-predicted speed-up over the ensemble: 2 members vs 1 + pass fraction
            predicted = {"single": 2.0, "ensemble": 1.0}.get(label, 2 / (1 + args.pass_fraction))
            measured = t.throughput / timed["ensemble"].throughput
            rows.append(
                {
                    "model": model,
                    "policy": label,
                    "device": name,
                    "image_size": args.image_size,
                    "batch_size": args.batch_size,
                    "latency_median_ms": round(t.latency_median * 1e3, 4),
                    "latency_p90_ms": round(t.latency_p90 * 1e3, 4),
                    "throughput_img_s": round(t.throughput, 1),
                    "vs_ensemble": round(measured, 3),
                    "macs_predicted": round(predicted, 3),
                    "measured_over_predicted": round(measured / predicted, 3),
                }
            )
            print(rows[-1], flush=True)
    write_csv(args.out, rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
