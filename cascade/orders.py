"""Member orders: which cascades a set of members makes, and each figure's spread across them.

A cascade's figures depend on which member comes first (the paper reports both orders of its
pairs). ``given`` is the one order given; ``all`` every permutation of the members (M! cascades
of M stages); ``pairs`` every ordered pair (M (M - 1) two-stage cascades: with three seeds per
model size, the six cascades of that size).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence

ORDER_MODES = ("given", "all", "pairs")
ORDERS_FIELDS = (
    "dataset",
    "role",
    "policy",
    "setting",
    "score",
    "metric",
    "orders",
    "mean",
    "sd",
    "min",
    "max",
)


def member_orders(members: Sequence[str], mode: str = "given") -> list[tuple[str, ...]]:
    """The member orders of ``mode`` (see the module docstring), the given order first."""
    if mode not in ORDER_MODES:
        raise ValueError(f"--orders {mode!r}: expected one of {', '.join(ORDER_MODES)}")
    if mode == "given":
        return [tuple(members)]
    if len(members) < 2:
        raise ValueError(f"--orders {mode} needs at least 2 members, got {len(members)}")
    size = len(members) if mode == "all" else 2
    return list(itertools.permutations(members, size))


def order_label(order: Sequence[str]) -> str:
    """The ``members`` value of an order's rows, e.g. ``m1>m0``."""
    return ">".join(order)


def spread_across_orders(rows: list[dict]) -> list[dict]:
    """Per (dataset, policy, setting, score, metric), and per ``model`` when the rows have one:
    mean, sample standard deviation, min and max of the value over the member orders of the
    rows (``members``), and their number.

    ``single`` of the order ``m1>m0`` is ``m1`` alone, so its mean is the mean single model.
    """
    groups: dict[tuple, list[dict]] = {}
    for r in rows:
        key = (r["dataset"], r["role"], r["policy"], r["setting"], r["score"], r["metric"])
        groups.setdefault((r.get("model"), key), []).append(r)
    out = []
    for (model, key), members in groups.items():
        values = [float(r["value"]) for r in members]
        n = len(values)
        mean = sum(values) / n
        sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1)) if n > 1 else 0.0
        out.append(
            {
                **({"model": model} if model is not None else {}),
                **dict(zip(ORDERS_FIELDS[:6], key, strict=True)),
                "orders": n,
                "mean": mean,
                "sd": sd,
                "min": min(values),
                "max": max(values),
            }
        )
    return out
