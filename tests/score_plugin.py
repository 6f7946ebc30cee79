"""A confidence score with a statistic and a parameter of its own, declared in one file (as a
user adds one, CONTRIBUTING.md "Add a score"): the tempered log-sum-exp of the cosine
similarities of a member's features to the class directions of the training split."""

import torch

from window_cascades import register_score, register_statistic
from window_cascades.uncertainty.score_registry import ScoreParameter


def fit_class_directions(train, fitted, values):
    """Unit-normalised class means of the training features."""
    f, y = train.features.double(), train.targets.long()
    means = torch.zeros(train.num_classes, f.shape[1], dtype=torch.float64).index_add_(0, y, f)
    return {"directions": means / means.norm(dim=1, keepdim=True).clamp_min(1e-12)}


def check_temperature(value, context):
    if not value > 0:
        raise ValueError(f"temperature {value!r}: expected a number > 0")
    return float(value)


register_statistic("class_directions", fit_class_directions, needs_targets=True)


@register_score(
    "class_cosine",
    "tempered logsumexp of the cosine similarities to the training class means",
    inputs="features",
    statistics=("class_directions",),
    parameters=(
        ScoreParameter("temperature", 0.1, (0.05, 0.1, 0.5), "softmax temperature", float,
                       check_temperature),
    ),
)  # fmt: skip
def class_cosine(member, statistics, temperature: float) -> torch.Tensor:
    f = member.required_features().double()
    f = f / f.norm(dim=1, keepdim=True).clamp_min(1e-12)
    cosine = f @ statistics["class_directions"]["directions"].T
    return temperature * torch.logsumexp(cosine / temperature, dim=1)
