"""A small seeded case of cached logits with features: two members whose features are
class-clustered and non-negative (post-ReLU-like), their heads, on a training split, a held-out
split, an ID test set, a far OOD set and an OOD validation set, in the layout the caching step
writes (``window_cascades.artifacts.cached_features``)."""

from __future__ import annotations

from pathlib import Path

import torch

CLASSES, DIM = 5, 32
SIZES = {"train": 1200, "held": 400, "test": 500, "far": 300, "val_ood": 200}
OOD = ("far", "val_ood")
ARGS = ["--members", "m0", "m1", "--heldout", "held", "--id", "test", "--ood", "far"]


def write_feature_case(directory: Path, seed: int = 0, far_seed: int | None = None) -> Path:
    """Write the case into ``directory`` (returned); ``far_seed`` draws the far OOD set's
    features from another seed (every other file is the same)."""
    from window_cascades.artifacts.cached_features import save_cached_features, save_head
    from window_cascades.artifacts.cached_logits import new_generation, save_cached_logits
    from window_cascades.artifacts.member_meta import save_member_meta
    from window_cascades.uncertainty.feature_scores import LinearHead

    g = torch.Generator().manual_seed(seed)
    centres = torch.randn(CLASSES, DIM, generator=g) * 2
    labels = {
        n: torch.full((k,), -1) if n in OOD else torch.randint(CLASSES, (k,), generator=g)
        for n, k in SIZES.items()
    }
    for m in range(2):
        generation = new_generation()
        weight = torch.randn(CLASSES, DIM, generator=g) * 0.3 + centres * 0.2
        bias = torch.randn(CLASSES, generator=g) * 0.1
        for name, k in SIZES.items():
            y = labels[name]
            if name in OOD:
                draw = (
                    g
                    if name != "far" or far_seed is None
                    else torch.Generator().manual_seed(far_seed * 10 + m)
                )
                f = torch.relu(torch.randn(k, DIM, generator=draw) * 2)
            else:
                f = torch.relu(centres[y] + torch.randn(k, DIM, generator=g) * (1.5 + m))
            f = f + 0.01 * torch.rand(k, DIM, generator=g)  # no ties within a row
            save_cached_logits(directory, f"m{m}", name, f @ weight.T + bias, y, generation)
            save_cached_features(directory, f"m{m}", name, f, generation)
        save_head(directory, f"m{m}", LinearHead(weight, bias), generation)
        meta = {
            "model_name": "synthetic",
            "macs": 1e6 * (m + 1),
            "params": 1,
            "num_classes": CLASSES,
            "generation": generation,
        }
        save_member_meta(directory, f"m{m}", meta)
    return directory
