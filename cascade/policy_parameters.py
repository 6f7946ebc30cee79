"""What a policy's parameters are, and the settings every policy is fitted with.

Each policy declares its own parameters as a small frozen dataclass whose fields are made by
[`parameter`][] (as a timm model takes its own keyword arguments), and registers it with
``register_policy(..., parameters=TheDataclass)``. From those declarations come, with nothing
else to edit:

- the offline evaluator's options (``--width``, ``--budget-grid``, ...; a list option for a
  parameter some policy sweeps) and their ``--help`` text;
- the validation of every value, once, where it enters ([`PolicySettings`][]);
- the sweep axes (a policy's ``sweep`` names one of its parameters);
- the cost-to-target grid of a swept parameter that moves the policy's cost (its
  [`CostGrid`][]; ``window_cascades.cascade.cost_to_target``);
- the online calibration callback's options (``--calibration.<name>``, its default) and its
  ``parameters`` mapping.

Two policies may share a parameter (``window`` and ``window_adjusted`` share ``width``) by
using the same declaration; two different declarations of one name are refused.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from window_cascades.uncertainty.definitions import get_definitions
from window_cascades.uncertainty.guarantees import check_guarantee
from window_cascades.uncertainty.targets import parse_target

_METADATA_KEY = "policy_parameter"


@dataclass(frozen=True)
class CostGrid:
    """The values cost-to-target tries for a cost knob: a parameter that moves its policy's
    expected cost (the window's half-width, a pass fraction, a compute budget).

    Attributes:
        values: ``(points, ensemble_cost) -> knob values`` in increasing cost, ``points`` of
            them; ``ensemble_cost`` is the full ensemble's cost in units of member 1's MACs
            (``sum(MACs) / MACs[0]``), for a knob counted in those units.
        stop_when_reached: try no further value once one reaches every asked share of the
            ensemble's gain (for a policy whose every fit is costly, e.g. a search).

    Example:
        ``CostGrid(lambda points, ensemble_cost: [k / (points + 1) for k in range(1, points +
        1)])``: pass fractions 1 / 11 .. 10 / 11 for 10 points.
    """

    values: Callable[[int, float], list[float]]
    stop_when_reached: bool = False


@dataclass(frozen=True)
class PolicyParameter:
    """One declared parameter of one or more policies.

    Attributes:
        name: the parameter's name: the settings attribute and the option ``--<name>`` (with
            ``-`` for ``_``).
        default: its value when none is given (None: the policy derives one).
        help: one line for ``--help``, with the unit.
        kind: ``float``, ``int`` or ``str``: how a command-line value is read.
        check: validates a value and returns it (raises ValueError naming the value); None:
            any value of ``kind``.
        choices: the allowed values, for a parameter with a fixed set.
        cost_grid: for a cost knob (a parameter that moves the policy's expected cost), the
            values cost-to-target tries when a policy sweeps it; None: not a cost knob (a
            policy that sweeps it takes no part in cost-to-target).
    """

    name: str
    default: Any
    help: str
    kind: type = float
    check: Callable[[Any], Any] | None = None
    choices: tuple | None = None
    cost_grid: CostGrid | None = None

    def validate(self, value: Any) -> Any:
        """The value checked (choices, then ``check``); None passes when the default is None.

        Args:
            value: the value given (from a command line, a config or ``PolicySettings``).
        """
        if value is None and self.default is None:
            return None
        if self.choices is not None and value not in self.choices:
            expected = ", ".join(repr(c) for c in self.choices)
            raise ValueError(f"{self.name} {value!r}: expected one of {expected}")
        return self.check(value) if self.check is not None else value

    def field(self) -> Any:
        """A dataclass field for this parameter (its default and this declaration)."""
        return dataclasses.field(default=self.default, metadata={_METADATA_KEY: self})


def parameter(
    name: str,
    default: Any,
    help: str,
    kind: type = float,
    check: Callable[[Any], Any] | None = None,
    choices: tuple | None = None,
    cost_grid: CostGrid | None = None,
) -> Any:
    """A dataclass field declaring a policy parameter.

    Args:
        name: the parameter's name (the settings attribute; the option ``--<name>``).
        default: its value when none is given (None: the policy derives one).
        help: one line for ``--help``, with the unit.
        kind: ``float``, ``int`` or ``str``: how a command-line value is read.
        check: validates a value and returns it (raises ValueError naming the value).
        choices: the allowed values, for a parameter with a fixed set.
        cost_grid: the values cost-to-target tries, for a cost knob ([`CostGrid`][]).

    Returns:
        A ``dataclasses.field`` carrying the [`PolicyParameter`][].
    """
    return PolicyParameter(name, default, help, kind, check, choices, cost_grid).field()


def parameters_of(declaration: type | None) -> tuple[PolicyParameter, ...]:
    """The parameters a policy's dataclass declares, in field order (none for None).

    Args:
        declaration: a policy's parameters dataclass, or None (no parameters).
    """
    if declaration is None:
        return ()
    if not dataclasses.is_dataclass(declaration):
        raise TypeError(f"policy parameters must be a dataclass, got {declaration!r}")
    found = []
    for f in dataclasses.fields(declaration):
        declared = f.metadata.get(_METADATA_KEY)
        if declared is None or declared.name != f.name:
            raise TypeError(
                f"{declaration.__name__}.{f.name}: declare it with parameter({f.name!r}, ...) or "
                "a shared PolicyParameter's .field()"
            )
        found.append(declared)
    return tuple(found)


_DECLARED: dict[str, PolicyParameter] = {}
_USERS: dict[str, set[str]] = {}


def declare_parameters(policy: str, parameters: tuple[PolicyParameter, ...]) -> None:
    """Record ``policy``'s parameters (refusing a name declared differently elsewhere).

    Args:
        policy: the policy's registered name.
        parameters: its parameters ([`parameters_of`][]).
    """
    for p in parameters:
        known = _DECLARED.get(p.name)
        if known is not None and known != p:
            raise ValueError(
                f"policy {policy!r} declares parameter {p.name!r} differently from "
                f"{sorted(_USERS[p.name])}: share one declaration"
            )
    for p in parameters:
        _DECLARED[p.name] = p
        _USERS.setdefault(p.name, set()).add(policy)


def forget_parameters(policy: str) -> None:
    """Drop ``policy`` from the declarations (parameters no other policy uses go too).

    Args:
        policy: the policy's registered name.
    """
    for name in [n for n, users in _USERS.items() if policy in users]:
        _USERS[name].discard(policy)
        if not _USERS[name]:
            del _USERS[name], _DECLARED[name]


def declared_parameters() -> dict[str, PolicyParameter]:
    """Every parameter some registered policy declares, in declaration order."""
    return dict(_DECLARED)


def parameter_users(name: str) -> list[str]:
    """The registered policies that declare ``name``, sorted.

    Args:
        name: a parameter's name, e.g. ``width``.
    """
    return sorted(_USERS.get(name, ()))


class PolicySettings:
    """How the policies are fitted: the settings every policy shares, and the value of each
    declared policy parameter (its default when not given).

    Args:
        target: operating target, e.g. ``cov@5``, ``risk@80``, ``fpr@95`` (percent).
        seed: seed of the random policy and of the test-mixture subsampling.
        definitions: ``standard`` or ``paper``.
        guarantee: DELTA in (0, 1): the window's threshold tau is the guaranteed one
            (``window_cascades.uncertainty.guarantees``), None: the empirical one.
        guarantee_method: ``ltt`` or ``sgr`` (risk targets).
        **values: declared policy parameters by name, e.g. ``width=0.1``, ``budget=1.2``
            ([`declared_parameters`][] lists them; ``--list-policies`` shows who uses them).

    Raises:
        ValueError: a value out of range, or a name no registered policy declares.

    A parameter reads as an attribute (``settings.width``); [`replace`][] makes a copy with
    some values changed, checked the same way.
    """

    SHARED = ("target", "seed", "definitions", "guarantee", "guarantee_method")

    def __init__(
        self,
        target: str = "cov@5",
        *,
        seed: int = 0,
        definitions: str = "standard",
        guarantee: float | None = None,
        guarantee_method: str = "ltt",
        **values: Any,
    ):
        parse_target(target)
        check_guarantee(guarantee, guarantee_method)
        get_definitions(definitions)
        self.target, self.seed, self.definitions = target, seed, definitions
        self.guarantee, self.guarantee_method = guarantee, guarantee_method
        checked = {}
        for name, value in values.items():
            if name not in _DECLARED:
                raise ValueError(
                    f"unknown policy parameter {name!r}; the registered policies declare "
                    f"{sorted(_DECLARED)}"
                )
            checked[name] = _DECLARED[name].validate(value)
        self.values: Mapping[str, Any] = checked

    def __getattr__(self, name: str) -> Any:
        values = self.__dict__.get("values", {})
        if name in values:
            return values[name]
        if name in _DECLARED:
            return _DECLARED[name].default
        raise AttributeError(f"PolicySettings has no setting or declared parameter {name!r}")

    def shared(self) -> dict[str, Any]:
        """The settings every policy shares, by name."""
        return {k: getattr(self, k) for k in self.SHARED}

    def replace(self, **changes: Any) -> PolicySettings:
        """A copy with ``changes`` (shared settings or parameters), validated."""
        shared = {k: changes.pop(k) if k in changes else v for k, v in self.shared().items()}
        return PolicySettings(**shared, **{**self.values, **changes})

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, PolicySettings):
            return NotImplemented
        return self.shared() == other.shared() and self.resolved() == other.resolved()

    def __hash__(self) -> int:
        return hash((tuple(self.shared().items()), tuple(sorted(self.resolved().items()))))

    def resolved(self) -> dict[str, Any]:
        """Every declared parameter's value (given or default), by name."""
        return {name: getattr(self, name) for name in _DECLARED}

    def __repr__(self) -> str:
        items = {**self.shared(), **self.values}
        return "PolicySettings(" + ", ".join(f"{k}={v!r}" for k, v in items.items()) + ")"
