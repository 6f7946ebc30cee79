"""Checks of single values read back from files (checkpoints, JSON, configs).

Every reader of a file a user can edit calls these where the value enters, so that a bad value
is refused in one line naming the file and the field, never carried into the numbers (a NaN
bound that passes nothing on, an infinite cost, a label truncated to an integer).

Each check raises [`FieldError`][] (a ``ValueError``) whose message reads
``<where>: field '<field>' must be <what>, got <value>``; ``where`` names the file.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

MAX_DIGITS = 4000
"""The longest integer a field may hold (Python refuses to convert those over 4300 digits)."""


class FieldError(ValueError):
    """A value read from a file that the program cannot use (the message names file and field)."""


class HugeNumber(str):
    """A JSON number with more than [`MAX_DIGITS`][] digits, kept as its text so that the
    field check, which knows the field's name, refuses it (``json.loads`` would raise an error
    naming neither file nor field)."""

    def __repr__(self) -> str:
        return f"a {len(self.lstrip('-'))}-digit number"


def _parse_int(text: str) -> int | HugeNumber:
    return HugeNumber(text) if len(text.lstrip("-")) > MAX_DIGITS else int(text)


def _parse_float(text: str) -> float | HugeNumber:
    return HugeNumber(text) if len(text) > MAX_DIGITS else float(text)


def load_json_file(path: str | Path) -> object:
    """The parsed JSON of ``path``; an invalid file names the path. Numbers too long to be
    values come back as [`HugeNumber`][] for the field checks to refuse."""
    path = Path(path)
    try:
        return json.loads(path.read_text(), parse_int=_parse_int, parse_float=_parse_float)
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise FieldError(f"{path}: not valid JSON ({err})") from None


def _shown(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _fail(where: str, field: str, what: str, value: object) -> FieldError:
    return FieldError(f"{where}: field {field!r} must be {what}, got {_shown(value)}")


def as_number(value: object, where: str, field: str, what: str = "a number") -> float:
    """``value`` as a float: an int or float (not bool), or a string of one (JSON-safe
    checkpoints write infinities as "inf"/"-inf"); NaN is refused."""
    if isinstance(value, HugeNumber) or isinstance(value, bool):
        raise _fail(where, field, what, value)
    if isinstance(value, str):
        try:
            number = float(value)
        except ValueError:
            raise _fail(where, field, what, value) from None
    elif isinstance(value, int):
        number = float(value) if abs(value) < 10**308 else math.copysign(math.inf, value)
    elif isinstance(value, float):
        number = value
    else:
        raise _fail(where, field, what, value)
    if math.isnan(number):
        raise _fail(where, field, what, value)
    return number


def finite_number(
    value: object,
    where: str,
    field: str,
    low: float | None = None,
    high: float | None = None,
    low_open: bool = False,
) -> float:
    """A finite number in [low, high] (``(low, high]`` with ``low_open``)."""
    what = "a finite number"
    if low is not None or high is not None:
        left = "(" if low_open else "["
        what += f" in {left}{'-inf' if low is None else f'{low:g}'}, "
        what += f"{'inf' if high is None else f'{high:g}'}]"
    number = as_number(value, where, field, what)
    if (
        not math.isfinite(number)
        or (low is not None and (number <= low if low_open else number < low))
        or (high is not None and number > high)
    ):
        raise _fail(where, field, what, value)
    return number


def integer(value: object, where: str, field: str, low: int | None = None) -> int:
    """An integer (not a bool, not a float such as 2.5 or 2.0) at least ``low``."""
    what = "an integer" + ("" if low is None else f" >= {low}")
    if isinstance(value, bool) or not isinstance(value, int) or isinstance(value, HugeNumber):
        raise _fail(where, field, what, value)
    if low is not None and value < low:
        raise _fail(where, field, what, value)
    return value


def mapping(value: object, where: str, field: str) -> dict:
    """A mapping (a JSON object)."""
    if not isinstance(value, dict):
        raise _fail(where, field, "a mapping", value)
    return value


def sequence(value: object, where: str, field: str) -> list:
    """A list or tuple."""
    if not isinstance(value, (list, tuple)):
        raise _fail(where, field, "a list", value)
    return list(value)
