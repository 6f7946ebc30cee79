"""A fitted cascade as one serialisable value: its policies and temperatures.

What the calibration on the held-out split produces, what a cascade checkpoint carries (under
the key [`CHECKPOINT_KEY`][]) and what ``fitted_cascade.json`` describes. JSON-safe through
[`FittedCascade.to_dict`][] / [`FittedCascade.from_dict`][] (no pickling).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from window_cascades.cascade.policies import CascadePolicy, policy_from_dict
from window_cascades.cascade.stage_scores import Temperatures

CHECKPOINT_KEY = "fitted_cascade"
"""The entry of a cascade checkpoint that holds the fitted cascade."""


@dataclass
class FittedCascade:
    """Fitted policies (by name, in configured order) and optional temperatures.

    Attributes:
        policies: policy name -> fitted policy.
        temperatures: temperatures fitted on the held-out split, or None.
        info: how the fit was made (held-out name and size, score, target, ...).
    """

    policies: dict[str, CascadePolicy]
    temperatures: Temperatures | None = None
    info: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        """JSON-safe form (infinite bounds as the strings "inf"/"-inf")."""
        return {
            **self.info,
            "temperatures": self.temperatures.to_dict() if self.temperatures else None,
            "policies": {name: p.to_dict() for name, p in self.policies.items()},
        }

    @classmethod
    def from_dict(cls, data: dict) -> FittedCascade:
        """Inverse of [`to_dict`][].

        Args:
            data: what [`to_dict`][] wrote (``fitted_cascade.json`` read as JSON).
        """
        info = {k: v for k, v in data.items() if k not in ("temperatures", "policies")}
        temps = data.get("temperatures")
        return cls(
            {name: policy_from_dict(p) for name, p in data["policies"].items()},
            Temperatures.from_dict(temps) if temps else None,
            info,
        )

    def select(self, names: list[str]) -> list[CascadePolicy]:
        """The fitted policies called ``names``, in that order (clear error if one is missing).

        Args:
            names: fitted policies' names.
        """
        missing = [n for n in names if n not in self.policies]
        if missing:
            raise ValueError(
                f"the fitted cascade has no policy {missing}; it has {list(self.policies)} "
                "(recalibrate with --calibration.recalibrate true)"
            )
        return [self.policies[n] for n in names]
