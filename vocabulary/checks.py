"""Checks of option values that need no data: the commands run them before torch is imported,
so a mistyped option is refused in a fraction of a second, and the library runs the same
checks where the values enter (``MetricSettings``, ``Bootstrap``, cost-to-target).

Pure Python: this module imports nothing but the standard library.
"""

from __future__ import annotations

import math


def _bad_fraction(value: object, low_open: bool, high_open: bool) -> bool:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return True
    low = value <= 0 if low_open else value < 0
    high = value >= 1 if high_open else value > 1
    return low or high


def check_report_points(
    risks: tuple[float, ...] | list[float],
    coverages: tuple[float, ...] | list[float],
    ood_tpr: float,
    scod_ratio: float,
    scod_beta: float,
    prefix: str = "",
) -> None:
    """Validate the reported operating points and SCOD settings where they enter.

    One convention across every option: a number is a fraction (``--risks 0.05``); percentages
    appear only in names (``cov@5``, targets such as ``risk@80``). ``prefix`` names the options
    in messages: ``"--model."`` (online, ``--model.scod_beta``) or ``"--"`` (offline,
    ``--scod-beta``).

    Raises:
        ValueError: naming the option, the value and the accepted range.
    """

    def option(field: str) -> str:
        return prefix + (field.replace("_", "-") if prefix == "--" else field)

    for field, values, high_open, name in (
        ("risks", risks, True, "cov"),
        ("coverages", coverages, False, "risk"),
    ):
        if not values:
            raise ValueError(f"{option(field)}: give at least one value, e.g. 0.05")
        for v in values:
            if _bad_fraction(v, True, high_open):
                hint = (
                    f" ({v:g}% is {v / 100:g}, reported as {name}@{v:g})"
                    if (isinstance(v, (int, float)) and 1 < v < 100)
                    else ""
                )
                interval = "(0, 1)" if high_open else "(0, 1]"
                raise ValueError(
                    f"{option(field)} {v!r}: expected a fraction in {interval}{hint}; "
                    "percentages appear only in metric names"
                )
    if _bad_fraction(ood_tpr, True, False):
        raise ValueError(
            f"{option('ood_tpr')} {ood_tpr!r}: expected a fraction in (0, 1], e.g. 0.95 (fpr@95)"
        )
    if isinstance(scod_ratio, bool) or not (
        isinstance(scod_ratio, (int, float)) and math.isfinite(scod_ratio) and scod_ratio > 0
    ):
        raise ValueError(f"{option('scod_ratio')} {scod_ratio!r}: expected an OOD : ID ratio > 0")
    if isinstance(scod_beta, bool) or not (
        isinstance(scod_beta, (int, float)) and math.isfinite(scod_beta) and scod_beta >= 0
    ):
        raise ValueError(
            f"{option('scod_beta')} {scod_beta!r}: expected the cost of an accepted OOD sample, "
            ">= 0 (1: as an error)"
        )


def check_gain_shares(shares: list[float]) -> list[float]:
    """Validate the asked shares of the ensemble's gain: fractions in (0, 1], no repeats.

    Args:
        shares: the shares (``--gain-shares``), fractions of the ensemble's gain over member 1.

    Returns:
        The shares as floats, smallest first.

    Raises:
        ValueError: naming the bad value.
    """
    for share in shares:
        if isinstance(share, bool) or not (isinstance(share, (int, float)) and 0 < share <= 1):
            raise ValueError(
                f"--gain-shares {share!r}: a share of the ensemble's gain is a fraction in "
                "(0, 1] (0.75 = 75%)"
            )
    if len(set(shares)) != len(shares):
        raise ValueError(f"--gain-shares lists a share twice: {shares}")
    return sorted(float(s) for s in shares)


def check_resamples(num: int) -> int:
    """Validate a number of bootstrap resamples: 0 (off) or at least 10.

    Args:
        num: the number of resamples (``--bootstrap``).

    Returns:
        ``num``.

    Raises:
        ValueError: ``bootstrap N: expected 0 (off) or at least 10 resamples``.
    """
    if isinstance(num, bool) or not isinstance(num, int) or num < 0 or 0 < num < 10:
        raise ValueError(f"bootstrap {num}: expected 0 (off) or at least 10 resamples")
    return num
