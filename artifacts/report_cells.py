"""How the report writes one figure: the value and, when the run has one, its 95% interval."""

from __future__ import annotations


def interval_cell(row: dict | None, scale: float = 1.0, digits: int = 4) -> str:
    """``value [ci_low, ci_high]`` of a metric row, each divided by ``scale`` (e.g. the first
    member's MACs, for a cost) and written with ``digits`` decimals; ``value`` alone without
    an interval; ``-`` for no row."""
    if row is None:
        return "-"
    text = f"{row['value'] / scale:.{digits}f}"
    if row.get("ci_low") is not None:
        text += f" [{row['ci_low'] / scale:.{digits}f}, {row['ci_high'] / scale:.{digits}f}]"
    return text
