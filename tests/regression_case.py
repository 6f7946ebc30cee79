"""The small fixed case of the output regression test: seeded logits in the cached layout, the
golden files it is compared with (``tests/data/``), and what changed between two versions of
them (``scripts/regenerate_golden.py`` prints it)."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import torch

GOLDEN = Path(__file__).resolve().parent / "data"
GOLDEN_METRICS = GOLDEN / "regression_metrics.csv"
GOLDEN_SUMMARY = GOLDEN / "regression_summary.json"
VALUE_FIELDS = ("value", "ci_low", "ci_high")  # a metrics.csv row's values; the rest is its key

SIZES = {"held": 300, "test": 400, "noisy": 200, "far": 150}
CLASSES = 5
ARGS = [
    "--members",
    "m0",
    "m1",
    "m2",
    "--heldout",
    "held",
    "--id",
    "test",
    "--shift",
    "noisy",
    "--ood",
    "far",
    "--score",
    "msp",
    "--target",
    "cov@10",
    "--width",
    "0.1",
    "0.2",
    "--pass-fraction",
    "0.15",
    "0.3",
    "--risks",
    "0.05",
    "0.1",
    "--coverages",
    "0.7",
    "0.9",
    "--policies",
    "single,ensemble,single_threshold,window,window_adjusted,random",
    "--temperature-scaling",
    "--quiet",
]


def write_case(directory: Path) -> Path:
    """Three members' logits on four datasets (fixed seed), and their meta.json."""
    from window_cascades.artifacts.cached_logits import save_cached_logits
    from window_cascades.artifacts.member_meta import save_member_meta

    gen = torch.Generator().manual_seed(1234)
    for name, n in SIZES.items():
        ood = name == "far"
        targets = torch.full((n,), -1) if ood else torch.randint(CLASSES, (n,), generator=gen)
        shared = torch.randn(n, CLASSES, generator=gen)
        if not ood:
            shared[torch.arange(n), targets] += 2.0 if name != "noisy" else 0.8
        for k in range(3):
            noise = torch.randn(n, CLASSES, generator=gen)
            save_cached_logits(directory, f"m{k}", name, 1.5 * (shared + 0.8 * noise), targets)
    for k, macs in enumerate((1e6, 2e6, 4e6)):
        meta = {"model_name": "synthetic", "macs": macs, "params": 1, "num_classes": CLASSES}
        save_member_meta(directory, f"m{k}", meta)
    return directory


def run_case(folder: Path) -> Path:
    """The case evaluated by ``evaluate-logits`` (logits written into ``folder/logits``);
    returns the output folder (``metrics.csv``, ``summary.json``, ...)."""
    from window_cascades.commands.offline import main

    out = folder / "out"
    status = main(["--logits-dir", str(write_case(folder / "logits")), *ARGS, "--out", str(out)])
    if status != 0:
        raise RuntimeError(f"evaluate-logits on the regression case exited with {status}")
    return out


def _rows(text: str) -> dict[tuple, tuple]:
    """metrics.csv text -> {row key (every column but the values): values}, in file order."""
    rows = {}
    for r in csv.DictReader(io.StringIO(text)):
        key = tuple((k, v) for k, v in r.items() if k not in VALUE_FIELDS)
        if key in rows:
            raise ValueError(f"metrics.csv repeats the row {dict(key)}")
        rows[key] = tuple(r.get(f, "") for f in VALUE_FIELDS)
    return rows


def metrics_changes(old: str, new: str) -> dict[str, list]:
    """What changed from metrics.csv text ``old`` to ``new``: rows ``added`` (a new metric's or
    policy's), rows ``removed``, rows whose values ``changed`` ((key, old values, new values)),
    and rows ``moved`` (their order relative to the rows both versions have differs)."""
    before, after = _rows(old), _rows(new)
    common_before = [k for k in before if k in after]
    common_after = [k for k in after if k in before]
    return {
        "added": [k for k in after if k not in before],
        "removed": [k for k in before if k not in after],
        "changed": [(k, before[k], after[k]) for k in common_before if before[k] != after[k]],
        "moved": [a for a, b in zip(common_after, common_before, strict=True) if a != b],
    }


def _leaves(value: object, path: str = "") -> dict[str, object]:
    if isinstance(value, dict):
        out: dict[str, object] = {}
        for k, v in value.items():
            out.update(_leaves(v, f"{path}.{k}" if path else str(k)))
        return out
    if isinstance(value, list):
        out = {f"{path}.length": len(value)}
        for i, v in enumerate(value):
            out.update(_leaves(v, f"{path}[{i}]"))
        return out
    return {path: value}


def summary_changes(old: str, new: str) -> dict[str, list]:
    """What changed from summary.json text ``old`` to ``new``, by field path
    (``policies.window.bounds[0][1]``): fields ``added``, ``removed`` and ``changed``
    ((path, old value, new value))."""
    before, after = _leaves(json.loads(old)), _leaves(json.loads(new))
    return {
        "added": [p for p in after if p not in before],
        "removed": [p for p in before if p not in after],
        "changed": [
            (p, before[p], after[p]) for p in before if p in after and before[p] != after[p]
        ],
    }
