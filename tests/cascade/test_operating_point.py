"""A deployed cascade's one outcome per sample (accept, reject or OOD) at its operating point."""

from __future__ import annotations

import itertools
import math

import pytest
import torch

from window_cascades.cascade.operating_point import (
    DECISIONS,
    decision_codes,
    decision_flags,
    precedence_note,
)

GRID = [0.0, 0.1, 0.3, 0.5, 0.7, 0.9, 1.0]


def expected_outcome(conf: float, accept: float | None, ood: float) -> str:
    """The documented precedence, written out: ood > reject > accept."""
    if conf < ood:
        return "ood"
    if accept is None or conf < accept:
        return "reject"
    return "accept"


@pytest.mark.parametrize(
    ("accept", "ood"),
    [  # both orders, equal thresholds, and nothing accepted
        *[(a, o) for a, o in itertools.product(GRID, GRID) if a != o],
        *[(t, t) for t in GRID],
        *[(None, o) for o in GRID],
    ],
)
def test_every_confidence_gets_exactly_one_outcome_in_the_documented_precedence(accept, ood):
    point = {"accept": accept, "ood": ood, "target": "cov@5", "ood_tpr": 0.95}
    # every grid value, and a value just either side of each threshold
    values = sorted({*GRID, *(t + d for t in GRID for d in (-1e-9, 1e-9))})
    conf = torch.tensor(values, dtype=torch.float64)
    accepted, ood_flag = decision_flags(conf, point)
    codes = decision_codes(conf, point)
    assert not bool((accepted & ood_flag).any())
    rows = zip(values, accepted.tolist(), ood_flag.tolist(), codes.tolist(), strict=True)
    for c, a, o, code in rows:
        outcome = expected_outcome(c, accept, ood)
        assert DECISIONS[code] == outcome, (c, accept, ood)
        assert (a, o) == (outcome == "accept", outcome == "ood")


def test_the_precedence_is_noted_only_when_the_ood_threshold_is_above_acceptance():
    crossed = {"accept": 0.451, "ood": 0.873, "target": "cov@5", "ood_tpr": 0.95}
    note = precedence_note(crossed, "window")
    assert note is not None and note.startswith("note: window: the OOD threshold 0.873")
    assert "acceptance threshold 0.451 (cov@5)" in note and "flagged OOD, not accepted" in note
    assert precedence_note({**crossed, "accept": 0.99}, "window") is None  # ood below: nested
    assert precedence_note({**crossed, "accept": None}, "window") is None  # nothing accepted
    assert precedence_note({**crossed, "accept": math.inf}, "window") is None
