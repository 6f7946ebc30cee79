"""Bootstrap intervals of every reported metric, and paired differences between policies.

Each evaluated dataset is resampled B times with replacement (N draws from N samples). The
draws depend only on (seed, dataset name, resample number), so every policy, score and setting
of a run, online or offline, is evaluated on the same resamples: differences between two
policies are paired. The policies stay as fitted on the held-out split: the intervals are over
the test sample, not over the calibration. An interval is the percentile interval of the B
resampled values (95% by default); a difference is significant when its interval excludes 0.

Testing hundreds of differences at once finds some by chance, so the paired differences also
carry a two-sided p-value (from the bootstrap standard error) and a Benjamini-Hochberg
decision (false discovery rate 5%) over one family: the random quantities only (not cost or
exit fractions, which the fitted policy fixes), one direction per pair of policies, differences
whose resamples vary (``window_cascades.cascade.significance``). Rows outside the family have no
p-value. A percentile interval need not contain the point estimate of a biased statistic: ECE, for
one, grows under resampling (repeated samples make bins look more certain), so its interval can sit
above the value.
"""

from __future__ import annotations

import hashlib
import zlib
from dataclasses import dataclass, field, fields, replace

import torch

from window_cascades.cascade.metric_registry import MetricInputs, metric_entries
from window_cascades.cascade.policy_registry import reference_policies
from window_cascades.cascade.progress import progress
from window_cascades.cascade.resampled import Resampled
from window_cascades.cascade.significance import (
    NOT_COMPARED,
    benjamini_hochberg,
    bootstrap_p_value,
    is_random_metric,
)

CHUNK = 100  # resamples drawn and evaluated together (fixed: the draws depend on it)
DELTA_FIELDS = (  # the columns of deltas.csv
    "dataset",
    "role",
    "policy",
    "baseline",
    "setting",
    "score",
    "metric",
    "delta",
    "ci_low",
    "ci_high",
    "significant",
    "p_value",
    "significant_bh",
)


def resample_draws(dataset: str, n: int, seed: int, start: int, count: int) -> torch.Tensor:
    """``count`` x ``n`` indices: resamples ``start .. start + count - 1`` of a dataset."""
    gen = torch.Generator().manual_seed(zlib.crc32(f"{seed}/{dataset}/{start}".encode()))
    return torch.randint(n, (count, n), generator=gen)


def resampled_values(
    inputs: MetricInputs, role: str, index: torch.Tensor, id_index: torch.Tensor | None
) -> dict[str, torch.Tensor]:
    """{key: B values} of every registered metric of ``role`` on the B resamples ``index``
    (``id_index``: the ID set's resamples, for OOD metrics; None for a labelled role, whose
    metrics read only the dataset's own outputs)."""
    r = Resampled(inputs, index, id_index)
    out: dict[str, torch.Tensor] = {}
    for entry in metric_entries().values():
        if role not in entry.roles:
            continue
        values = entry.resampled(r) if entry.resampled is not None else None
        if values is None:  # evaluate the metric on each resample in turn
            rows = [
                entry.compute(
                    MetricInputs(
                        inputs.outputs.select(i),
                        inputs.id_outputs if id_index is None else inputs.id_outputs.select(j),
                        inputs.stage_macs,
                        inputs.settings,
                        inputs.operating_point,
                    )
                )
                for i, j in zip(index, index if id_index is None else id_index, strict=True)
            ]
            f64 = torch.float64
            values = {k: torch.tensor([row[k] for row in rows], dtype=f64) for k in rows[0]}
        out.update(values)
    return out


def _fingerprint(name: str, role: str, inputs: MetricInputs) -> str:
    """What a dataset's resampled values depend on: its name (the draws), role, outputs, the
    ID outputs, MACs, settings and operating point."""
    digest = hashlib.sha256(f"{name}|{role}|{inputs.stage_macs}|{inputs.settings}".encode())
    digest.update(repr(inputs.operating_point).encode())
    for outputs in (inputs.outputs, inputs.id_outputs):
        for f in fields(outputs):
            digest.update(getattr(outputs, f.name).contiguous().numpy().tobytes())
    return digest.hexdigest()


def _key(row: dict) -> tuple:
    members = row.get("members") or ""
    return row["dataset"], row["policy"], row["setting"], row["score"], members, row["metric"]


def _pair_key(row: dict) -> tuple:
    """What a policy and its baseline share: dataset, score, member order, metric."""
    return row["dataset"], row["score"], row.get("members") or "", row["metric"]


@dataclass
class Bootstrap:
    """Collects the resampled values of a run's rows; then intervals and paired differences.

    Attributes:
        num: number of resamples B (0: off).
        seed: seed of the draws.
        level: the intervals' confidence level.
        members: the member order of the policies being added, in a run over several orders
            (``m1>m0``; the rows carry it as ``members``), else empty.
        values: (dataset, policy, setting, score, members, metric) -> B values.
    """

    num: int
    seed: int = 0
    level: float = 0.95
    members: str = ""
    values: dict = field(default_factory=dict)
    _done: dict = field(default_factory=dict, repr=False)

    def __post_init__(self):
        if self.num < 0 or (0 < self.num < 10):
            raise ValueError(f"bootstrap {self.num}: expected 0 (off) or at least 10 resamples")
        if not 0 < self.level < 1:
            raise ValueError(f"bootstrap level must be in (0, 1), got {self.level}")

    def add(self, policy, score: str, role_inputs: dict[str, tuple[str, MetricInputs]]) -> None:
        """Resample every dataset of one evaluated policy (``role_inputs``: dataset ->
        (role, metric inputs)); the ID set's draws are those of the dataset named ``id``.

        A dataset whose outputs and settings were already resampled (the same single member
        in two orders, two policies that passed on the same samples) reuses those values."""
        id_name = next(name for name, (role, _) in role_inputs.items() if role == "id")
        n_id = role_inputs[id_name][1].outputs.num_samples
        datasets = progress(
            role_inputs.items(), f"bootstrap {policy.name}", len(role_inputs), unit="dataset"
        )
        for name, (role, inputs) in datasets:
            inputs = replace(
                inputs, outputs=inputs.outputs.cpu(), id_outputs=inputs.id_outputs.cpu()
            )
            print_ = _fingerprint(name, role, inputs)
            if print_ not in self._done:
                parts: dict[str, list[torch.Tensor]] = {}
                for start in range(0, self.num, CHUNK):
                    count = min(CHUNK, self.num - start)
                    id_index = None  # the ID set's draws: read by the OOD metrics only
                    if role == "ood" or name == id_name:
                        id_index = resample_draws(id_name, n_id, self.seed, start, count)
                    index = id_index
                    if name != id_name:
                        n = inputs.outputs.num_samples
                        index = resample_draws(name, n, self.seed, start, count)
                    for metric, vals in resampled_values(inputs, role, index, id_index).items():
                        parts.setdefault(metric, []).append(vals)
                self._done[print_] = {m: torch.cat(v) for m, v in parts.items()}
            for metric, vals in self._done[print_].items():
                key = (name, policy.name, policy.setting, score, self.members, metric)
                self.values[key] = vals

    def samples(self, key: tuple) -> torch.Tensor:
        """The B resampled values of a row's key."""
        return self.values[key]

    def interval(self, values: torch.Tensor) -> tuple[float, float]:
        """The percentile interval of B resampled values (a constant, even an infinite one
        such as an unreachable operating threshold, is its own interval)."""
        if bool((values == values[0]).all()):
            return float(values[0]), float(values[0])
        alpha = (1 - self.level) / 2
        q = torch.tensor([alpha, 1 - alpha], dtype=torch.float64)
        lo, hi = torch.nanquantile(values, q).tolist()
        return lo, hi

    def annotate(self, rows: list[dict]) -> list[dict]:
        """The rows with ``ci_low`` and ``ci_high`` (None where a row was not resampled)."""
        out = []
        for r in rows:
            key = _key(r)
            lo, hi = self.interval(self.samples(key)) if key in self.values else (None, None)
            out.append({**r, "ci_low": lo, "ci_high": hi})
        return out

    def delta_rows(self, rows: list[dict], baselines: tuple[str, ...] | None = None) -> list[dict]:
        """Paired differences (policy - baseline, same resamples) of every test-set row (not
        the held-out split the policies were fitted on) against each baseline policy of the
        same score (and member order); ``significant``: the interval excludes 0 (no
        correction); ``p_value`` and ``significant_bh``: see the module docstring (a pair of
        baselines is tested once, the later baseline against the earlier). ``baselines``:
        None for the registry's reference policies (member 1 alone, then the full ensemble;
        ``window_cascades.cascade.policy_registry.reference_policies``)."""
        if not self.num:
            return []
        baselines = reference_policies() if baselines is None else tuple(baselines)
        base = {}
        for r in rows:
            if r["policy"] in baselines:
                base[(r["policy"], *_pair_key(r))] = r
        out = []
        for r in rows:
            if r["metric"] in NOT_COMPARED or r["role"] == "heldout":
                continue
            for b in baselines:
                ref = base.get((b, *_pair_key(r)))
                if ref is None or r["policy"] == b:
                    continue
                mine, theirs = self.samples(_key(r)), self.samples(_key(ref))
                lo, hi = self.interval(mine - theirs)
                mirrored = r["policy"] in baselines and baselines.index(r["policy"]) < (
                    baselines.index(b)
                )  # "single vs ensemble" repeats "ensemble vs single"
                tested = is_random_metric(r["metric"]) and not mirrored and lo != hi
                delta = r["value"] - ref["value"]
                p = bootstrap_p_value(delta, mine - theirs) if tested else None
                members = {"members": r["members"]} if r.get("members") else {}
                out.append(
                    {
                        **members,
                        "dataset": r["dataset"],
                        "role": r["role"],
                        "policy": r["policy"],
                        "baseline": b,
                        "setting": r["setting"],
                        "score": r["score"],
                        "metric": r["metric"],
                        "delta": delta,
                        "ci_low": lo,
                        "ci_high": hi,
                        "significant": lo > 0 or hi < 0,
                        "p_value": None if p is None or p != p else p,
                        "significant_bh": False,
                    }
                )
        family = [d for d in out if d["p_value"] is not None]
        for d, rejected in zip(
            family, benjamini_hochberg([d["p_value"] for d in family]), strict=True
        ):
            d["significant_bh"] = rejected
        return out
