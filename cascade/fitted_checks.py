"""Checks of a fitted cascade read back from a file (a cascade checkpoint, ``fitted_cascade.json``).

A hand-edited or corrupted fitted cascade would otherwise be applied as it is: a NaN window
bound passes nothing on, an inverted one (lower > upper) passes nothing, a NaN acceptance
threshold accepts nothing, all with exit status 0. [`check_fitted_cascade`][] refuses such a
value in one line naming the file and the field (e.g.
``cascade.ckpt: field 'policies.window.bounds[0][0]' must be ...``).

What is checked (M = the number of members the policies are fitted for):

- interval policies: ``bounds`` is (M - 1) pairs [lower, upper] of numbers or "inf"/"-inf",
  none NaN, lower <= upper except the empty interval [inf, -inf] (``single``), finite bounds
  within the score's range (below);
- the ``random`` policy: ``fraction`` in [0, 1], ``num_stages`` and ``seed`` integers;
- every policy is fitted for the same M;
- temperatures: positive finite numbers, one per member, ensembles keyed by size 2..M;
- operating points: ``accept`` None or finite, ``ood`` finite (both within the score's range:
  [0, 1] for ``msp``, <= 0 for ``entropy`` and ``mutual_information``), ``bound`` None or in
  [0, 1], ``ood_tpr`` in (0, 1].
"""

from __future__ import annotations

import math

from window_cascades.cascade.field_checks import (
    FieldError,
    as_number,
    finite_number,
    integer,
    mapping,
    sequence,
)

SCORE_RANGES: dict[str, tuple[float | None, float | None]] = {
    "msp": (0.0, 1.0),
    "entropy": (None, 0.0),
    "mutual_information": (None, 0.0),
}


def _end(value: float | None, open_end: str) -> str:
    return open_end if value is None else f"{value:g}"


def _score_range(score: object) -> tuple[float | None, float | None]:
    return SCORE_RANGES.get(score, (None, None)) if isinstance(score, str) else (None, None)


def check_interval_bounds(bounds: object, where: str, field: str, score: object = None) -> int:
    """Check an interval policy's bounds (finite ones within ``score``'s range, when it has
    one: a window of [1.5, 2] for ``msp`` passes nothing on); return its number of members M."""
    low, high = _score_range(score)
    pairs = sequence(bounds, where, field)
    for k, pair in enumerate(pairs):
        pair = sequence(pair, where, f"{field}[{k}]")
        if len(pair) != 2:
            raise FieldError(f"{where}: field '{field}[{k}]' must be [lower, upper], got {pair!r}")
        lower = as_number(pair[0], where, f"{field}[{k}][0]", "a number or 'inf'/'-inf'")
        upper = as_number(pair[1], where, f"{field}[{k}][1]", "a number or 'inf'/'-inf'")
        empty = lower == math.inf and upper == -math.inf  # the written form of "pass nothing"
        if lower > upper and not empty:
            raise FieldError(
                f"{where}: field '{field}[{k}]' has lower {lower:g} > upper {upper:g} (an "
                "inverted interval passes nothing on; the empty interval is written [inf, -inf])"
            )
        for end, value in enumerate((lower, upper)):
            if math.isinf(value):  # an open end
                continue
            if (low is not None and value < low) or (high is not None and value > high):
                shown = f"[{_end(low, '-inf')}, {_end(high, 'inf')}]"
                raise FieldError(
                    f"{where}: field '{field}[{k}][{end}]' must be within {shown}, the range of "
                    f"score {score}, or an open end ('inf'/'-inf'), got {value:g}"
                )
    return len(pairs) + 1


def check_policy(data: object, where: str, field: str, score: object = None) -> int:
    """Check one policy's JSON-safe form (its bounds against ``score``'s range); return its
    number of members M."""
    data = mapping(data, where, field)
    if not isinstance(data.get("name"), str):
        raise FieldError(
            f"{where}: field '{field}.name' must be a policy name, got {data.get('name')!r}"
        )
    if data["name"] == "random":
        finite_number(data.get("fraction"), where, f"{field}.fraction", 0.0, 1.0)
        integer(data.get("seed"), where, f"{field}.seed")
        return integer(data.get("num_stages"), where, f"{field}.num_stages", 1)
    return check_interval_bounds(data.get("bounds"), where, f"{field}.bounds", score)


def check_temperatures(data: object, where: str, members: int | None) -> None:
    """Positive finite temperatures, one per member and one per ensemble size 2..M."""
    data = mapping(data, where, "temperatures")
    temps = sequence(data.get("members"), where, "temperatures.members")
    if members is not None and len(temps) != members:
        raise FieldError(
            f"{where}: field 'temperatures.members' must hold {members} temperature(s), one per "
            f"member, got {len(temps)}"
        )
    for k, t in enumerate(temps):
        finite_number(t, where, f"temperatures.members[{k}]", 0.0, None, low_open=True)
    for key, t in mapping(data.get("ensembles", {}), where, "temperatures.ensembles").items():
        size = str(key)
        if not size.isdigit() or (members is not None and not 2 <= int(size) <= members):
            raise FieldError(
                f"{where}: field 'temperatures.ensembles' keys must be ensemble sizes 2..{members}"
                f", got {key!r}"
            )
        finite_number(t, where, f"temperatures.ensembles.{key}", 0.0, None, low_open=True)


def check_operating_points(data: object, where: str, score: object) -> None:
    """The deployed thresholds of each policy (see the module docstring)."""
    low, high = _score_range(score)
    for name, point in mapping(data, where, "operating_points").items():
        field = f"operating_points.{name}"
        point = mapping(point, where, field)
        if point.get("accept") is not None:
            finite_number(point["accept"], where, f"{field}.accept", low, high)
        finite_number(point.get("ood"), where, f"{field}.ood", low, high)
        if point.get("bound") is not None:
            finite_number(point["bound"], where, f"{field}.bound", 0.0, 1.0)
        if "ood_tpr" in point:
            finite_number(point["ood_tpr"], where, f"{field}.ood_tpr", 0.0, 1.0, low_open=True)


def check_fitted_cascade(data: object, where: str, members: int | None = None) -> None:
    """Refuse a fitted cascade (``FittedCascade.to_dict()`` form) that cannot be applied.

    Args:
        data: the fitted cascade as read from the file.
        where: the file, for the message.
        members: the number of members it will be applied to, when known.

    Raises:
        FieldError: naming ``where`` and the field.
    """
    data = mapping(data, where, "fitted_cascade")
    policies = mapping(data.get("policies"), where, "policies")
    score = data.get("score")
    sizes = {
        name: check_policy(p, where, f"policies.{name}", score) for name, p in policies.items()
    }
    expected = members if members is not None else next(iter(sizes.values()), None)
    for name, size in sizes.items():
        if size != expected:
            raise FieldError(
                f"{where}: field 'policies.{name}' is fitted for {size} member(s), expected "
                f"{expected}"
            )
    if data.get("temperatures") is not None:
        check_temperatures(data["temperatures"], where, expected)
    if data.get("operating_points") is not None:
        check_operating_points(data["operating_points"], where, data.get("score"))
