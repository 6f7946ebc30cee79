"""How results name their rows and columns: the target's operating-point columns, and the
notice of a window clamped to an end of the held-out scores."""

from __future__ import annotations

from window_cascades.artifacts.result_labels import clamp_notes, lead_columns


def window(q: float, width: float = 0.1, target: str = "cov@5", setting: str = "") -> dict:
    stage = {"tau": 0.3, "q": q, "lower": None, "upper": 0.99, "target": target, "width": width}
    return {"name": "window", "setting": setting or f"{target},w={width:g}", "stages": [stage]}


def test_a_clamped_window_is_noted_with_why_and_which_target_shows_one():
    notes = clamp_notes({"window": window(0.004), "single": {"name": "single", "stages": []}})
    assert notes == [
        "note: window (cov@5, w = 0.1): tau sits at held-out quantile q = 0.004 < w, so its band "
        "is the least confident 2w = 20% of held-out scores, the samples single_threshold at "
        "pass fraction 0.2 passes on; a target whose tau lies at q >= 2w shows a window: "
        "risk@80 (q = 0.2) at this w, or a smaller w"
    ]
    assert clamp_notes({"window": window(0.2, target="risk@80")}) == []  # centred on tau
    high = clamp_notes({"window[w=0.2]": window(0.93, 0.2)})
    assert len(high) == 1 and "q = 0.930 > 1 - w" in high[0] and "risk@60" in high[0]
    paper = clamp_notes({"window": window(0.05, setting="cov@5,w=0.1,paper")})
    assert "cut to held-out quantiles [0, q + w] = [0, 0.15]" in paper[0]


def test_the_operating_point_columns_follow_the_reported_ones():
    labelled = dict.fromkeys(["acc", "ece", "cov@5", "risk@80", "op_risk", "op_cov", "x"], 0.0)
    assert lead_columns(labelled, "id") == ["acc", "ece", "cov@5", "risk@80", "op_risk", "op_cov"]
    ood = dict.fromkeys(["auroc", "fpr@95", "op_fpr", "op_tpr"], 0.0)
    assert lead_columns(ood, "ood") == ["auroc", "fpr@95", "op_fpr", "op_tpr"]
    assert lead_columns({"acc": 1.0}, "shift") == ["acc"]
