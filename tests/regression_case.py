"""The small fixed case of the output regression test: seeded logits in the cached layout."""

from pathlib import Path

import torch

SIZES = {"held": 300, "test": 400, "noisy": 200, "far": 150}
CLASSES = 5
ARGS = [
    "--members",
    "m0",
    "m1",
    "m2",
    "--heldout",
    "held",
    "--id",
    "test",
    "--shift",
    "noisy",
    "--ood",
    "far",
    "--score",
    "msp",
    "--target",
    "cov@10",
    "--width",
    "0.1",
    "0.2",
    "--pass-fraction",
    "0.15",
    "0.3",
    "--risks",
    "0.05",
    "0.1",
    "--coverages",
    "0.7",
    "0.9",
    "--policies",
    "single,ensemble,single_threshold,window,window_adjusted,random",
    "--temperature-scaling",
    "--quiet",
]


def write_case(directory: Path) -> Path:
    """Three members' logits on four datasets (fixed seed), and their meta.json."""
    from window_cascades.artifacts.cached_logits import save_cached_logits
    from window_cascades.artifacts.member_meta import save_member_meta

    gen = torch.Generator().manual_seed(1234)
    for name, n in SIZES.items():
        ood = name == "far"
        targets = torch.full((n,), -1) if ood else torch.randint(CLASSES, (n,), generator=gen)
        shared = torch.randn(n, CLASSES, generator=gen)
        if not ood:
            shared[torch.arange(n), targets] += 2.0 if name != "noisy" else 0.8
        for k in range(3):
            noise = torch.randn(n, CLASSES, generator=gen)
            save_cached_logits(directory, f"m{k}", name, 1.5 * (shared + 0.8 * noise), targets)
    for k, macs in enumerate((1e6, 2e6, 4e6)):
        meta = {"model_name": "synthetic", "macs": macs, "params": 1, "num_classes": CLASSES}
        save_member_meta(directory, f"m{k}", meta)
    return directory
