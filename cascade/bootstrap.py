"""Bootstrap intervals of every reported metric, and paired differences between policies.

Each evaluated dataset is resampled B times with replacement (N draws from N samples). The
draws depend only on (seed, dataset name, resample number), so every policy, score and setting
of a run, online or offline, is evaluated on the same resamples: differences between two
policies are paired. The policies stay as fitted on the held-out split: the intervals are over
the test sample, not over the calibration. An interval is the percentile interval of the B
resampled values (95% by default), or, for a metric registered with ``interval=
"median-recentred"`` (the ECE), that interval recentred on the value at the resamples' median
(``window_cascades.cascade.metric_registry.INTERVAL_METHODS``); a difference (whose bias
cancels between the two policies) keeps the percentile interval, and is significant when its
interval excludes 0.

Testing hundreds of differences at once finds some by chance, so the paired differences also
carry a two-sided p-value (from the bootstrap standard error) and a Benjamini-Hochberg
decision (false discovery rate 5%) over one family: the random quantities only (not cost or
exit fractions, which the fitted policy fixes), one direction per pair of policies, differences
whose resamples vary (``window_cascades.cascade.significance``). Rows outside the family have no
p-value. A percentile interval need not contain the point estimate of a biased statistic: ECE, for
one, grows under resampling (repeated samples make bins look more certain), so its percentile
interval can sit above the value; its median-recentred interval contains it.

Two policies that passed on the same samples of a dataset give the same resampled values there:
their differences against a baseline are one test, counted once in the family (the later
policy's row keeps its interval, without a p-value). Each policy other than the baselines and
``single_threshold`` is also compared with ``single_threshold`` (the policy registered as the
cost-matched comparator, ``window_cascades.cascade.policy_registry.COST_MATCHED``: it spends
the same held-out cost on the least confident samples) on the operating-point
metrics of the run's target (``op_*``): the target's own comparison, reported with its interval
and outside the tested family.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import zlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, fields, replace

import torch

from window_cascades.cascade.metric_registry import MetricInputs, metric_entries, metric_entry
from window_cascades.cascade.policy_registry import cost_matched_policy, reference_policies
from window_cascades.cascade.progress import progress
from window_cascades.cascade.resampled import DrawCounts, OutputSorts, Resampled
from window_cascades.cascade.significance import (
    NOT_COMPARED,
    benjamini_hochberg,
    bootstrap_p_value,
    is_random_metric,
)
from window_cascades.vocabulary.checks import check_resamples

CHUNK = 100  # resamples drawn from one generator (fixed: the draws depend on it)
# memory of one block of resamples (its draws and the curves read): blocks small enough for
# a worker's curves to stay in the processor's cache were fastest (ImageNet-shaped logits,
# 2 workers: 16 resamples a block 9.4-10.1 s, 58 a block 12.4-16.4 s on a 2-core AMD EPYC)
BLOCK_BYTES = 96 * 2**20
KEPT_BYTES_PER_SAMPLE = 256  # what a (dataset, policy) pair keeps across blocks, per sample
KEPT_BYTES = 512 * 2**20  # above it, datasets are resampled one at a time
TRIM_BLOCKS = 16  # blocks between two hand-backs of freed memory at most (and once per chunk)
OPERATING_METRICS = ("op_risk", "op_cov", "op_fpr", "op_tpr")
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


def _generator(dataset: str, seed: int, start: int) -> torch.Generator:
    return torch.Generator().manual_seed(zlib.crc32(f"{seed}/{dataset}/{start}".encode()))


def resample_draws(dataset: str, n: int, seed: int, start: int, count: int) -> torch.Tensor:
    """``count`` x ``n`` indices: resamples ``start .. start + count - 1`` of a dataset (``start``
    a multiple of ``CHUNK``, ``count`` at most ``CHUNK``). The rows come from one
    generator in order, so drawing them a few at a time gives the same indices."""
    return torch.randint(n, (count, n), generator=_generator(dataset, seed, start))


def resampled_values(
    inputs: MetricInputs,
    role: str,
    index: torch.Tensor,
    id_index: torch.Tensor | None,
    drawn: DrawCounts | None = None,
    id_drawn: DrawCounts | None = None,
    sorts: OutputSorts | None = None,
) -> dict[str, torch.Tensor]:
    """{key: B values} of every registered metric of ``role`` on the B resamples ``index``
    (``id_index``: the ID set's resamples, for OOD metrics; None for a labelled role, whose
    metrics read only the dataset's own outputs). ``drawn``, ``id_drawn``: the draws' counts,
    when already computed; ``sorts``: the sorts of these outputs kept from an earlier block."""
    r = Resampled(inputs, index, id_index, drawn, id_drawn, sorts or OutputSorts())
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


@dataclass
class _Unit:
    """One dataset under one policy, waiting to be resampled."""

    fingerprint: str
    name: str
    role: str
    inputs: MetricInputs
    id_name: str | None  # the ID set whose draws its OOD metrics read (None: labelled)
    sorts: OutputSorts = field(default_factory=OutputSorts)

    def values(self, drawn: dict[str, DrawCounts]) -> dict[str, torch.Tensor]:
        """Its metrics on one block of resamples (``drawn``: every dataset's draws)."""
        mine = drawn[self.name]
        ids = drawn[self.id_name] if self.id_name is not None else None
        return resampled_values(
            self.inputs,
            self.role,
            mine.draws,
            None if ids is None else ids.draws,
            mine,
            ids,
            self.sorts,
        )


def available_cpus() -> int:
    """The CPUs this process may run on (its affinity), or ``OMP_NUM_THREADS`` when set lower."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cpus = os.cpu_count() or 1
    limit = os.environ.get("OMP_NUM_THREADS", "")
    return max(1, min(cpus, int(limit))) if limit.isdigit() and int(limit) > 0 else cpus


def _glibc() -> ctypes.CDLL | None:
    try:
        return ctypes.CDLL("libc.so.6")
    except OSError:  # not glibc
        return None


def _one_heap(on: bool) -> None:
    """With ``on``, let threads started from now on allocate from the main heap (glibc's
    ``M_ARENA_MAX`` = 1; elsewhere a no-op): each worker's own heap kept its freed blocks of
    B x N temporaries besides the others' (1,000,000 ID + 1,000,000 OOD samples, 30
    resamples: 2.46 GiB peak with a heap per thread, 1.83 GiB with one). Without, glibc's
    default limit again (8 heaps per CPU).

    Args:
        on: one heap for the threads started from now on, or the default limit again.
    """
    libc = _glibc()
    if libc is not None:
        libc.mallopt(-8, 1 if on else 8 * (os.cpu_count() or 1))  # M_ARENA_MAX


def _release_freed_memory() -> None:
    """Hand the heap's freed pages back to the system (glibc's ``malloc_trim``; elsewhere a
    no-op), once per chunk of resamples and at least every ``TRIM_BLOCKS`` blocks. A block's
    B x N temporaries are freed into the heap and reused there in pieces, which fragments it:
    1,000 resamples of the ImageNet-shaped 46,000 test samples peaked at 3.2 GB RSS without
    this and 2.0 GB with it, for 5.8 s of system time instead of 2.6 s (glibc's fixed mmap
    threshold instead: 1.2 GB, but 85 s of page faults)."""
    libc = _glibc()
    if libc is not None:
        libc.malloc_trim(0)


def _key(row: dict) -> tuple:
    members = row.get("members") or ""
    return row["dataset"], row["policy"], row["setting"], row["score"], members, row["metric"]


def _pair_key(row: dict) -> tuple:
    """What a policy and its baseline share: dataset, score, member order, metric."""
    return row["dataset"], row["score"], row.get("members") or "", row["metric"]


@dataclass
class Bootstrap:
    """Collects the resampled values of a run's rows; then intervals and paired differences.

    The datasets of each evaluated policy are recorded as they are added and resampled all
    together when the values are first read ([`run`][]): block by block of resamples, each
    dataset's draws and their counts are made once and shared by every policy, and the
    (dataset, policy) pairs of a block are evaluated on ``workers`` threads at once, each
    torch operation on one thread (several threads per operation spin at their barriers on a
    busy machine: 3-6x slower there, measured). Memory: one block (``BLOCK_BYTES``), whatever
    the number of resamples, plus the sorts and per-sample factors each pair keeps across
    blocks (``KEPT_BYTES_PER_SAMPLE``); where those would pass ``KEPT_BYTES`` (a million
    samples under several policies), the datasets are resampled one at a time instead (the
    same draws and values; an OOD set's ID draws are made again).

    Attributes:
        num: number of resamples B (0: off).
        seed: seed of the draws.
        level: the intervals' confidence level.
        members: the member order of the policies being added, in a run over several orders
            (``m1>m0``; the rows carry it as ``members``), else empty.
        workers: threads evaluating at once (None: the CPUs this process may use,
            [`available_cpus`][]).
        values: (dataset, policy, setting, score, members, metric) -> B values (complete
            after [`run`][]; [`samples`][], [`annotate`][] and [`delta_rows`][] run it).
    """

    num: int
    seed: int = 0
    level: float = 0.95
    members: str = ""
    workers: int | None = None
    values: dict = field(default_factory=dict)
    _done: dict = field(default_factory=dict, repr=False)
    _pending: dict = field(default_factory=dict, repr=False)  # fingerprint -> _Unit
    _keys: list = field(default_factory=list, repr=False)  # (row key without metric, print)

    def __post_init__(self):
        check_resamples(self.num)
        if not 0 < self.level < 1:
            raise ValueError(f"bootstrap level must be in (0, 1), got {self.level}")

    def add(self, policy, score: str, role_inputs: dict[str, tuple[str, MetricInputs]]) -> None:
        """Record every dataset of one evaluated policy (``role_inputs``: dataset -> (role,
        metric inputs)) for resampling; the ID set's draws are those of the dataset named
        ``id``.

        A dataset whose outputs and settings were already recorded (the same single member
        in two orders, two policies that passed on the same samples) is resampled once."""
        id_name = next(name for name, (role, _) in role_inputs.items() if role == "id")
        for name, (role, inputs) in role_inputs.items():
            inputs = replace(
                inputs, outputs=inputs.outputs.cpu(), id_outputs=inputs.id_outputs.cpu()
            )
            print_ = _fingerprint(name, role, inputs)
            if print_ not in self._done and print_ not in self._pending:
                reads_id = role == "ood" or name == id_name
                unit = _Unit(print_, name, role, inputs, id_name if reads_id else None)
                self._pending[print_] = unit
            self._keys.append(((name, policy.name, policy.setting, score, self.members), print_))

    def run(self) -> None:
        """Resample every recorded dataset not yet resampled (see the class docstring)."""
        units = list(self._pending.values())
        held = sum(u.inputs.outputs.num_samples for u in units) * KEPT_BYTES_PER_SAMPLE
        if held <= KEPT_BYTES:
            groups = [units] if units else []
        else:  # one dataset's sorts and factors at a time (its ID set's draws made again)
            datasets: dict[str, list[_Unit]] = {}
            for unit in units:
                datasets.setdefault(unit.name, []).append(unit)
            groups = list(datasets.values())
        for group in groups:
            self._resample(group)
        self._pending.clear()
        for prefix, print_ in self._keys:
            for metric, vals in self._done[print_].items():
                self.values[(*prefix, metric)] = vals
        self._keys.clear()

    def _resample(self, units: list[_Unit]) -> None:
        sizes: dict[str, int] = {}
        for u in units:
            if u.id_name is not None:
                sizes.setdefault(u.id_name, u.inputs.id_outputs.num_samples)
            sizes.setdefault(u.name, u.inputs.outputs.num_samples)
        workers = max(1, min(self.workers or available_cpus(), len(units)))
        # per row of resamples: each dataset's draws and counts (20 bytes a sample, for this
        # block and the next one, drawn meanwhile), and per worker the float64 curves of the
        # largest dataset with the ID set (about 10 arrays)
        widest = max(u.inputs.outputs.num_samples + u.inputs.id_outputs.num_samples for u in units)
        per_row = 40 * sum(sizes.values()) + 80 * workers * widest
        rows = max(1, min(CHUNK, BLOCK_BYTES // per_row))
        # blocks of rows resamples, none across a chunk of CHUNK (whose draws one generator makes)
        blocks = [
            (start, first, min(rows, min(CHUNK, self.num - start) - first))
            for start in range(0, self.num, CHUNK)
            for first in range(0, min(CHUNK, self.num - start), rows)
        ]
        gens: dict[str, torch.Generator] = {}

        def draw(block: tuple[int, int, int]) -> dict[str, DrawCounts]:
            """Every dataset's draws and counts of one block (blocks in order: the generators
            of a chunk run on)."""
            start, first, size = block
            if first == 0:
                gens.update({name: _generator(name, self.seed, start) for name in sizes})
            return {
                name: DrawCounts.of(torch.randint(n, (size, n), generator=gens[name]), n)
                for name, n in sizes.items()
            }

        parts: dict[str, dict[str, list[torch.Tensor]]] = {u.fingerprint: {} for u in units}
        _one_heap(True)
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            with ThreadPoolExecutor(workers) as pool:
                upcoming = pool.submit(draw, blocks[0])
                for i in progress(
                    range(len(blocks)), "bootstrap", len(blocks), unit=f"{rows} resamples"
                ):
                    drawn = upcoming.result()
                    if i + 1 < len(blocks):  # the next block's draws, on a worker meanwhile
                        upcoming = pool.submit(draw, blocks[i + 1])
                    jobs = [pool.submit(u.values, drawn) for u in units]
                    for u, job in zip(units, jobs, strict=True):
                        for metric, vals in job.result().items():
                            parts[u.fingerprint].setdefault(metric, []).append(vals)
                    del drawn, jobs
                    start, first, size = blocks[i]
                    if first + size == min(CHUNK, self.num - start) or i % TRIM_BLOCKS == 0:
                        _release_freed_memory()
        finally:
            torch.set_num_threads(threads)
            _one_heap(False)
        for u in units:
            self._done[u.fingerprint] = {m: torch.cat(v) for m, v in parts[u.fingerprint].items()}
            u.sorts.found.clear()

    def samples(self, key: tuple) -> torch.Tensor:
        """The B resampled values of a row's key."""
        self.run()
        return self.values[key]

    def interval(
        self, values: torch.Tensor, point: float | None = None, method: str = "percentile"
    ) -> tuple[float, float]:
        """The interval of B resampled values (a constant, even an infinite one such as an
        unreachable operating threshold, is its own interval).

        Args:
            values: the B resampled values.
            point: the value on the whole sample (needed by ``median-recentred``).
            method: ``percentile``, or ``median-recentred`` (the percentile interval moved so
                that the resamples' median falls on ``point``; see
                ``window_cascades.cascade.metric_registry.INTERVAL_METHODS``).

        Returns:
            (low, high).
        """
        if bool((values == values[0]).all()):
            return float(values[0]), float(values[0])
        alpha = (1 - self.level) / 2
        q = torch.tensor([alpha, 1 - alpha], dtype=torch.float64)
        lo, hi = torch.nanquantile(values, q).tolist()
        if method == "median-recentred" and point is not None and point == point:
            median = float(torch.nanquantile(values, 0.5))
            lo, hi = point - (median - lo), point + (hi - median)
            if lo < 0 <= min(float(values.nan_to_num(0).min()), point):  # never negative
                lo = 0.0
        return lo, hi

    def annotate(self, rows: list[dict]) -> list[dict]:
        """The rows with ``ci_low`` and ``ci_high`` (None where a row was not resampled), each
        by its metric's interval method."""
        self.run()
        out = []
        for r in rows:
            key = _key(r)
            if key in self.values:
                method = metric_entry(r["metric"]).interval
                lo, hi = self.interval(self.samples(key), r["value"], method)
            else:
                lo, hi = None, None
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
        self.run()
        baselines = reference_policies() if baselines is None else tuple(baselines)
        matched_to = cost_matched_policy()
        others = (*baselines, *([matched_to] if matched_to else []))
        base = {}
        for r in rows:
            if r["policy"] in others:
                base[(r["policy"], *_pair_key(r))] = r
        out, seen = [], set()
        for r in rows:
            if r["metric"] in NOT_COMPARED or r["role"] == "heldout":
                continue
            matched = (
                [matched_to]
                if matched_to and r["metric"] in OPERATING_METRICS and r["policy"] not in others
                else []
            )
            for b in [*baselines, *matched]:
                ref = base.get((b, *_pair_key(r)))
                if ref is None or r["policy"] == b:
                    continue
                mine, theirs = self.samples(_key(r)), self.samples(_key(ref))
                lo, hi = self.interval(mine - theirs)
                mirrored = r["policy"] in baselines and baselines.index(r["policy"]) < (
                    baselines.index(b) if b in baselines else -1
                )  # "single vs ensemble" repeats "ensemble vs single"
                # the same resampled values as a policy already compared: the same test
                again = (b, *_pair_key(r), id(mine)) in seen
                seen.add((b, *_pair_key(r), id(mine)))
                tested = (
                    is_random_metric(r["metric"])
                    and not mirrored
                    and not again
                    and b != matched_to
                    and lo != hi
                )
                delta = r["value"] - ref["value"]
                p = bootstrap_p_value(delta, mine - theirs) if tested else None
                out.append(_delta_record(r, b, delta, (lo, hi), p))
        family = [d for d in out if d["p_value"] is not None]
        for d, rejected in zip(
            family, benjamini_hochberg([d["p_value"] for d in family]), strict=True
        ):
            d["significant_bh"] = rejected
        return out


def _delta_record(
    row: dict, baseline: str, delta: float, interval: tuple[float, float], p: float | None
) -> dict:
    """One row of ``deltas.csv``: ``row``'s policy minus ``baseline`` on ``row``'s dataset,
    score and metric, with its interval and p-value (None outside the tested family)."""
    lo, hi = interval
    members = {"members": row["members"]} if row.get("members") else {}
    return {
        **members,
        **{k: row[k] for k in ("dataset", "role", "policy")},
        "baseline": baseline,
        **{k: row[k] for k in ("setting", "score", "metric")},
        "delta": delta,
        "ci_low": lo,
        "ci_high": hi,
        "significant": lo > 0 or hi < 0,
        "p_value": None if p is None or p != p else p,
        "significant_bh": False,
    }
