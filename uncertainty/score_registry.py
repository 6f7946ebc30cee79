"""The score registry: every confidence score by name, as policies and metrics are registered.

A score is one entry: its name, a pure tensor function (higher = more confident, i.e. more
in-distribution), what the function reads (``probs``, ``logits`` or ``features``), how an
ensemble of members combines it (``ENSEMBLE_RULES``), the statistics of the training split
it needs (``register_statistic``) and its parameters, each declared with a default, a grid and a
check (``ScoreParameter``). From those declarations come, with nothing else to edit:

- the offline evaluator's ``--scores`` choices and ``--score-param SCORE.NAME=VALUE`` checks;
- the grid the selection rule searches (``window_cascades.cascade.member_scores``) and the
  statistics fitted once on the training split (``window_cascades.artifacts.score_statistics``);
- the score table of the docs and the contract tests, which run over every entry (a plugin's
  included).

This module imports no torch: a command checks its ``--scores`` before its heavy imports. The
built-in entries (``window_cascades.uncertainty.builtin_scores``) name their functions by
dotted path, resolved on first use; a plugin passes the function itself. Adding a score::

    @register_score("my_score", "what it measures", inputs="features", needs_head=True,
                    parameters=(ScoreParameter("t", 1.0, (0.5, 1.0, 2.0), "a temperature"),))
    def my_score(member: MemberInputs, statistics: dict, t: float) -> torch.Tensor:
        return torch.logsumexp(member.head_logits() / t, dim=-1) * t
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

INPUTS: tuple[str, ...] = ("probs", "logits", "features")
"""What a score function reads: ``probs`` (N x C probabilities; the ensemble's averaged ones),
``logits`` (one member's N x C logits) or ``features`` (one member's ``MemberInputs``: its
penultimate features, logits and final linear layer)."""

ENSEMBLE_RULES: tuple[str, ...] = ("probs", "mean", "standardised_mean", "disagreement")
"""How the ensemble of the first k members is scored:

- ``probs``: the score of the averaged (temperature-scaled, when fitted) probabilities;
- ``mean``: the mean of the members' scores (``max_logit``, ``energy``);
- ``standardised_mean``: the mean of the members' scores, each standardised with its mean and
  standard deviation on the held-out split (scale-free: members of different architectures
  weigh the same; one member's ranking is unchanged);
- ``disagreement``: ``mutual_information`` only (member disagreement; 0 for one member).
"""


@dataclass(frozen=True)
class ScoreContext:
    """What a parameter's default, grid and check may depend on.

    Attributes:
        num_classes: C, the number of classes.
        num_features: D, the feature dimension (None for a score of logits).
        train_size: samples of the training split the statistics were fitted on (None: none).
    """

    num_classes: int
    num_features: int | None = None
    train_size: int | None = None


@dataclass(frozen=True)
class ScoreParameter:
    """One declared parameter of a score.

    Attributes:
        name: the parameter's name (``--score-param SCORE.NAME=VALUE``).
        default: its value when none is chosen, or ``(ScoreContext) -> value`` for one that
            depends on the data (ViM's dimension).
        grid: the values the selection rule tries, or ``(ScoreContext) -> values``; values the
            check refuses for the data at hand are dropped (e.g. a KNN k above the bank size).
        help: one line, with the unit.
        kind: ``float``, ``int``, ``str`` or ``bool``: how a command-line value is read.
        check: ``(value, ScoreContext or None) -> value``; raises ValueError naming the value
            (None: any value of ``kind``). Called with None where the data is not known yet.
    """

    name: str
    default: Any
    grid: tuple | Callable[[ScoreContext], tuple]
    help: str
    kind: type = float
    check: Callable[[Any, ScoreContext | None], Any] | None = None

    def default_for(self, context: ScoreContext) -> Any:
        """The default for this data."""
        return self.default(context) if callable(self.default) else self.default

    def validate(self, value: Any, context: ScoreContext | None = None) -> Any:
        """The value checked (and converted to ``kind``); raises ValueError naming it."""
        try:
            value = read_value(value, self.kind)
        except ValueError:
            raise ValueError(f"{self.name} {value!r}: expected a {self.kind.__name__}") from None
        return self.check(value, context) if self.check is not None else value

    def grid_for(self, context: ScoreContext) -> tuple:
        """The grid's values that pass the check for this data, in order, without repeats
        (the default first when the grid holds it)."""
        values = self.grid(context) if callable(self.grid) else self.grid
        kept: list = []
        for value in values:
            try:
                value = self.validate(value, context)
            except ValueError:
                continue
            if value not in kept:
                kept.append(value)
        return tuple(kept)


def read_value(value: Any, kind: type) -> Any:
    """A command-line or config value as ``kind`` (``bool`` reads true/false, 1/0)."""
    if kind is bool:
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in ("true", "1", "yes"):
            return True
        if text in ("false", "0", "no"):
            return False
        raise ValueError(value)
    if kind is int and isinstance(value, float) and not value.is_integer():
        raise ValueError(value)
    if isinstance(value, bool) and kind is not str:
        raise ValueError(value)
    return kind(value)


@dataclass(frozen=True)
class ScoreEntry:
    """One registered score.

    Attributes:
        name: the score's name (``--scores``, the ``score`` column of ``metrics.csv``).
        function: the pure tensor function, or its ``"module:name"`` (resolved by ``fn``).
            By ``inputs``: ``probs`` -> ``fn(probs, **params)``; ``logits`` ->
            ``fn(logits, **params)``; ``features`` -> ``fn(member, statistics, **params)``
            with a ``MemberInputs`` and the fitted statistics by name. Returns N
            confidences (float64), higher = more in-distribution.
        description: one line with its definition.
        inputs: one of ``INPUTS``.
        ensemble: one of ``ENSEMBLE_RULES``.
        statistics: the statistics of the training split it reads (``register_statistic``).
        parameters: its declared parameters.
        needs_head: reads the member's final linear layer (weight, bias).
        reference: where the formula comes from (paper; the implementation it is tested
            against).
    """

    name: str
    function: Callable | str
    description: str
    inputs: str = "logits"
    ensemble: str = "mean"
    statistics: tuple[str, ...] = ()
    parameters: tuple[ScoreParameter, ...] = ()
    needs_head: bool = False
    reference: str = ""

    @property
    def fn(self) -> Callable:
        """The score function (imported on first use when named by path)."""
        return resolve(self.function)

    @property
    def needs_features(self) -> bool:
        """Whether it reads the members' penultimate features."""
        return self.inputs == "features"

    @property
    def needs_member_scores(self) -> bool:
        """Whether its ensemble is the mean of member scores computed outside the ensemble
        state: a feature score, or a score of logits with parameters or standardised
        (``max_logit`` and ``energy`` are summed by the state itself)."""
        if self.inputs == "features":
            return True
        return self.inputs == "logits" and (
            bool(self.parameters) or self.ensemble == "standardised_mean"
        )

    @property
    def from_state_alone(self) -> bool:
        """Whether the ensemble state computes it from the members' probabilities and logit
        sums alone (no member scores, no parameters chosen on data)."""
        return not self.needs_member_scores and not self.parameters

    def parameter(self, name: str) -> ScoreParameter:
        """The declared parameter ``name``; a clear error for another."""
        for p in self.parameters:
            if p.name == name:
                return p
        known = [p.name for p in self.parameters] or "none"
        raise ValueError(f"score {self.name!r} has no parameter {name!r} (it has {known})")

    def defaults(self, context: ScoreContext) -> dict[str, Any]:
        """Every parameter at its declared default for this data."""
        return {p.name: p.validate(p.default_for(context), context) for p in self.parameters}


@dataclass(frozen=True)
class StatisticEntry:
    """One registered statistic of the training split.

    Attributes:
        name: its name (the file ``stats/<name>.safetensors`` beside the cached features).
        function: ``fit(train, fitted, values) -> {name: tensor}`` (or its ``"module:name"``):
            ``train`` a ``TrainInputs``, ``fitted`` the statistics it ``requires``
            already fitted, ``values`` the parameter values it is fitted for (see
            ``parametrised_by``; None otherwise).
        description: one line.
        needs_targets: it reads the training labels (class means).
        needs_head: it reads the final linear layer.
        requires: statistics fitted before it and handed to it.
        stored: written to disk (False: cheap to rebuild and as large as the features, e.g.
            the KNN bank).
        parametrised_by: ``(score, parameter)`` whose values it is fitted at (ReAct's
            percentiles); None: no values.
    """

    name: str
    function: Callable | str
    description: str = ""
    needs_targets: bool = False
    needs_head: bool = False
    requires: tuple[str, ...] = ()
    stored: bool = True
    parametrised_by: tuple[str, str] | None = None

    @property
    def fn(self) -> Callable:
        return resolve(self.function)


def resolve(function: Callable | str) -> Callable:
    """A function given itself or as ``"module:name"``."""
    if callable(function):
        return function
    module, _, name = function.partition(":")
    return getattr(importlib.import_module(module), name)


_SCORES: dict[str, ScoreEntry] = {}
_STATISTICS: dict[str, StatisticEntry] = {}


def register_score(
    name: str,
    description: str,
    *,
    inputs: str = "logits",
    ensemble: str | None = None,
    statistics: tuple[str, ...] = (),
    parameters: tuple[ScoreParameter, ...] = (),
    needs_head: bool = False,
    reference: str = "",
    function: str | None = None,
) -> Callable:
    """Decorator registering a confidence score under ``name``; from then on ``--scores``,
    the online cascade and ``window_cascades.evaluate`` can use it.

    Args:
        name: the score's name (lower case letters, digits and ``_``).
        description: its definition in one line (help texts, docs).
        inputs: what the function reads, one of ``INPUTS``.
        ensemble: how an ensemble combines it, one of ``ENSEMBLE_RULES``
            (``disagreement`` is mutual information's own); default ``probs`` for a score of
            probabilities, ``mean`` for one of logits, ``standardised_mean`` for one of
            features.
        statistics: registered statistics of the training split it reads.
        parameters: its parameters (``ScoreParameter``), each with default, grid, check.
        needs_head: it reads the final linear layer (``features`` scores only).
        reference: the paper and implementation the formula follows.
        function: the function as ``"module:name"`` (built-in entries, so that registering
            imports no torch); then the decorator is not used: call
            ``register_score(...)(None)``.

    Returns:
        The decorator; it returns the function unchanged.

    Raises:
        ValueError: a name registered twice or not an identifier, an unknown ``inputs``,
            ``ensemble`` or statistic, a rule that does not fit the inputs, or two parameters of
            one name.

    Example:
        >>> import torch
        >>> @register_score("top2_margin", "difference of the two largest probabilities",
        ...                 inputs="probs")
        ... def top2_margin(probs: torch.Tensor) -> torch.Tensor:
        ...     top = probs.double().topk(2, dim=-1).values
        ...     return top[:, 0] - top[:, 1]
        >>> score_entry("top2_margin").ensemble
        'probs'
        >>> unregister_score("top2_margin")  # (a test's clean-up; a plugin stays registered)
    """
    if not name or not name.replace("_", "a").isalnum() or name.lower() != name:
        raise ValueError(f"score name {name!r}: use lower case letters, digits and '_'")
    if inputs not in INPUTS:
        raise ValueError(f"score {name!r}: inputs {inputs!r} is not one of {list(INPUTS)}")
    rule = ensemble or {"probs": "probs", "logits": "mean"}.get(inputs, "standardised_mean")
    if rule not in ENSEMBLE_RULES:
        raise ValueError(f"score {name!r}: ensemble {rule!r} is not one of {list(ENSEMBLE_RULES)}")
    if (rule == "probs") != (inputs == "probs"):
        raise ValueError(
            f"score {name!r}: a score of probabilities is combined as 'probs' (the averaged "
            f"probabilities), any other by its members' scores; got inputs {inputs!r} with "
            f"ensemble {rule!r}"
        )
    if (needs_head or statistics) and inputs != "features":
        raise ValueError(f"score {name!r}: statistics and the head are read by feature scores")
    names = [p.name for p in parameters]
    if len(set(names)) != len(names):
        raise ValueError(f"score {name!r}: parameters named twice in {names}")

    def add(fn: Callable | None) -> Callable | None:
        if name in _SCORES:
            raise ValueError(f"score {name!r} is registered twice")
        unknown = [s for s in statistics if s not in _STATISTICS]
        if unknown:
            raise ValueError(
                f"score {name!r}: unknown statistic(s) {unknown}; registered: {list(_STATISTICS)}"
            )
        target = function if fn is None else fn
        if target is None:
            raise ValueError(f"score {name!r}: give the function (decorate it, or function=)")
        _SCORES[name] = ScoreEntry(
            name,
            target,
            description,
            inputs,
            rule,
            tuple(statistics),
            tuple(parameters),
            needs_head,
            reference,
        )
        return fn

    return add


def unregister_score(name: str) -> None:
    """Remove a registered score (a test's, or a plugin's).

    Raises:
        ValueError: no score is registered under ``name``.
    """
    score_entry(name)
    del _SCORES[name]


def register_statistic(
    name: str,
    function: Callable | str,
    *,
    description: str = "",
    needs_targets: bool = False,
    needs_head: bool = False,
    requires: tuple[str, ...] = (),
    stored: bool = True,
    parametrised_by: tuple[str, str] | None = None,
) -> StatisticEntry:
    """Register a statistic of the training split that scores read (fitted once per member
    and cached beside its features, see ``StatisticEntry``).

    Args:
        name: its name.
        function: ``fit(train, fitted, values) -> {name: tensor}`` or ``"module:name"``.
        description: one line.
        needs_targets: reads the training labels.
        needs_head: reads the final linear layer.
        requires: statistics it is computed from (registered before it).
        stored: cached on disk (False: rebuilt in memory each run).
        parametrised_by: ``(score, parameter)`` whose values it is fitted at.

    Returns:
        The entry.

    Raises:
        ValueError: a name registered twice, or an unknown statistic in ``requires``.

    Example:
        >>> import torch
        >>> def fit_feature_max(train, fitted, values):
        ...     return {"max": train.features.double().amax(dim=0)}
        >>> register_statistic("feature_max", fit_feature_max).needs_targets
        False
        >>> unregister_statistic("feature_max")  # (a test's clean-up)
    """
    if name in _STATISTICS:
        raise ValueError(f"statistic {name!r} is registered twice")
    unknown = [r for r in requires if r not in _STATISTICS]
    if unknown:
        raise ValueError(f"statistic {name!r}: requires unknown statistic(s) {unknown}")
    entry = StatisticEntry(
        name, function, description, needs_targets, needs_head, tuple(requires), stored,
        parametrised_by,
    )  # fmt: skip
    _STATISTICS[name] = entry
    return entry


def unregister_statistic(name: str) -> None:
    """Remove a registered statistic (a test's clean-up)."""
    statistic_entry(name)
    del _STATISTICS[name]


def score_entries() -> dict[str, ScoreEntry]:
    """Every registered score, in registration order."""
    return dict(_SCORES)


def score_names() -> tuple[str, ...]:
    """Names of every registered score."""
    return tuple(_SCORES)


def score_entry(name: str) -> ScoreEntry:
    """The entry of ``name``, with a clear error for an unknown name."""
    if name not in _SCORES:
        raise ValueError(f"unknown confidence score {name!r}; expected one of {list(_SCORES)}")
    return _SCORES[name]


def check_state_score(score: str, why: str) -> None:
    """Refuse a score the ensemble state does not compute alone
    ([`ScoreEntry.from_state_alone`][]): ``why`` names what holds no logits or features.

    Args:
        score: a registered score's name.
        why: what refuses it, e.g. ``"the outputs cache (--outputs-cache)"``.

    Raises:
        ValueError: naming the score, the reason and what to use instead.
    """
    entry = score_entry(score)
    if not entry.from_state_alone:
        raise ValueError(
            f"--score {score}: its parameters or standardisation are chosen on each member's "
            f"{entry.inputs}, which {why} does not hold; evaluate it without it, or use a score "
            "without parameters (e.g. msp, entropy, energy)"
        )


def statistic_entry(name: str) -> StatisticEntry:
    """The statistic ``name``, with a clear error for an unknown one."""
    if name not in _STATISTICS:
        raise ValueError(f"unknown statistic {name!r}; registered: {list(_STATISTICS)}")
    return _STATISTICS[name]


def statistics_for(scores: list[str]) -> list[str]:
    """The statistics the named scores read, each after those it requires, without repeats."""
    order: list[str] = []

    def visit(name: str) -> None:
        for required in statistic_entry(name).requires:
            visit(required)
        if name not in order:
            order.append(name)

    for score in scores:
        for name in score_entry(score).statistics:
            visit(name)
    return order


def score_table() -> str:
    """The registered scores as a Markdown table (name, definition, reads, ensemble rule,
    parameters with default and grid)."""
    lines = [
        "| score | definition | reads | ensemble | parameters (default; grid) |",
        "| --- | --- | --- | --- | --- |",
    ]
    for e in _SCORES.values():
        reads = e.inputs + (", head" if e.needs_head else "")
        reads += "".join(f", `{s}`" for s in e.statistics)
        params = "; ".join(
            f"`{p.name}` ({_shown(p.default)}; {_shown(p.grid)})" for p in e.parameters
        )
        lines.append(
            f"| `{e.name}` | {e.description} | {reads} | `{e.ensemble}` | {params or '-'} |"
        )
    return "\n".join(lines)


def _shown(value: Any) -> str:
    if callable(value):
        return (getattr(value, "__doc__", None) or "from the data").strip().split("\n")[0]
    if isinstance(value, tuple):
        return ", ".join(str(v) for v in value)
    return str(value)
