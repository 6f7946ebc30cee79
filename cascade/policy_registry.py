"""The policy registry: every cascade policy by name, as timm registers models.

A policy is one entry: its name, a fit function and a one-line description. The fit function
takes the held-out stage scores (:class:`FitInputs`) and the settings (:class:`PolicySettings`)
and returns a fitted policy (:class:`cascade.policies.IntervalPolicy` or any object with
``name``, ``setting``, ``num_stages``, ``passes`` and ``to_dict``). The online
``CascadeModule``, the offline evaluator, their command-line help and the README's policy table
all take the list from here. Adding a policy::

    @register_policy("my_policy", "one line saying what it passes on", sweep="width")
    def fit_my_policy(inputs: FitInputs, settings: PolicySettings) -> IntervalPolicy: ...

``sweep`` names the :class:`PolicySettings` field whose values a sweep varies for this policy
(``width`` or ``pass_fraction``); None: the policy is fitted once per run.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch

from uncertainty.definitions import get_definitions
from uncertainty.guarantees import check_guarantee
from uncertainty.targets import parse_target


def check_width(width: float) -> float:
    """Validate a window half-width w in (0, 0.5]."""
    if not (isinstance(width, (int, float)) and 0 < width <= 0.5):
        raise ValueError(f"window width w must be in (0, 0.5], got {width!r}")
    return float(width)


def check_fraction(fraction: float, what: str) -> float:
    """Validate a pass fraction in (0, 1)."""
    if not (isinstance(fraction, (int, float)) and 0 < fraction < 1):
        raise ValueError(f"{what} must be in (0, 1), got {fraction!r}")
    return float(fraction)


@dataclass
class PolicySettings:
    """How the policies are fitted.

    Attributes:
        target: operating target of the window, e.g. ``cov@5``, ``risk@80``, ``fpr@95``.
        width: window half-width w in quantiles, in (0, 0.5].
        pass_fraction: fraction of least confident samples ``single_threshold`` passes on.
        random_fraction: fraction ``random`` passes on (None: 2w).
        seed: seed of the random policy.
        definitions: ``standard`` or ``paper``.
        guarantee: DELTA in (0, 1): the window's threshold tau is the guaranteed one
            (``uncertainty.guarantees``), None: the empirical one.
        guarantee_method: ``ltt`` or ``sgr`` (risk targets).
        budget: ``budget_window``'s expected cost per sample, in units of the first member's
            MACs (between 1 and the full ensemble's cost).
        budget_grid: quantile points of ``budget_window``'s interval search.
        budget_objective: ``target`` (the target's cov@R or risk@C on held-out) or ``augrc``.
        budget_select: how ``budget_window`` picks its rule (``cascade.budget_selection``):
            ``cv`` (the paper's window unless a search beats it cross-fitted on held-out),
            ``search`` (the plain grid search), ``coarse`` (the search on a grid of ~N / 100
            points) or ``window`` (the paper's window at the budget's cost).
    """

    target: str = "cov@5"
    width: float = 0.1
    pass_fraction: float = 0.2
    random_fraction: float | None = None
    seed: int = 0
    definitions: str = "standard"
    guarantee: float | None = None
    guarantee_method: str = "ltt"
    budget: float = 1.2
    budget_grid: int = 200
    budget_objective: str = "target"
    budget_select: str = "cv"

    def __post_init__(self):
        parse_target(self.target)
        check_guarantee(self.guarantee, self.guarantee_method)
        if not (self.budget >= 1 and math.isfinite(self.budget)):
            raise ValueError(
                f"budget must be >= 1 (the first member alone) and finite, got {self.budget}"
            )
        if isinstance(self.budget_grid, bool) or not (
            isinstance(self.budget_grid, int) and self.budget_grid >= 2
        ):
            raise ValueError(f"budget grid must be an integer >= 2, got {self.budget_grid!r}")
        if self.budget_objective not in ("target", "augrc"):
            raise ValueError(
                f"budget objective {self.budget_objective!r}: expected 'target' or 'augrc'"
            )
        if self.budget_select not in ("cv", "search", "coarse", "window"):
            raise ValueError(
                f"budget selection {self.budget_select!r}: expected cv, search, coarse or window"
            )
        check_width(self.width)
        check_fraction(self.pass_fraction, "single_threshold pass fraction")
        if self.random_fraction is not None:
            check_fraction(self.random_fraction, "random pass fraction")
        get_definitions(self.definitions)


@dataclass
class FitInputs:
    """What a policy is fitted on, for a cascade of ``num_stages`` members.

    Attributes:
        stage_confidence: for k = 0..M-2, held-out confidences (float64, N) of the ensemble of
            the first k + 1 members.
        stage_correct: matching correctness of that ensemble's prediction (N each, bool).
        mixture_confidence: per stage, confidences on the unlabelled test mixture (ID + OOD),
            or None when no policy needs them.
        heldout_name: name of the held-out dataset, for error messages.
        final_confidence, final_correct: the full ensemble's held-out confidences and
            correctness (policies that score the cascade's output, e.g. ``budget_window``).
        stage_macs: MACs per member (policies with a compute budget).
    """

    stage_confidence: list[torch.Tensor]
    stage_correct: list[torch.Tensor]
    mixture_confidence: list[torch.Tensor] | None = None
    heldout_name: str = "heldout"
    final_confidence: torch.Tensor | None = None
    final_correct: torch.Tensor | None = None
    stage_macs: list[float] | None = None

    @property
    def num_stages(self) -> int:
        """M, the number of members."""
        return len(self.stage_confidence) + 1


@dataclass(frozen=True)
class PolicyEntry:
    """One registered policy.

    Attributes:
        name: the policy's name (the ``policy`` column of ``metrics.csv``).
        fit: (FitInputs, PolicySettings) -> fitted policy.
        description: one line, for help texts and the README.
        sweep: the PolicySettings field a sweep varies (``width``, ``pass_fraction``,
            ``budget``) or None.
        needs_mixture: the fit reads ``FitInputs.mixture_confidence``.
    """

    name: str
    fit: Callable
    description: str
    sweep: str | None = None
    needs_mixture: bool = False


_REGISTRY: dict[str, PolicyEntry] = {}
SWEEPS = (None, "width", "pass_fraction", "budget")


def register_policy(
    name: str, description: str, sweep: str | None = None, needs_mixture: bool = False
) -> Callable:
    """Decorator registering ``fit`` under ``name`` (refuses a name registered twice)."""
    if sweep not in SWEEPS:
        raise ValueError(f"policy {name!r}: sweep must be one of {SWEEPS}")

    def add(fit: Callable) -> Callable:
        if name in _REGISTRY:
            raise ValueError(f"policy {name!r} is registered twice")
        _REGISTRY[name] = PolicyEntry(name, fit, description, sweep, needs_mixture)
        return fit

    return add


def unregister_policy(name: str) -> None:
    """Remove a registered policy (e.g. a plugin's, or one a test registered)."""
    policy_entry(name)
    del _REGISTRY[name]


def policy_entries() -> dict[str, PolicyEntry]:
    """Every registered policy, in registration order."""
    return dict(_REGISTRY)


def policy_names() -> tuple[str, ...]:
    """Names of every registered policy."""
    return tuple(_REGISTRY)


def policy_entry(name: str) -> PolicyEntry:
    """The entry of ``name``, with a clear error for an unknown name."""
    if name not in _REGISTRY:
        raise ValueError(f"unknown policy {name!r}; expected one of {list(_REGISTRY)}")
    return _REGISTRY[name]


def check_policies(names: list[str]) -> list[str]:
    """Validate a list of policy names (known, no repeats) and return it."""
    for name in names:
        policy_entry(name)
    if len(set(names)) != len(names):
        raise ValueError(f"policies are listed twice: {names}")
    return list(names)


def policy_table() -> str:
    """The registered policies as a Markdown table (name, what it passes on, swept by)."""
    lines = ["| policy | what it passes on to the next member | swept by |", "| --- | --- | --- |"]
    for e in _REGISTRY.values():
        sweep = f"`{e.sweep}`" if e.sweep else "-"
        lines.append(f"| `{e.name}` | {e.description} | {sweep} |")
    return "\n".join(lines)


def check_scores(confidence: torch.Tensor, what: str) -> torch.Tensor:
    """Flat float64 scores, refusing an empty split or NaN/Inf (``what`` names the data)."""
    if confidence.numel() == 0:
        raise ValueError(f"{what}: the held-out split is empty; the policies cannot be fitted")
    if not torch.isfinite(confidence).all():
        raise ValueError(f"{what}: confidences contain NaN or Inf")
    return confidence.double().flatten()


def fit_policies(
    names: list[str], inputs: FitInputs, settings: PolicySettings | None = None
) -> dict:
    """Fit every named policy on the held-out stage scores; returns name -> fitted policy."""
    check_policies(names)
    settings = settings or PolicySettings()
    for c in inputs.stage_confidence:
        check_scores(c, f"held-out split {inputs.heldout_name!r}")
    fitted = {}
    for name in names:
        entry = _REGISTRY[name]
        if entry.needs_mixture and inputs.mixture_confidence is None:
            raise ValueError(f"{name} needs the scores of an unlabelled test mixture")
        fitted[name] = entry.fit(inputs, settings)
    return fitted
