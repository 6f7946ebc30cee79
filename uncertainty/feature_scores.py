"""The score functions of the registered scores: pure tensor maths, higher = more confident.

Notation: f (N x D) a member's penultimate (pooled) features, W (C x D) and b (C) its final
linear layer (``LinearHead``), z = f W^T + b its logits, p = softmax(z). Statistics of
the training split (``window_cascades.uncertainty.feature_statistics``) are handed in by name.
Every function computes in float64 (KNN: in the features' precision, float32 at least) and
never holds more than N x max(C, D) values at once, so callers score any number of rows in
chunks. The formulas and their sources are in docs/concepts/scores.md; each equals OpenOOD
v1.5's postprocessor on the same features (tests/uncertainty/test_feature_scores.py).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import torch

from window_cascades.uncertainty.knn import kth_neighbour_similarity

Statistics = Mapping[str, Mapping[str, torch.Tensor]]
"""Fitted statistics by name (``gaussian``, ``vim``, ...), each a mapping of tensors."""


@dataclass(frozen=True)
class LinearHead:
    """A member's final linear layer, logits = features @ weight.T + bias.

    Attributes:
        weight: C x D.
        bias: C.
    """

    weight: torch.Tensor
    bias: torch.Tensor

    def logits(self, features: torch.Tensor) -> torch.Tensor:
        """N x C logits of N x D features, in float64."""
        return features.double() @ self.weight.double().T + self.bias.double()


@dataclass(frozen=True)
class MemberInputs:
    """What a feature score reads of one member on N samples.

    Attributes:
        logits: N x C logits as cached.
        features: N x D penultimate features (None when not cached).
        head: the final linear layer (None when not cached).
    """

    logits: torch.Tensor
    features: torch.Tensor | None = None
    head: LinearHead | None = None

    def head_logits(self) -> torch.Tensor:
        """The logits recomputed from the features and the head (float64)."""
        return self.required_head().logits(self.required_features())

    def required_features(self) -> torch.Tensor:
        if self.features is None:
            raise ValueError("this score reads the members' features; none were given")
        return self.features

    def required_head(self) -> LinearHead:
        if self.head is None:
            raise ValueError("this score reads the members' final linear layer; none was given")
        return self.head


# scores of probabilities and logits --------------------------------------------------------


def maximum_probability(probs: torch.Tensor) -> torch.Tensor:
    """``msp``: max_c p_c (N x C probabilities -> N)."""
    return probs.max(dim=-1).values


def negative_entropy(probs: torch.Tensor) -> torch.Tensor:
    """``entropy``: sum_c p_c log p_c, in nats (0 log 0 = 0)."""
    return torch.special.xlogy(probs, probs).sum(dim=-1)


def maximum_logit(logits: torch.Tensor) -> torch.Tensor:
    """``max_logit``: max_c z_c."""
    return logits.float().max(dim=-1).values


def negative_energy(logits: torch.Tensor) -> torch.Tensor:
    """``energy``: logsumexp_c z_c (temperature 1)."""
    return torch.logsumexp(logits.float(), dim=-1)


def single_member_disagreement(logits: torch.Tensor) -> torch.Tensor:
    """``mutual_information`` of one member: 0 (members that never disagree)."""
    return torch.zeros(logits.shape[0])


def gen(probs: torch.Tensor, gamma: float = 0.1, M: int = 100) -> torch.Tensor:  # noqa: N803
    """Generalized entropy (GEN): -sum over the M largest p_j of p_j^gamma (1 - p_j)^gamma.

    Args:
        probs: N x C probabilities.
        gamma: the exponent (> 0).
        M: how many of the largest probabilities are summed (all C when M >= C).

    Returns:
        N confidences (float64).
    """
    p = probs.double()
    top = p.topk(min(int(M), p.shape[-1]), dim=-1).values
    return -(top.pow(gamma) * (1 - top).pow(gamma)).sum(dim=-1)


# scores of features ----------------------------------------------------------------------


def energy_of(features: torch.Tensor, head: LinearHead) -> torch.Tensor:
    """logsumexp of the logits the head gives ``features`` (float64)."""
    return torch.logsumexp(head.logits(features), dim=-1)


def react(features: torch.Tensor, head: LinearHead, threshold: float) -> torch.Tensor:
    """ReAct: the energy of the features clipped above at ``threshold``."""
    return energy_of(features.double().clamp(max=threshold), head)


def react_score(member: MemberInputs, statistics: Statistics, p: float) -> torch.Tensor:
    """ReAct at the p-th percentile of every training activation (statistic ``activations``)."""
    fitted = statistics["activations"]
    levels = fitted["levels"].tolist()
    matches = [i for i, level in enumerate(levels) if abs(level - p) < 1e-9]
    if not matches:
        raise ValueError(f"react: no training percentile fitted at p = {p} (fitted at {levels})")
    threshold = float(fitted["thresholds"][matches[0]])
    return react(member.required_features(), member.required_head(), threshold)


def _kept(x: torch.Tensor, percentile: float) -> tuple[int, torch.Tensor, torch.Tensor]:
    """k = D - round(D p / 100) (half to even, as NumPy) and the top-k values and indices of
    every row (``torch.topk``: at ties, which entries are kept follows its order)."""
    d = x.shape[1]
    k = d - int(round(d * percentile / 100.0))
    if k < 1:
        raise ValueError(f"percentile {percentile} keeps none of the {d} features")
    values, index = x.topk(k, dim=1)
    return k, values, index


def _non_negative(features: torch.Tensor, name: str) -> torch.Tensor:
    x = features.double()
    if bool((x < 0).any()):
        raise ValueError(
            f"{name} assumes non-negative (post-ReLU) features; these have negative values "
            "(a normalised head, e.g. ConvNeXt's or a ViT's): use react, vim, knn, mds or rmds"
        )
    return x


def ash(
    features: torch.Tensor, head: LinearHead, percentile: float, variant: str = "b"
) -> torch.Tensor:
    """ASH: the energy after pruning each sample's features below its own ``percentile``.

    ``b``: the kept features all take s1 / k (s1 the sum of every feature); ``p``: they keep
    their values; ``s``: they keep their values scaled by exp(s1 / s2) (s2 their sum).
    """
    x = _non_negative(features, "ash")
    k, values, index = _kept(x, percentile)
    s1 = x.sum(dim=1)
    if variant == "b":
        source = (s1 / k)[:, None].expand_as(values)
    elif variant in ("p", "s"):
        source = values
    else:
        raise ValueError(f"ash variant {variant!r}: expected 'b', 'p' or 's'")
    pruned = torch.zeros_like(x).scatter_(1, index, source)
    if variant == "s":
        pruned = pruned * torch.exp(s1 / pruned.sum(dim=1))[:, None]
    return energy_of(pruned, head)


def ash_score(
    member: MemberInputs, statistics: Statistics, p: float, variant: str = "b"
) -> torch.Tensor:
    """ASH at percentile ``p`` (see ``ash``)."""
    return ash(member.required_features(), member.required_head(), p, variant)


def scale(features: torch.Tensor, head: LinearHead, percentile: float) -> torch.Tensor:
    """SCALE: the energy of the features times exp(s1 / s2), s1 the sum of every feature and
    s2 that of the top (100 - percentile)% (nothing is pruned)."""
    x = _non_negative(features, "scale")
    _, values, _ = _kept(x, percentile)
    ratio = x.sum(dim=1) / values.sum(dim=1)
    return energy_of(x * torch.exp(ratio)[:, None], head)


def scale_score(member: MemberInputs, statistics: Statistics, p: float) -> torch.Tensor:
    """SCALE at percentile ``p`` (see ``scale``)."""
    return scale(member.required_features(), member.required_head(), p)


def vim_score(member: MemberInputs, statistics: Statistics, dim: int) -> torch.Tensor:
    """ViM: logsumexp(z) - alpha ||(f - u) R||, R the principal axes beyond the first ``dim``
    of the training features about the origin u = -pinv(W) b, alpha = mean train max logit /
    mean train residual norm (statistic ``vim``)."""
    fitted = statistics["vim"]
    f = member.required_features().double()
    residual_axes = fitted["eigenvectors"][:, dim:]
    alpha = fitted["max_logit_mean"] / fitted["residual_norm_mean"][dim]
    residual = ((f - fitted["origin"]) @ residual_axes).norm(dim=1)
    return energy_of(f, member.required_head()) - alpha * residual


def whitening(eigenvalues: torch.Tensor, eigenvectors: torch.Tensor) -> torch.Tensor:
    """L (D x r) with L L^T = pinvh(covariance): the eigenvectors of the eigenvalues above
    SciPy's cutoff (D x eps x the largest), scaled by 1 / sqrt(eigenvalue)."""
    cutoff = eigenvalues.shape[0] * torch.finfo(torch.float64).eps * eigenvalues.abs().max()
    keep = eigenvalues > cutoff
    return eigenvectors[:, keep] / eigenvalues[keep].sqrt()


def squared_mahalanobis(
    features: torch.Tensor, centres: torch.Tensor, origin: torch.Tensor, basis: torch.Tensor
) -> torch.Tensor:
    """N x K squared Mahalanobis distances of N x D features to K x D centres under the
    whitening ``basis`` (``whitening``), taken about ``origin`` (the training mean) so the
    expansion ||g||^2 - 2 g.nu + ||nu||^2 stays well conditioned; never N x K x D."""
    g = (features.double() - origin) @ basis
    nu = (centres.double() - origin) @ basis
    distances = (g * g).sum(1, keepdim=True) - 2 * g @ nu.T + (nu * nu).sum(1)
    return distances.clamp_min(0)


def mds_score(member: MemberInputs, statistics: Statistics) -> torch.Tensor:
    """MDS: minus the smallest squared Mahalanobis distance to a class mean under the shared
    within-class covariance of the training split (statistic ``gaussian``)."""
    g = statistics["gaussian"]
    basis = whitening(g["within_eigenvalues"], g["within_eigenvectors"])
    d = squared_mahalanobis(member.required_features(), g["class_means"], g["mean"], basis)
    return -d.min(dim=1).values


def rmds_score(member: MemberInputs, statistics: Statistics) -> torch.Tensor:
    """RMDS: the squared Mahalanobis distance to the training mean under the total covariance
    minus the smallest one to a class mean (shared within-class covariance)."""
    g = statistics["gaussian"]
    f = member.required_features()
    within = whitening(g["within_eigenvalues"], g["within_eigenvectors"])
    total = whitening(g["total_eigenvalues"], g["total_eigenvectors"])
    background = squared_mahalanobis(f, g["mean"][None], g["mean"], total)[:, 0]
    classes = squared_mahalanobis(f, g["class_means"], g["mean"], within)
    return background - classes.min(dim=1).values


def knn_score(member: MemberInputs, statistics: Statistics, k: int) -> torch.Tensor:
    """KNN: minus the squared Euclidean distance of the unit-normalised features to their
    k-th nearest neighbour in the unit-normalised training bank (statistic ``knn_bank``),
    2 - 2 x the k-th largest cosine similarity."""
    bank = statistics["knn_bank"]["bank"]
    similarity = kth_neighbour_similarity(member.required_features(), bank, k)
    return -(2.0 - 2.0 * similarity.double())


def fdbd(features: torch.Tensor, head: LinearHead, train_mean: torch.Tensor | None) -> torch.Tensor:
    """fDBD: sum over classes c of |z_pred - z_c| / ||w_pred - w_c|| (the distance to each
    decision boundary), divided by ||f - train_mean|| (or ||f|| when ``train_mean`` is None)."""
    f = features.double()
    w = head.weight.double()
    z = head.logits(f)
    top, predicted = z.max(dim=1)
    distances = torch.cdist(w, w, compute_mode="donot_use_mm_for_euclid_dist")
    distances.fill_diagonal_(1.0)
    total = ((top[:, None] - z).abs() / distances[predicted]).sum(dim=1)
    norm = (f - train_mean).norm(dim=1) if train_mean is not None else f.norm(dim=1)
    return total / norm


def fdbd_score(member: MemberInputs, statistics: Statistics, centred: bool = True) -> torch.Tensor:
    """fDBD about the training mean (``centred``, statistic ``feature_mean``) or the origin."""
    mean = statistics["feature_mean"]["mean"] if centred else None
    return fdbd(member.required_features(), member.required_head(), mean)
