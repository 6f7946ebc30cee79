"""How close a member's input, adapted from a shared data config, is to its own timm input.

A cascade feeds every member from one data config; each member adapts the batch to its own
resolution, crop, interpolation and normalisation (``lightning_modules/member_input.py``).
This compares, on your own images, the member's input made that way with the input timm's
evaluation transform makes for the member straight from the source image:

    python benchmarks/member_input/benchmark_member_input.py --images DIR \\
        --member efficientnet_b0 \\
        --data efficientnet_b2 --data-size 260 --data-crop 1.0

and prints, over the images, the root-mean-square difference in the member's normalised
units and the PSNR in [0, 1] pixels (higher is closer), also for the same adaptation without
the crop (resize and renormalise only), to show what the crop adjustment buys.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import torch  # noqa: E402
from PIL import Image  # noqa: E402

from window_cascades.datamodules.prepared_images import eval_transform, timm_data_config  # noqa: E402
from window_cascades.lightning_modules.member_input import MemberInput  # noqa: E402

SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".webp"}


def prepared(image: Image.Image, cfg: dict) -> torch.Tensor:
    """``image`` through ``cfg``'s evaluation transform, normalised: 1 x 3 x S x S."""
    x = eval_transform(cfg["input_size"][-1], cfg["crop_pct"], cfg["interpolation"])(image)
    mean, std = (torch.tensor(cfg[k]).view(3, 1, 1) for k in ("mean", "std"))
    return ((x - mean) / std).unsqueeze(0)


def adapted(x: torch.Tensor, member: dict, data: dict, crop: bool) -> torch.Tensor:
    """The data config's batch ``x`` as the member's input makes it."""
    norm = (tuple(member["mean"]), tuple(member["std"]))
    value = MemberInput(
        member["input_size"][-1],
        norm,
        member["crop_pct"] if crop else None,
        member["interpolation"],
        data_normalization=(tuple(data["mean"]), tuple(data["std"])),
        data_crop_pct=data["crop_pct"],
    )
    return value.apply(x, training=False)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", required=True, help="a folder of RGB images")
    parser.add_argument("--member", required=True, help="timm model whose input is compared")
    parser.add_argument("--data", required=True, help="timm model of the shared data config")
    for who in ("member", "data"):
        parser.add_argument(f"--{who}-size", type=int, help=f"override of the {who}'s input size")
        parser.add_argument(f"--{who}-crop", type=float, help=f"override of the {who}'s crop_pct")
    args = parser.parse_args(argv)
    files = sorted(p for p in Path(args.images).rglob("*") if p.suffix.lower() in SUFFIXES)
    if not files:
        parser.error(f"--images {args.images}: no images ({', '.join(sorted(SUFFIXES))})")
    member, data = dict(timm_data_config(args.member)), dict(timm_data_config(args.data))
    for cfg, size, crop in (
        (member, args.member_size, args.member_crop),
        (data, args.data_size, args.data_crop),
    ):
        if size:
            cfg["input_size"] = (3, size, size)
        if crop:
            cfg["crop_pct"] = crop
    std = torch.tensor(member["std"]).view(1, 3, 1, 1)
    sums = {"with crop": [0.0, 0.0], "resize only": [0.0, 0.0]}
    for path in files:
        image = Image.open(path).convert("RGB")
        own, shared = prepared(image, member), prepared(image, data)
        for label, crop in (("with crop", True), ("resize only", False)):
            diff = adapted(shared, member, data, crop) - own
            sums[label][0] += float(diff.pow(2).mean())
            sums[label][1] += float((diff * std).pow(2).mean())  # in [0, 1] pixels

    def describe(cfg: dict) -> str:
        return f"{cfg['input_size'][-1]} px crop {cfg['crop_pct']} {cfg['interpolation']}"

    print(
        f"{len(files)} images; member {args.member} {describe(member)}; "
        f"data {args.data} {describe(data)}"
    )
    print("| adaptation | RMS difference (normalised units) | PSNR (dB) |")
    print("| --- | --- | --- |")
    for label, (sq, sq_pixels) in sums.items():
        rms, mse = math.sqrt(sq / len(files)), sq_pixels / len(files)
        print(f"| {label} | {rms:.4f} | {10 * math.log10(1 / mse):.1f} |")


if __name__ == "__main__":
    main()
