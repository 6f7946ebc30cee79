"""Training statistics are fitted once per member and reused while the training features, the
head and the caching run stay the same; any change refits them (and rewrites the file)."""

from __future__ import annotations

import pytest
import torch

from tests.feature_case import write_feature_case
from window_cascades.artifacts.cached_features import load_cached_features, load_head, save_head
from window_cascades.artifacts.cached_logits import load_cached_logits
from window_cascades.artifacts.score_statistics import STATS_FOLDER, MemberSource, member_statistics
from window_cascades.uncertainty.feature_scores import LinearHead
from window_cascades.uncertainty.feature_statistics import TrainInputs

NAMES = ["feature_mean", "moments", "gaussian", "vim"]


def fitted(folder, calls):
    source = MemberSource(folder, "m0", "train")
    features = load_cached_features(folder, "m0", "train")
    targets = load_cached_logits(folder, "m0", "train").targets
    train = TrainInputs(features, targets, load_head(folder, "m0"), 5)
    import window_cascades.artifacts.score_statistics as module

    real = module.fit_statistics

    def counting(names, train, values=None, given=None):
        out = real(names, train, values, given)
        calls.append(sorted(set(out) - set(given or {})))
        return out

    module.fit_statistics = counting
    try:
        return member_statistics(source, NAMES, train)
    finally:
        module.fit_statistics = real


@pytest.fixture
def folder(tmp_path):
    return write_feature_case(tmp_path / "logits")


def test_statistics_are_fitted_once_and_then_read(folder):
    calls: list = []
    first = fitted(folder, calls)
    assert calls == [sorted(NAMES)]
    files = sorted(p.name for p in (folder / "m0" / STATS_FOLDER).iterdir())
    assert files == [f"{n}.safetensors" for n in sorted(NAMES)]
    second = fitted(folder, calls)
    assert calls[1] == []  # nothing fitted again
    for name in NAMES:
        for key, value in first[name].items():
            assert torch.equal(second[name][key], value)


def test_a_new_head_refits_them(folder):
    calls: list = []
    before = fitted(folder, calls)
    head = load_head(folder, "m0")
    save_head(folder, "m0", LinearHead(head.weight * 2, head.bias), None)
    after = fitted(folder, calls)
    assert calls[1] == sorted(NAMES)
    assert not torch.equal(before["vim"]["origin"], after["vim"]["origin"])
