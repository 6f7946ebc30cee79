"""The built-in confidence scores and the training-split statistics they read, registered with
their parameters (default, grid, check). No torch here: the functions are named by path
(``window_cascades.uncertainty.feature_scores``, ``window_cascades.uncertainty.scores``) and
imported on first use, so a command checks ``--scores`` before its heavy imports.

The formulas, the parameters and the selection rule: docs/concepts/scores.md. Every feature score
equals OpenOOD v1.5's postprocessor (``openood/postprocessors/*_postprocessor.py``) on the same
features, checked by tests/uncertainty/test_feature_scores.py against a NumPy re-implementation.
"""

from __future__ import annotations

from window_cascades.uncertainty.score_registry import (
    ScoreContext,
    ScoreParameter,
    register_score,
    register_statistic,
)

SCORES_MODULE = "window_cascades.uncertainty.feature_scores"
STATISTICS_MODULE = "window_cascades.uncertainty.feature_statistics"


def _positive(name: str):
    def check(value: float, context: ScoreContext | None) -> float:
        if not value > 0:
            raise ValueError(f"{name} {value!r}: expected a number > 0")
        return float(value)

    return check


def _percentile(value: float, context: ScoreContext | None) -> float:
    """A percentile in (0, 100) that leaves at least one feature kept (k >= 1)."""
    if not 0 < value < 100:
        raise ValueError(f"percentile {value!r}: expected a number in (0, 100)")
    if context is not None and context.num_features is not None:
        d = context.num_features
        if d - int(round(d * value / 100.0)) < 1:
            raise ValueError(f"percentile {value!r} keeps no feature of {d}")
    return float(value)


def _top_classes(value: int, context: ScoreContext | None) -> int:
    """M >= 1, at most C (a larger M takes every class)."""
    if value < 1:
        raise ValueError(f"M {value!r}: expected an integer >= 1")
    return min(int(value), context.num_classes) if context is not None else int(value)


def _neighbour(value: int, context: ScoreContext | None) -> int:
    if value < 1:
        raise ValueError(f"k {value!r}: expected an integer >= 1")
    if context is not None and context.train_size is not None and value > context.train_size:
        raise ValueError(f"k {value!r}: the feature bank holds {context.train_size} samples")
    return int(value)


def _principal_dim(value: int, context: ScoreContext | None) -> int:
    if value < 1:
        raise ValueError(f"dim {value!r}: expected an integer >= 1")
    if context is not None and context.num_features is not None:
        if value >= context.num_features:
            raise ValueError(
                f"dim {value!r}: the principal subspace must be smaller than the feature "
                f"dimension {context.num_features} (else no residual is left)"
            )
    return int(value)


def _vim_default(context: ScoreContext) -> int:
    """ViM's rule: 1000 for D >= 2048, 512 for D >= 768, else D / 2"""
    d = context.num_features or 2
    return 1000 if d >= 2048 else 512 if d >= 768 else max(1, d // 2)


def _vim_grid(context: ScoreContext) -> tuple[int, ...]:
    """D/8, D/4, D/2, 3D/4"""
    d = context.num_features or 2
    return tuple(max(1, v) for v in (d // 8, d // 4, d // 2, 3 * d // 4))


def _variant(value: str, context: ScoreContext | None) -> str:
    if value not in ("b", "p", "s"):
        raise ValueError(f"variant {value!r}: expected 'b', 'p' or 's'")
    return value


PERCENTILES = (65.0, 70.0, 75.0, 80.0, 85.0, 90.0, 95.0)

register_statistic(
    "feature_mean",
    f"{STATISTICS_MODULE}:fit_feature_mean",
    description="mean of the training features",
)
register_statistic(
    "moments",
    f"{STATISTICS_MODULE}:fit_moments",
    description="count, mean, centred scatter matrix and (with labels) class counts and means",
    requires=("feature_mean",),
)
register_statistic(
    "gaussian",
    f"{STATISTICS_MODULE}:fit_gaussian",
    description="class means and the eigendecompositions of the shared within-class and the "
    "total covariance",
    needs_targets=True,
    requires=("moments",),
)
register_statistic(
    "vim",
    f"{STATISTICS_MODULE}:fit_vim",
    description="ViM's origin, principal axes and mean residual norm at every dimension",
    needs_head=True,
    requires=("moments",),
)
register_statistic(
    "activations",
    f"{STATISTICS_MODULE}:fit_activations",
    description="percentiles of every training activation (ReAct's thresholds)",
    parametrised_by=("react", "p"),
)
register_statistic(
    "knn_bank",
    f"{STATISTICS_MODULE}:fit_knn_bank",
    description="the unit-normalised training features (a seeded subsample above 200,000)",
    stored=False,
)

register_score(
    "msp",
    "maximum softmax probability, max_c p_c",
    inputs="probs",
    function="window_cascades.uncertainty.feature_scores:maximum_probability",
    reference="Hendrycks & Gimpel, ICLR 2017",
)(None)
register_score(
    "entropy",
    "negative entropy, sum_c p_c log p_c (nats)",
    inputs="probs",
    function="window_cascades.uncertainty.feature_scores:negative_entropy",
)(None)
register_score(
    "max_logit",
    "maximum logit, max_c z_c",
    inputs="logits",
    function="window_cascades.uncertainty.feature_scores:maximum_logit",
    reference="Hendrycks et al., ICML 2022 (OpenOOD 'mls')",
)(None)
register_score(
    "energy",
    "negative energy, logsumexp_c z_c",
    inputs="logits",
    function="window_cascades.uncertainty.feature_scores:negative_energy",
    reference="Liu et al., NeurIPS 2020 (OpenOOD 'ebo', T = 1)",
)(None)
register_score(
    "mutual_information",
    "negative mutual information between prediction and member (ensemble disagreement; 0 for "
    "one member)",
    inputs="logits",
    ensemble="disagreement",
    function="window_cascades.uncertainty.feature_scores:single_member_disagreement",
)(None)
register_score(
    "gen",
    "generalized entropy, -sum over the M largest p_j of p_j^gamma (1 - p_j)^gamma",
    inputs="probs",
    parameters=(
        ScoreParameter(
            "gamma", 0.1, (0.01, 0.1, 0.5, 1.0, 2.0, 5.0, 10.0), "exponent", float,
            _positive("gamma"),
        ),
        ScoreParameter(
            "M", 100, (10, 50, 100, 200, 500, 1000), "largest probabilities summed (at most C)",
            int, _top_classes,
        ),
    ),
    function=f"{SCORES_MODULE}:gen",
    reference="Liu, Lochman & Zach, CVPR 2023 (OpenOOD gen_postprocessor)",
)(None)  # fmt: skip
register_score(
    "react",
    "energy of the features clipped at the p-th percentile of the training activations",
    inputs="features",
    needs_head=True,
    statistics=("activations",),
    parameters=(
        ScoreParameter(
            "p", 90.0, (85.0, 90.0, 95.0, 99.0), "percentile of the training activations",
            float, _percentile,
        ),
    ),
    function=f"{SCORES_MODULE}:react_score",
    reference="Sun, Guo & Li, NeurIPS 2021 (OpenOOD react_postprocessor)",
)(None)  # fmt: skip
register_score(
    "ash",
    "energy after pruning each sample's features below its p-th percentile (ASH-B: the kept "
    "ones set to their mean share; -P: kept; -S: kept and rescaled)",
    inputs="features",
    needs_head=True,
    parameters=(
        ScoreParameter("p", 90.0, PERCENTILES, "percentile pruned per sample", float, _percentile),
        ScoreParameter("variant", "b", ("b", "p", "s"), "ASH-B, ASH-P or ASH-S", str, _variant),
    ),
    function=f"{SCORES_MODULE}:ash_score",
    reference="Djurisic et al., ICLR 2023 (OpenOOD ash_postprocessor, ash_b)",
)(None)
register_score(
    "scale",
    "energy of the features scaled by exp(sum of all / sum of the top (100 - p)%)",
    inputs="features",
    needs_head=True,
    parameters=(
        ScoreParameter("p", 85.0, PERCENTILES, "percentile of the scaling", float, _percentile),
    ),
    function=f"{SCORES_MODULE}:scale_score",
    reference="Xu et al., ICLR 2024 (OpenOOD scale_postprocessor)",
)(None)
register_score(
    "vim",
    "energy minus alpha x the norm of the features' residual outside the principal subspace",
    inputs="features",
    needs_head=True,
    statistics=("vim",),
    parameters=(
        ScoreParameter(
            "dim", _vim_default, _vim_grid, "dimension of the principal subspace", int,
            _principal_dim,
        ),
    ),
    function=f"{SCORES_MODULE}:vim_score",
    reference="Wang et al., CVPR 2022 (OpenOOD vim_postprocessor)",
)(None)  # fmt: skip
register_score(
    "knn",
    "minus the squared distance of the unit-normalised features to their k-th nearest "
    "training neighbour",
    inputs="features",
    statistics=("knn_bank",),
    parameters=(
        ScoreParameter(
            "k", 50, (1, 10, 50, 100, 200, 500, 1000), "neighbour rank", int, _neighbour
        ),
    ),
    function=f"{SCORES_MODULE}:knn_score",
    reference="Sun et al., ICML 2022 (OpenOOD knn_postprocessor)",
)(None)
register_score(
    "mds",
    "minus the smallest Mahalanobis distance to a class mean (shared covariance)",
    inputs="features",
    statistics=("gaussian",),
    function=f"{SCORES_MODULE}:mds_score",
    reference="Lee et al., NeurIPS 2018 (OpenOOD mds_postprocessor)",
)(None)
register_score(
    "rmds",
    "the largest Mahalanobis distance to the training mean (total covariance) minus that to a "
    "class mean",
    inputs="features",
    statistics=("gaussian",),
    function=f"{SCORES_MODULE}:rmds_score",
    reference="Ren et al., 2021 (OpenOOD rmds_postprocessor)",
)(None)
register_score(
    "fdbd",
    "sum over classes of the logit gap to the prediction over the weight distance, divided by "
    "the features' distance to the training mean (or their norm)",
    inputs="features",
    needs_head=True,
    statistics=("feature_mean",),
    parameters=(
        ScoreParameter(
            "centred", True, (True, False), "divide by the distance to the training mean (else "
            "by the norm)", bool,
        ),
    ),
    function=f"{SCORES_MODULE}:fdbd_score",
    reference="Liu & Qin, ICML 2024 (OpenOOD fdbd_postprocessor)",
)(None)  # fmt: skip
