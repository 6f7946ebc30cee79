"""A small calibrated cascade checkpoint in seconds: two untrained resnet10t members (1 x 32 x 32
inputs, 3 classes) whose policies are fitted on their own logits of random images, saved as a
``cascade.ckpt`` the way a ``cascade test`` run saves it (Lightning's checkpoint keys and
``CascadeModule.on_save_checkpoint``). For tests and doctests of the deployment calls, where
what the cascade decides matters, not how well."""

from __future__ import annotations

from pathlib import Path

import torch

SHAPE = (1, 32, 32)
CLASSES = 3
POLICIES = ["single", "ensemble", "window"]


def write_members(folder: Path) -> list[Path]:
    """Two member checkpoints (seeds 0 and 1) in ``folder``."""
    import lightning

    from window_cascades.lightning_modules.member import MemberModule

    paths = []
    for seed in (0, 1):
        torch.manual_seed(seed)
        member = MemberModule("resnet10t", num_classes=CLASSES, in_chans=SHAPE[0])
        path = folder / f"m{seed}.ckpt"
        torch.save(
            {
                "state_dict": member.state_dict(),
                "hyper_parameters": dict(member.hparams),
                "pytorch-lightning_version": lightning.__version__,
            },
            path,
        )
        paths.append(path)
    return paths


def write_cascade_checkpoint(path: Path) -> Path:
    """``path`` (e.g. ``outputs/quickstart/results/cascade.ckpt``), with its members beside it."""
    import lightning

    import window_cascades as wc
    from window_cascades.lightning_modules.cascade_module import CascadeModule

    path.parent.mkdir(parents=True, exist_ok=True)
    members = write_members(path.parent)
    cascade = CascadeModule([str(p) for p in members], policies=POLICIES).eval()
    generator = torch.Generator().manual_seed(0)
    images = {name: torch.rand(200, *SHAPE, generator=generator) for name in ("held", "test")}
    with torch.no_grad():
        logits = {name: [m(x) for m in cascade.members] for name, x in images.items()}
    # labels: the full ensemble's predictions, flipped on a quarter of the samples
    labels = {
        name: torch.stack(z)
        .softmax(-1)
        .mean(0)
        .argmax(-1)
        .where(torch.arange(200) % 4 != 0, torch.zeros(200, dtype=torch.long))
        for name, z in logits.items()
    }
    data = wc.Logits(logits, {"held": "heldout", "test": "id"}, labels)
    cascade.fitted = wc.fit_cascade(data, POLICIES, target="cov@10")
    checkpoint = {
        "state_dict": cascade.state_dict(),
        "hyper_parameters": dict(cascade.hparams),
        "pytorch-lightning_version": lightning.__version__,
    }
    cascade.on_save_checkpoint(checkpoint)
    torch.save(checkpoint, path)
    return path
