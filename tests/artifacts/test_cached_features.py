"""Cached features beside cached logits: written and read back with the logits' generation,
float16 halving the disk, features made elsewhere (.npz), and every refusal naming the file."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tests.feature_case import write_feature_case
from window_cascades.artifacts.cached_features import (
    check_head_reproduces_logits,
    features_file,
    load_cached_features,
    load_head,
    save_cached_features,
)
from window_cascades.artifacts.cached_logits import load_cached_logits, new_generation
from window_cascades.artifacts.member_meta import load_member_meta


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return write_feature_case(tmp_path_factory.mktemp("cache") / "logits")


def test_features_and_head_reproduce_the_cached_logits(folder):
    generation = load_member_meta(folder, "m0")["generation"]
    features = load_cached_features(folder, "m0", "held", generation, rows=400)
    head = load_head(folder, "m0", generation)
    logits = load_cached_logits(folder, "m0", "held", generation).logits
    assert features.shape == (400, 32) and features.dtype == torch.float32
    torch.testing.assert_close(head.logits(features).float(), logits, rtol=1e-5, atol=1e-5)
    check_head_reproduces_logits(head, features, logits, "m0/held")


def test_a_file_of_another_caching_run_is_refused(folder):
    with pytest.raises(ValueError, match="generation"):
        load_cached_features(folder, "m0", "held", new_generation())


def test_float16_halves_the_file_and_keeps_the_scores_close(tmp_path):
    f = torch.rand(500, 64, generator=torch.Generator().manual_seed(0)) * 5
    save_cached_features(tmp_path, "m", "a", f, "g", dtype="float32")
    save_cached_features(tmp_path, "m", "b", f, "g", dtype="float16")
    full, half = (features_file(tmp_path, "m", n).stat().st_size for n in ("a", "b"))
    assert half < 0.55 * full
    back = load_cached_features(tmp_path, "m", "b")
    assert back.dtype == torch.float16
    torch.testing.assert_close(back.float(), f, rtol=1e-3, atol=1e-3)


def test_float16_overflow_is_refused_with_the_remedy(tmp_path):
    with pytest.raises(ValueError, match="features_dtype float32"):
        save_cached_features(tmp_path, "m", "a", torch.full((3, 4), 1e6), "g", dtype="float16")


def test_features_made_elsewhere_are_read_from_npz(tmp_path):
    f = np.random.default_rng(0).random((20, 8), dtype=np.float32)
    (tmp_path / "m" / "features").mkdir(parents=True)
    np.savez(tmp_path / "m" / "features" / "test.npz", features=f)
    assert np.array_equal(load_cached_features(tmp_path, "m", "test").numpy(), f)


def test_missing_features_name_the_file_and_how_to_cache_them(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"--cache.features true"):
        load_cached_features(tmp_path, "m", "test")


def test_rows_that_do_not_match_the_logits_are_refused(folder):
    with pytest.raises(ValueError, match="400 rows of features, but the logits have 399"):
        load_cached_features(folder, "m0", "held", rows=399)


def test_a_head_of_another_member_is_refused(folder):
    features = load_cached_features(folder, "m0", "held")
    logits = load_cached_logits(folder, "m0", "held").logits
    with pytest.raises(ValueError, match="not of the same model and samples"):
        check_head_reproduces_logits(load_head(folder, "m1"), features, logits, "m0/held")
