"""An independent NumPy re-implementation of OpenOOD v1.5's postprocessors, the reference the
feature scores are tested against (tests/uncertainty/test_feature_scores.py).

Each function follows one file of github.com/Jingkang50/OpenOOD at commit 3c35632
(``openood/postprocessors/<name>_postprocessor.py`` and, for ASH and SCALE, the feature
transforms of ``openood/networks/{ash_net,scale_net}.py``), line by line where it matters:
scikit-learn's ``EmpiricalCovariance`` for the covariances and precisions, ``np.linalg.eig``
for ViM's axes, ``np.percentile`` for ReAct's threshold, a brute-force search (OpenOOD uses
faiss ``IndexFlatL2``, squared distances) for KNN, and OpenOOD's normaliser with its operator
precedence (``x / norm + 1e-10``). Everything in float64; confidences (higher = more
in-distribution), as OpenOOD's postprocessors return them.
"""

from __future__ import annotations

import numpy as np
from scipy.special import logsumexp, softmax
from sklearn.covariance import EmpiricalCovariance


def gen(logits: np.ndarray, gamma: float, m: int) -> np.ndarray:
    """gen_postprocessor.generalized_entropy."""
    probs_sorted = np.sort(softmax(logits, axis=1), axis=1)[:, -m:]
    return -np.sum(probs_sorted**gamma * (1 - probs_sorted) ** gamma, axis=1)


def react(train: np.ndarray, feats: np.ndarray, w, b, percentile: float) -> np.ndarray:
    """react_postprocessor: threshold = np.percentile(activations.flatten(), percentile);
    energy of fc(feature.clip(max=threshold))."""
    threshold = np.percentile(train.flatten(), percentile)
    return logsumexp(np.clip(feats, None, threshold) @ w.T + b, axis=1)


def _topk(x: np.ndarray, percentile: float) -> tuple[int, np.ndarray]:
    n = x.shape[1]
    k = n - int(np.round(n * percentile / 100.0))
    return k, np.argsort(-x, axis=1, kind="stable")[:, :k]


def ash(feats: np.ndarray, w, b, percentile: float, variant: str) -> np.ndarray:
    """ash_net.ash_b / ash_p / ash_s on the pooled feature (B x D x 1 x 1), then the energy."""
    x = feats.copy()
    s1 = x.sum(axis=1)
    k, index = _topk(x, percentile)
    rows = np.arange(x.shape[0])[:, None]
    kept = x[rows, index]
    t = np.zeros_like(x)
    if variant == "b":
        t[rows, index] = (s1 / k)[:, None]
    else:
        t[rows, index] = kept
    if variant == "s":
        s2 = t.sum(axis=1)
        t = t * np.exp(s1 / s2)[:, None]
    return logsumexp(t @ w.T + b, axis=1)


def scale(feats: np.ndarray, w, b, percentile: float) -> np.ndarray:
    """scale_net.scale: input * exp(s1 / s2), s2 the sum of the top-k, then the energy."""
    x = feats.copy()
    s1 = x.sum(axis=1)
    _, index = _topk(x, percentile)
    s2 = x[np.arange(x.shape[0])[:, None], index].sum(axis=1)
    return logsumexp((feats * np.exp(s1 / s2)[:, None]) @ w.T + b, axis=1)


def vim(train: np.ndarray, feats: np.ndarray, w, b, dim: int) -> np.ndarray:
    """vim_postprocessor.setup / postprocess."""
    u = -np.matmul(np.linalg.pinv(w), b)
    logit_id_train = train @ w.T + b
    ec = EmpiricalCovariance(assume_centered=True)
    ec.fit(train - u)
    eig_vals, eigen_vectors = np.linalg.eig(ec.covariance_)
    eig_vals, eigen_vectors = np.real(eig_vals), np.real(eigen_vectors)
    ns = np.ascontiguousarray((eigen_vectors.T[np.argsort(eig_vals * -1)[dim:]]).T)
    vlogit_id_train = np.linalg.norm(np.matmul(train - u, ns), axis=-1)
    alpha = logit_id_train.max(axis=-1).mean() / vlogit_id_train.mean()
    energy = logsumexp(feats @ w.T + b, axis=-1)
    vlogit = np.linalg.norm(np.matmul(feats - u, ns), axis=-1) * alpha
    return -vlogit + energy


def _normalizer(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=-1, keepdims=True) + 1e-10  # (sic: OpenOOD's precedence)


def knn(train: np.ndarray, feats: np.ndarray, k: int) -> np.ndarray:
    """knn_postprocessor: -(squared L2 distance to the k-th neighbour) of normalised features."""
    bank, queries = _normalizer(train), _normalizer(feats)
    out = np.empty(queries.shape[0])
    for start in range(0, queries.shape[0], 64):
        q = queries[start : start + 64]
        d = ((q[:, None, :] - bank[None, :, :]) ** 2).sum(axis=-1)
        out[start : start + 64] = -np.sort(d, axis=1)[:, k - 1]
    return out


def _class_means(train: np.ndarray, labels: np.ndarray, classes: int) -> np.ndarray:
    return np.stack([train[labels == c].mean(axis=0) for c in range(classes)])


def _precision(data: np.ndarray) -> np.ndarray:
    return EmpiricalCovariance(assume_centered=False).fit(data).precision_


def _neg_mahalanobis(feats: np.ndarray, mean: np.ndarray, precision: np.ndarray) -> np.ndarray:
    tensor = feats - mean[None, :]
    return -np.einsum("nd,de,ne->n", tensor, precision, tensor)  # -(t P t^T).diag()


def mds(train: np.ndarray, labels: np.ndarray, feats: np.ndarray, classes: int) -> np.ndarray:
    """mds_postprocessor: class means, one precision of the class-centred training features."""
    means = _class_means(train, labels, classes)
    precision = _precision(np.concatenate([train[labels == c] - means[c] for c in range(classes)]))
    scores = np.stack([_neg_mahalanobis(feats, means[c], precision) for c in range(classes)], 1)
    return scores.max(axis=1)


def rmds(train: np.ndarray, labels: np.ndarray, feats: np.ndarray, classes: int) -> np.ndarray:
    """rmds_postprocessor: class scores minus the background score (whole mean and precision)."""
    means = _class_means(train, labels, classes)
    precision = _precision(np.concatenate([train[labels == c] - means[c] for c in range(classes)]))
    whole_mean = train.mean(axis=0)
    whole_precision = _precision(train - whole_mean)
    background = _neg_mahalanobis(feats, whole_mean, whole_precision)
    scores = np.stack([_neg_mahalanobis(feats, means[c], precision) for c in range(classes)], 1)
    return (scores - background[:, None]).max(axis=1)


def fdbd(train: np.ndarray, feats: np.ndarray, w, b, distance_as_normalizer: bool) -> np.ndarray:
    """fdbd_postprocessor: denominator matrix of weight distances, logit gaps, normaliser."""
    classes = w.shape[0]
    denominator = np.zeros((classes, classes))
    for p in range(classes):
        w_p = w - w[p, :]
        d = np.linalg.norm(w_p, axis=1)
        d[p] = 1
        denominator[p, :] = d
    output = feats @ w.T + b
    nn_idx = output.argmax(axis=1)
    values = output.max(axis=1)
    logits_sub = np.abs(output - values[:, None])
    total = np.sum(logits_sub / denominator[nn_idx], axis=1)
    if distance_as_normalizer:
        return total / np.linalg.norm(feats - train.mean(axis=0), axis=1)
    return total / np.linalg.norm(feats, axis=1)
