"""Training throughput of one member: the Lightning loop (MemberModule) vs a plain PyTorch loop.

    python benchmarks/training/benchmark_training_throughput.py --models efficientnet_b0 resnet50 \
        --image-size 224 --batch-size 256 --precision 16-mixed --channels-last \
        --out benchmarks/training/throughput_gpu.csv

Both loops train the same timm model with the same optimiser (SGD momentum 0.9, warm-up +
cosine schedule), mixed precision and memory format, on the same pre-built batches of
synthetic images (so that data loading is not what is measured), and are timed with the device
synchronised, after warm-up steps. The two loops alternate (plain, Lightning, plain, Lightning)
and the median of the repeats is reported. The Lightning step also logs loss and accuracy, as
a member does in real training. Needs a CUDA device for the AMP figures; runs on CPU (fp32)
for a smoke check.
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import time
from pathlib import Path

import timm
import torch
import torch.nn.functional as F
from lightning.pytorch import Callback, Trainer
from torch.utils.data import DataLoader, Dataset

from window_cascades.artifacts.atomic import write_csv
from window_cascades.lightning_modules.member import MemberModule


class BatchPool(Dataset):
    """``length`` batches cycled from a few pre-built ones: (images, labels, indices)."""

    def __init__(self, pool: int, batch: int, size: int, classes: int, length: int):
        gen = torch.Generator().manual_seed(0)
        self.x = torch.randn(pool, batch, 3, size, size, generator=gen)
        self.y = torch.randint(0, classes, (pool, batch), generator=gen)
        self.length = length

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, i: int):
        k = i % self.x.shape[0]
        return self.x[k], self.y[k], torch.arange(self.x.shape[1])


def loader(args, length: int) -> DataLoader:
    pool = BatchPool(4, args.batch_size, args.image_size, args.num_classes, length)
    return DataLoader(pool, batch_size=None, shuffle=False, pin_memory=True, num_workers=2)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class StepTimer(Callback):
    """Seconds from the start of batch ``warmup`` to the end of training (synchronised)."""

    def __init__(self, warmup: int):
        self.warmup, self.start, self.seconds = warmup, None, None

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if batch_idx == self.warmup:
            sync(pl_module.device)
            self.start = time.perf_counter()

    def on_train_end(self, trainer, pl_module) -> None:
        sync(pl_module.device)
        self.seconds = time.perf_counter() - self.start


def lightning_run(args, device: torch.device) -> float:
    torch.manual_seed(0)
    module = MemberModule(
        args.model,
        num_classes=args.num_classes,
        in_chans=3,
        lr=0.1,
        channels_last=args.channels_last,
    )
    timer = StepTimer(args.warmup)
    trainer = Trainer(
        accelerator=device.type,
        devices=1,
        precision=args.precision,
        max_steps=args.warmup + args.steps,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        limit_val_batches=0,
        num_sanity_val_steps=0,
        callbacks=[timer],
    )
    trainer.fit(module, train_dataloaders=loader(args, args.warmup + args.steps))
    return args.steps * args.batch_size / timer.seconds


def plain_run(args, device: torch.device) -> float:
    torch.manual_seed(0)
    model = timm.create_model(args.model, num_classes=args.num_classes, in_chans=3).to(device)
    fmt = torch.channels_last if args.channels_last else torch.contiguous_format
    model = model.to(memory_format=fmt).train()
    opt = torch.optim.SGD(
        model.parameters(), lr=0.1, momentum=0.9, nesterov=True, weight_decay=5e-4
    )
    total = args.warmup + args.steps
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: 0.5 * (1 + math.cos(math.pi * s / total))
    )
    amp = args.precision in ("16-mixed", "bf16-mixed") and device.type == "cuda"
    dtype = torch.float16 if args.precision == "16-mixed" else torch.bfloat16
    scaler = torch.amp.GradScaler("cuda", enabled=amp and dtype == torch.float16)
    start = None
    for i, (x, y, _) in enumerate(loader(args, total)):
        if i == args.warmup:
            sync(device)
            start = time.perf_counter()
        x = x.to(device, non_blocking=True).contiguous(memory_format=fmt)
        y = y.to(device, non_blocking=True)
        with torch.autocast(device.type, dtype=dtype, enabled=amp):
            loss = F.cross_entropy(model(x), y)
        opt.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()
        sched.step()
    sync(device)
    return args.steps * args.batch_size / (time.perf_counter() - start)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--models", nargs="+", default=["efficientnet_b0"])
    p.add_argument("--image-size", type=int, default=224)
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--num-classes", type=int, default=1000)
    p.add_argument("--precision", default="16-mixed", help="32, 16-mixed or bf16-mixed")
    p.add_argument("--channels-last", action="store_true")
    p.add_argument("--steps", type=int, default=50, help="timed steps per run")
    p.add_argument("--warmup", type=int, default=10, help="untimed steps per run")
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--out", type=Path, required=True)
    args = p.parse_args(argv)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    rows = []
    for model in args.models:
        args.model = model
        speeds = {"plain": [], "lightning": []}
        for _ in range(args.repeats):
            speeds["plain"].append(plain_run(args, device))
            speeds["lightning"].append(lightning_run(args, device))
        for loop, values in speeds.items():
            rows.append(
                {
                    "model": model,
                    "loop": loop,
                    "device": name,
                    "precision": args.precision,
                    "channels_last": args.channels_last,
                    "image_size": args.image_size,
                    "batch_size": args.batch_size,
                    "timed_steps": args.steps,
                    "images_per_s": round(statistics.median(values), 1),
                    "runs": " ".join(f"{v:.1f}" for v in values),
                }
            )
            print(rows[-1], flush=True)
        ratio = rows[-1]["images_per_s"] / rows[-2]["images_per_s"]
        print(f"{model}: Lightning / plain throughput = {ratio:.3f}", flush=True)
    write_csv(args.out, rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
