"""Every built-in score equals an independent implementation of its published formula: OpenOOD
v1.5's postprocessors re-implemented in NumPy (tests/openood_reference.py) within 1e-5, on
seeded post-ReLU-like features with no ties; the scores' AUROC agrees with scikit-learn's."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.metrics import roc_auc_score

from tests import openood_reference as openood
from window_cascades.uncertainty.feature_scores import LinearHead, MemberInputs, gen
from window_cascades.uncertainty.feature_statistics import (
    TrainInputs,
    fit_statistics,
    vim_origin,
)
from window_cascades.uncertainty.knn import kth_neighbour_similarity, unit_rows
from window_cascades.uncertainty.ood_detection import auroc
from window_cascades.uncertainty.score_registry import score_entry, statistics_for

CLASSES, DIM, TRAIN, TEST = 10, 64, 3000, 800
RTOL = 1e-5


def make_fixture(seed: int = 0):
    """Class-clustered non-negative features (a ReLU of Gaussians) plus a little continuous
    jitter, so no two features of a row tie (ASH's kept set is then unambiguous)."""
    gen_ = np.random.default_rng(seed)
    centres = gen_.normal(0, 1.5, size=(CLASSES, DIM))
    labels = gen_.integers(0, CLASSES, TRAIN)
    train = np.maximum(centres[labels] + gen_.normal(size=(TRAIN, DIM)), 0)
    train += 0.01 * gen_.random((TRAIN, DIM))
    test_labels = gen_.integers(0, CLASSES, TEST)
    test = np.maximum(centres[test_labels] + gen_.normal(size=(TEST, DIM)), 0)
    test[TEST // 2 :] = np.maximum(gen_.normal(0, 2, size=(TEST - TEST // 2, DIM)), 0)
    test += 0.01 * gen_.random((TEST, DIM))
    w = gen_.normal(0, 0.3, size=(CLASSES, DIM))
    b = gen_.normal(0, 0.1, size=CLASSES)
    return train, labels, test, w, b


@pytest.fixture(scope="module")
def fixture():
    return make_fixture()


def ours(fixture, score: str, values: dict | None = None, **params) -> np.ndarray:
    """The registered score's function on the fixture, with its statistics fitted."""
    train, labels, test, w, b = fixture
    head = LinearHead(torch.from_numpy(w), torch.from_numpy(b))
    inputs = TrainInputs(torch.from_numpy(train), torch.from_numpy(labels), head, CLASSES)
    entry = score_entry(score)
    stats = fit_statistics(statistics_for([score]), inputs, values)
    member = MemberInputs(torch.from_numpy(test @ w.T + b), torch.from_numpy(test), head)
    return entry.fn(member, stats, **params).numpy()


def close(actual: np.ndarray, expected: np.ndarray) -> None:
    np.testing.assert_allclose(actual, expected, rtol=RTOL, atol=RTOL * np.abs(expected).max())


@pytest.mark.parametrize("gamma, m", [(0.1, 100), (1.0, 3), (0.01, 10), (10.0, 1)])
def test_gen_equals_openood(fixture, gamma, m):
    train, labels, test, w, b = fixture
    logits = test @ w.T + b
    probs = torch.from_numpy(logits).softmax(-1)
    close(gen(probs, gamma, m).numpy(), openood.gen(logits, gamma, m))


@pytest.mark.parametrize("p", [85.0, 90.0, 99.0])
def test_react_equals_openood(fixture, p):
    train, labels, test, w, b = fixture
    close(ours(fixture, "react", {"activations": (p,)}, p=p), openood.react(train, test, w, b, p))


@pytest.mark.parametrize("variant", ["b", "p", "s"])
@pytest.mark.parametrize("p", [65.0, 90.0])
def test_ash_equals_openood(fixture, p, variant):
    train, labels, test, w, b = fixture
    close(ours(fixture, "ash", p=p, variant=variant), openood.ash(test, w, b, p, variant))


@pytest.mark.parametrize("p", [65.0, 85.0])
def test_scale_equals_openood(fixture, p):
    train, labels, test, w, b = fixture
    close(ours(fixture, "scale", p=p), openood.scale(test, w, b, p))


@pytest.mark.parametrize("dim", [8, 32, 48])
def test_vim_equals_openood(fixture, dim):
    train, labels, test, w, b = fixture
    close(ours(fixture, "vim", dim=dim), openood.vim(train, test, w, b, dim))


@pytest.mark.parametrize("k", [1, 50, 200])
def test_knn_equals_openood(fixture, k):
    train, labels, test, w, b = fixture
    close(ours(fixture, "knn", k=k), openood.knn(train, test, k))


def test_mds_and_rmds_equal_openood(fixture):
    train, labels, test, w, b = fixture
    close(ours(fixture, "mds"), openood.mds(train, labels, test, CLASSES))
    close(ours(fixture, "rmds"), openood.rmds(train, labels, test, CLASSES))


@pytest.mark.parametrize("centred", [True, False])
def test_fdbd_equals_openood(fixture, centred):
    train, labels, test, w, b = fixture
    close(ours(fixture, "fdbd", centred=centred), openood.fdbd(train, test, w, b, centred))


@pytest.mark.parametrize("score", ["msp", "max_logit", "energy"])
def test_logit_scores_equal_their_definitions(fixture, score):
    train, labels, test, w, b = fixture
    logits = torch.from_numpy(test @ w.T + b)
    entry = score_entry(score)
    value = entry.fn(logits.softmax(-1) if entry.inputs == "probs" else logits).double().numpy()
    expected = {
        "msp": torch.softmax(logits, -1).max(-1).values.numpy(),
        "max_logit": logits.max(-1).values.numpy(),
        "energy": openood.logsumexp(logits.numpy(), axis=1),
    }[score]
    np.testing.assert_allclose(value, expected, rtol=1e-6)


def test_singular_covariance_takes_the_pseudo_inverse_as_openood():
    """Dead units (always 0) make the covariances singular: the whitening keeps the
    eigenvalues above SciPy's pinvh cutoff, as OpenOOD's ``precision_``."""
    train, labels, test, w, b = make_fixture(1)
    train[:, :5] = 0.0
    test[:, :5] = 0.0
    fixture = (train, labels, test, w, b)
    close(ours(fixture, "mds"), openood.mds(train, labels, test, CLASSES))
    close(ours(fixture, "rmds"), openood.rmds(train, labels, test, CLASSES))


def test_vim_origin_equals_the_pseudo_inverse_for_either_shape():
    g = torch.Generator().manual_seed(0)
    for shape in ((10, 64), (64, 10)):
        head = LinearHead(torch.randn(*shape, generator=g, dtype=torch.float64), None)
        head = LinearHead(head.weight, torch.randn(shape[0], generator=g, dtype=torch.float64))
        expected = -(torch.linalg.pinv(head.weight) @ head.bias)
        torch.testing.assert_close(vim_origin(head), expected, rtol=1e-9, atol=1e-9)


def test_chunked_knn_equals_one_block():
    g = torch.Generator().manual_seed(0)
    queries, bank = torch.randn(300, 16, generator=g), unit_rows(torch.randn(500, 16, generator=g))
    whole = kth_neighbour_similarity(queries, bank, 7, block_values=10**9)
    for block in (500, 1234, 37 * 500):  # one row, two rows, 37 rows per block
        torch.testing.assert_close(kth_neighbour_similarity(queries, bank, 7, block), whole)


def test_ash_and_scale_refuse_negative_features(fixture):
    train, labels, test, w, b = fixture
    with pytest.raises(ValueError, match="non-negative"):
        ours((train, labels, test - 1.0, w, b), "ash", p=90.0, variant="b")
    with pytest.raises(ValueError, match="non-negative"):
        ours((train, labels, test - 1.0, w, b), "scale", p=85.0)


def test_mds_needs_every_class_in_the_training_split(fixture):
    train, labels, test, w, b = fixture
    labels = np.where(labels == 3, 4, labels)
    with pytest.raises(ValueError, match=r"class\(es\) \[3\]"):
        ours((train, labels, test, w, b), "mds")


@pytest.mark.parametrize("score, params", [("knn", {"k": 50}), ("vim", {"dim": 32}), ("mds", {})])
def test_auroc_of_a_score_agrees_with_scikit_learn(fixture, score, params):
    """ID (first half of the test features) against OOD (second half): the library's AUROC of
    the confidences equals scikit-learn's ``roc_auc_score`` with ID as the positive class."""
    conf = ours(fixture, score, **params)
    half = TEST // 2
    ours_auroc = auroc(torch.from_numpy(conf[:half]), torch.from_numpy(conf[half:]))
    labels = np.r_[np.ones(half), np.zeros(TEST - half)]
    assert ours_auroc == pytest.approx(roc_auc_score(labels, conf), abs=1e-12)
    assert ours_auroc > 0.6  # the fixture's OOD half is detectable


# A second, independent check: pytorch-ood 0.4.0 (a dev requirement) returns outlier scores
# (higher = OOD) with its own normalisations; the factors below turn them into OpenOOD's
# confidences (its mean over terms instead of a sum, covariances without the 1 / N, the
# Euclidean instead of the squared distance).


@pytest.fixture(scope="module")
def pood():
    return pytest.importorskip("pytorch_ood.detector")


@pytest.fixture()
def float64_default():
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)  # its Gaussians are allocated in the default dtype
    yield
    torch.set_default_dtype(previous)


def _torch(fixture):
    train, labels, test, w, b = (torch.from_numpy(np.asarray(a)) for a in fixture)
    fc = torch.nn.Linear(DIM, CLASSES).double()
    with torch.no_grad():
        fc.weight.copy_(w)
        fc.bias.copy_(b)
    return train, labels, test, fc


def test_scores_of_features_match_pytorch_ood(fixture, pood, float64_default):
    train, labels, test, fc = _torch(fixture)
    n = TRAIN
    with torch.no_grad():
        head = lambda x: fc(x.flatten(1))  # noqa: E731 - pooled features as 1 x 1 maps
        maps = test.view(TEST, DIM, 1, 1)
        react = pood.ReAct(lambda x: x, head, percentile=0.9)
        react.fit_feature_maps(train.view(TRAIN, DIM, 1, 1), labels)
        close(
            ours(fixture, "react", {"activations": (90.0,)}, p=90.0),
            -react.predict_feature_maps(maps).numpy(),
        )
        for variant in ("b", "p", "s"):
            detector = pood.ASH(lambda x: x, head, variant=f"ash-{variant}", percentile=0.9)
            expected = -detector.predict_feature_maps(maps).numpy()
            close(ours(fixture, "ash", p=90.0, variant=variant), expected)
        expected = -pood.SCALE(lambda x: x, head, percentile=0.85).predict_feature_maps(maps)
        close(ours(fixture, "scale", p=85.0), expected.numpy())
        knn = pood.KNN(None, k=50).fit_features(train, labels)
        close(ours(fixture, "knn", k=50), -(knn.predict_features(test).numpy() ** 2))
        mds = pood.Mahalanobis(None).fit_features(train, labels)
        close(ours(fixture, "mds"), -2 * n * mds.predict_features(test).numpy())
        rmd = pood.RMD(None).fit_features(train, labels)
        close(ours(fixture, "rmds"), -n * rmd.predict_features(test).numpy())


def test_float32_scores_match_pytorch_ood(fixture, pood):
    """pytorch-ood computes ViM and fDBD in float32: agreement to 1e-4 there."""
    train, labels, test, fc = _torch(fixture)
    with torch.no_grad():
        vim = pood.ViM(None, 32, fc.weight.float(), fc.bias.float())
        vim.fit_features(train.float(), labels)
        expected = -vim.predict_features(test.float()).double().numpy()
        np.testing.assert_allclose(ours(fixture, "vim", dim=32), expected, rtol=1e-4, atol=1e-3)
        fdbd = pood.fDBD(None, fc.float()).fit_features(train.float())
        expected = -(CLASSES - 1) * fdbd.predict_features(test.float()).double().numpy()
        np.testing.assert_allclose(ours(fixture, "fdbd", centred=True), expected, rtol=1e-4)


def test_scores_of_logits_match_pytorch_ood(fixture, pood):
    train, labels, test, w, b = fixture
    logits = torch.from_numpy(test @ w.T + b)
    logits = 5 * logits / logits.abs().max()  # no p below its 1e-7 clamp
    probs = logits.softmax(-1)
    expected = -CLASSES * pood.GEN.score(logits, gamma=0.1).numpy()  # mean over all C
    close(gen(probs, 0.1, CLASSES).numpy(), expected)
    close(score_entry("msp").fn(probs).numpy(), -pood.MaxSoftmax.score(logits).numpy())
    close(
        score_entry("max_logit").fn(logits).double().numpy(), -pood.MaxLogit.score(logits).numpy()
    )
    close(
        score_entry("energy").fn(logits).double().numpy(), -pood.EnergyBased.score(logits).numpy()
    )
