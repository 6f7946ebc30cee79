"""Operating targets of uncertainty tasks and the thresholds that reach them.

A target is written ``task@value`` with the value in percent:

- ``cov@R``: selective classification at selective risk R% (threshold of cov@r);
- ``risk@C``: selective classification at coverage C% (threshold of risk@c);
- ``fpr@P``: OOD detection at the threshold accepting P% of ID samples.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # parsing a target needs no torch (the commands check it before importing it)
    import torch

_TARGET = re.compile(r"^(cov|risk|fpr)@(\d+(?:\.\d+)?)$")


@dataclass(frozen=True)
class Target:
    """A parsed operating target ([`parse_target`][]).

    Attributes:
        task: ``cov`` (coverage at a selective risk), ``risk`` (risk at a coverage) or
            ``fpr`` (OOD acceptance at an ID acceptance).
        value: the target's value as a fraction (0.05 for ``cov@5``).
    """

    task: str
    value: float

    @property
    def name(self) -> str:
        """The target's canonical name, e.g. ``cov@5``."""
        return f"{self.task}@{self.value * 100:g}"


def parse_target(text: str) -> Target:
    """Parse ``cov@R``, ``risk@C`` or ``fpr@P`` (percent, 0 < value < 100 or = 100 for c, p).

    Args:
        text: the target as written: ``cov@R`` (coverage at selective risk R%), ``risk@C`` (risk at
            coverage C%) or ``fpr@P`` (OOD acceptance at P% ID acceptance), e.g. ``cov@5``.
    """
    m = _TARGET.match(str(text).strip())
    if m is None:
        raise ValueError(
            f"target {text!r} is not understood; expected cov@R, risk@C or fpr@P with a "
            "percentage, e.g. cov@5, risk@80, fpr@95"
        )
    task, value = m.group(1), float(m.group(2)) / 100
    if not 0 < value <= 1 or (task == "cov" and value >= 1):
        raise ValueError(f"target {text!r}: the percentage must lie in (0, 100)")
    return Target(task, value)


def target_threshold(
    confidence: torch.Tensor, correct: torch.Tensor, target: Target, definitions="standard"
) -> float:
    """The confidence threshold tau at which ``target`` is met (accept confidence >= tau).

    With the standard definitions, ``cov@r`` uses the threshold of the largest coverage with
    risk <= r, ``risk@c`` the threshold of the first point reaching coverage c, ``fpr@p`` the
    largest threshold that accepts a fraction p of the (in-distribution) samples; ``correct``
    is ignored for ``fpr``. ``definitions="paper"`` uses the reference code's rules instead
    (see ``window_cascades.uncertainty.paper_definitions``).

    Args:
        confidence: N confidences (held-out, in-distribution).
        correct: N bools, whether each prediction is correct (not read for ``fpr``).
        target: the parsed target ([`parse_target`][]).
        definitions: ``standard`` or ``paper``, or a ``Definitions`` object.
    """
    from window_cascades.uncertainty.definitions import get_definitions

    defs = get_definitions(definitions)
    if target.task == "cov":
        return defs.coverage_at_risk(confidence, correct, target.value)[1]
    if target.task == "risk":
        return defs.risk_at_coverage(confidence, correct, target.value)[1]
    return defs.fpr_threshold(confidence, target.value)
