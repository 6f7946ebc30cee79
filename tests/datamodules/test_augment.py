"""Training augmentation of in-memory image sets: seeded affine warps, train split only."""

import pytest
import torch

from window_cascades.datamodules.augment import AffineRange, AugmentedImages, random_affine
from window_cascades.datamodules.digits import DigitsDataModule


def blob(n: int = 1) -> torch.Tensor:
    x = torch.zeros(n, 1, 32, 32)
    x[..., 10:22, 12:20] = 1.0
    return x


def test_identity_range_leaves_images_unchanged():
    x = torch.rand(3, 1, 32, 32)
    none = AffineRange(degrees=0.0, translate=0.0, scale=(1.0, 1.0))
    y = random_affine(x, torch.Generator().manual_seed(0), none)
    torch.testing.assert_close(y, x, atol=1e-5, rtol=0)


def test_warps_stay_inside_their_range():
    x = blob(64)
    bounds = AffineRange(degrees=10.0, translate=0.08, scale=(0.9, 1.1))
    y = random_affine(x, torch.Generator().manual_seed(1), bounds)
    mass = y.sum((1, 2, 3)) / x.sum((1, 2, 3))  # area scales with zoom squared
    assert mass.min() > 0.9**2 - 0.05 and mass.max() < 1.1**2 + 0.05
    grid = torch.arange(32.0)
    cx = (y.sum((1, 2)) * grid).sum(-1) / y.sum((1, 2, 3))
    shift = (cx - (x[0].sum((0, 1)) * grid).sum() / x[0].sum()).abs()
    assert shift.max() <= 0.08 * 32 + 0.5 and shift.max() > 1.0  # they do move, not too far
    assert not torch.equal(y[0], y[1])  # each image its own warp


def test_the_same_seed_epoch_and_sample_give_the_same_image_in_any_order():
    images, targets = blob(8) * torch.rand(8, 1, 1, 1), torch.arange(8)
    a = AugmentedImages(images, targets, 0.5, 0.5, seed=3)
    b = AugmentedImages(images, targets, 0.5, 0.5, seed=3)
    forward = [a[i][0] for i in range(8)]
    backward = [b[i][0] for i in reversed(range(8))][::-1]
    for u, v in zip(forward, backward, strict=True):
        assert torch.equal(u, v)
    a.set_epoch(1)
    assert not torch.equal(a[0][0], forward[0])  # a new warp each epoch
    other_seed = AugmentedImages(images, targets, 0.5, 0.5, seed=4)
    assert not torch.equal(other_seed[0][0], forward[0])  # and each member its own
    x, y, i = a[5]
    assert x.shape == (1, 32, 32) and int(y) == 5 and i == 5


def test_only_the_training_split_is_augmented(monkeypatch):
    monkeypatch.setenv("PL_GLOBAL_SEED", "7")
    plain, warped = DigitsDataModule(), DigitsDataModule(augment="affine")
    plain.setup(), warped.setup()
    assert isinstance(warped.train_set, AugmentedImages) and warped.train_set.seed == 7
    assert not torch.equal(plain.train_set[0][0], warped.train_set[0][0])
    for name in plain.roles:
        assert torch.equal(plain.eval_sets[name][0][0], warped.eval_sets[name][0][0]), name


def test_unknown_augmentation_is_refused_by_name():
    with pytest.raises(
        ValueError, match=r"augment must be one of \['none', 'affine'\], got 'flip'"
    ):
        DigitsDataModule(augment="flip")


def test_the_train_source_is_the_training_split_unaugmented(monkeypatch):
    """Feature scores fit their statistics on ``source: train``: the very images the members
    train on, without the augmentation, and never evaluated."""
    monkeypatch.setenv("PL_GLOBAL_SEED", "7")
    datasets = [
        {"name": "held", "role": "heldout", "source": "heldout"},
        {"name": "test", "role": "id", "source": "test"},
        {"name": "train", "role": "train", "source": "train"},
    ]
    plain = DigitsDataModule(datasets=datasets)
    warped = DigitsDataModule(datasets=datasets, augment="affine")
    plain.setup(), warped.setup()
    train = warped.eval_sets["train"]
    assert len(train) == len(plain.train_set) == len(warped.train_set)
    for i in (0, len(train) - 1):
        assert torch.equal(train[i][0], plain.train_set[i][0])
        assert train[i][1] == plain.train_set[i][1]
    assert "train" not in warped.roles.evaluated() and len(warped.test_dataloader()) == 2
    assert len(warped.predict_dataloader()) == 3  # cached with the others
