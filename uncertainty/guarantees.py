"""Acceptance thresholds with a finite-sample guarantee over the draw of the held-out split.

For a target risk R (``cov@R``) and a level DELTA, the threshold returned accepts samples with
confidence >= t such that the *true* selective risk at t (on new data from the held-out
split's distribution) is <= R with probability >= 1 - DELTA:

- ``ltt`` (Learn then Test, Angelopoulos et al. 2021): candidate thresholds at every
  ``step``-th held-out order statistic, most confident first; for each, the null hypothesis
  "true selective risk > R" gets the Hoeffding-Bentkus p-value of the errors among the n
  accepted samples, and fixed-sequence testing rejects while p <= DELTA. The most permissive
  rejected threshold is returned; its certified risk is R. The sequence starts at the first
  candidate from which on every test passes at half the target risk (p(floor(n R / 2)
  errors among n) <= DELTA for every larger n; fixed by N, R and DELTA alone): testing the few most
  confident samples first would end the sequence on noise before any threshold is certified.
- ``sgr`` (Selection with Guaranteed Risk, Geifman & El-Yaniv 2017): a binary search over the
  sorted held-out confidences; at each of its ceil(log2 N) steps the Clopper-Pearson upper
  bound of the selective risk at level DELTA / steps decides the direction. Its certified
  risk is that bound (<= R).

For acceptance targets (``fpr@P``: accept >= P of ID samples; ``risk@C``: coverage >= C) the
threshold is the k-th largest held-out score with the smallest k such that the true acceptance
of that order statistic, distributed Beta(k, N + 1 - k) for continuous scores, is >= P with
probability >= 1 - DELTA, i.e. P(Binomial(N, P) <= k - 1) >= 1 - DELTA. Ties only accept more.

Thresholds are taken at held-out order statistics (data-dependent, as in SGR); the test suite
measures the violation rate over hundreds of independent draws.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

GUARANTEE_METHODS = ("ltt", "sgr")


class GuaranteeError(ValueError):
    """No threshold meets the guarantee on this held-out split (the message says the best)."""


@dataclass(frozen=True)
class CertifiedThreshold:
    """A threshold and what is certified of it with probability at least 1 - delta.

    Attributes:
        threshold: accept confidence >= threshold.
        bound: the certified upper bound on the selective risk (risk targets), or the
            certified lower bound on the acceptance fraction (acceptance targets).
        method: ``ltt``, ``sgr`` or ``order_statistic``.
        delta: the level, in (0, 1).
    """

    threshold: float
    bound: float
    method: str
    delta: float


def check_guarantee(delta: float | None, method: str = "ltt") -> None:
    """Refuse a level outside (0, 1) or an unknown method (where the values enter).

    Args:
        delta: the level DELTA, in (0, 1); None: no guarantee (nothing to check).
        method: ``ltt`` or ``sgr``.
    """
    if delta is not None and not 0 < delta < 1:
        raise ValueError(f"guarantee level DELTA must lie in (0, 1), got {delta}")
    if method not in GUARANTEE_METHODS:
        raise ValueError(
            f"guarantee method {method!r} is unknown; expected one of {GUARANTEE_METHODS}"
        )


def hoeffding_bentkus_pvalue(errors, n, risk: float):
    """p-value(s) of H0 "true risk > ``risk``" after ``errors`` among ``n`` i.i.d. samples
    (numbers or arrays): min(exp(-n h(r_hat, risk)), e * P(Binomial(n, risk) <= errors)),
    h the binary KL divergence, 1 when r_hat >= risk.

    Args:
        errors: the number of errors among the accepted samples (a number or an array).
        n: the number of accepted samples (a number or an array of the same shape).
        risk: the risk level tested, a fraction in (0, 1).
    """
    import numpy as np
    from scipy.stats import binom

    errors, n = np.asarray(errors, dtype=np.float64), np.asarray(n, dtype=np.float64)
    a = np.minimum(errors / n, risk)
    with np.errstate(divide="ignore", invalid="ignore"):
        h = np.where(a > 0, a * np.log(a / risk), 0.0) + (1 - a) * np.log((1 - a) / (1 - risk))
    p = np.minimum(np.exp(-n * h), np.e * binom.cdf(errors, n, risk))
    p = np.where(errors / n >= risk, 1.0, np.minimum(p, 1.0))
    return float(p) if p.ndim == 0 else p


def clopper_pearson_upper(errors: int, n: int, delta: float) -> float:
    """The (1 - delta) upper confidence bound of a binomial rate after ``errors`` in ``n``.

    Args:
        errors: the number of errors.
        n: the number of samples.
        delta: the level: the guarantee holds with probability at least 1 - delta, in (0, 1).
    """
    from scipy.special import betaincinv

    return 1.0 if errors >= n else float(betaincinv(errors + 1, n - errors, 1 - delta))


def _sorted(confidence: torch.Tensor, correct: torch.Tensor | None):
    conf = confidence.detach().double().flatten()
    order = torch.argsort(conf, descending=True, stable=True)
    errors = None if correct is None else torch.cumsum((~correct.flatten().bool())[order], 0)
    return conf[order], errors


def _accepting(conf_sorted: torch.Tensor, k: int) -> int:
    """How many samples the threshold at the k-th largest score accepts (ties included)."""
    return int(torch.searchsorted(-conf_sorted, -conf_sorted[k - 1], right=True))


def ltt_start(n_total: int, risk: float, delta: float) -> int:
    """The first count LTT tests: the smallest n whose test passes at half the target risk.

    Args:
        n_total: the number of held-out samples.
        risk: the target risk R, a fraction in (0, 1).
        delta: the level: the guarantee holds with probability at least 1 - delta, in (0, 1).
    """
    import numpy as np

    n = np.arange(1, n_total + 1)
    passes = hoeffding_bentkus_pvalue(np.floor(n * risk / 2), n, risk) <= delta
    fails = np.nonzero(~passes)[0]  # rounding down makes it ragged: from where every n passes
    return int(fails[-1]) + 2 if fails.size else 1


def ltt_threshold(
    confidence: torch.Tensor, correct: torch.Tensor, risk: float, delta: float, grid: int = 200
) -> CertifiedThreshold:
    """Learn then Test over ``grid`` held-out order statistics (see the module docstring).

    Args:
        confidence: N held-out stage-1 confidences.
        correct: N bools, whether each prediction is correct.
        risk: the target risk R, a fraction in (0, 1).
        delta: the level: the guarantee holds with probability at least 1 - delta, in (0, 1).
        grid: the number of held-out order statistics tested as thresholds.
    """
    conf, cum_errors = _sorted(confidence, correct)
    n_total = conf.numel()
    step = max(1, math.ceil(n_total / grid))
    start = ltt_start(n_total, risk, delta)
    ks = torch.arange(step, n_total + 1, step)
    ks = ks[ks >= start]  # fixed by position, not by the data
    if ks.numel():
        # the count each candidate accepts, ties included
        n = torch.searchsorted(-conf, -conf[ks - 1], right=True)
        p = torch.as_tensor(hoeffding_bentkus_pvalue(cum_errors[n - 1].numpy(), n.numpy(), risk))
        failed = torch.nonzero(p > delta).flatten()
        last = int(failed[0]) - 1 if failed.numel() else ks.numel() - 1  # fixed-sequence stop
        if last >= 0:
            return CertifiedThreshold(float(conf[ks[last] - 1]), risk, "ltt", delta)
    raise GuaranteeError(_nothing_certified(conf, cum_errors, risk, delta, "ltt"))


def sgr_threshold(
    confidence: torch.Tensor, correct: torch.Tensor, risk: float, delta: float
) -> CertifiedThreshold:
    """Selection with Guaranteed Risk (see the module docstring).

    Args:
        confidence: N held-out stage-1 confidences.
        correct: N bools, whether each prediction is correct.
        risk: the target risk R, a fraction in (0, 1).
        delta: the level: the guarantee holds with probability at least 1 - delta, in (0, 1).
    """
    conf, cum_errors = _sorted(confidence, correct)
    m = conf.numel()
    steps = max(1, math.ceil(math.log2(m)))
    low, high, best = 0, m, None  # the count to accept lies in (low, high]; low is certified
    for _ in range(steps):
        if low >= high:
            break
        z = math.ceil((low + high) / 2)
        n = _accepting(conf, z)
        bound = clopper_pearson_upper(int(cum_errors[n - 1]), n, delta / steps)
        if bound < risk:
            best, low = CertifiedThreshold(float(conf[z - 1]), bound, "sgr", delta), z
        else:
            high = z - 1
    if best is None:
        raise GuaranteeError(_nothing_certified(conf, cum_errors, risk, delta / steps, "sgr"))
    return best


def _nothing_certified(conf, cum_errors, risk: float, delta: float, method: str) -> str:
    best_bound, best_n = 1.0, 0
    for n in torch.unique(torch.linspace(1, conf.numel(), 200).round().long()).tolist():
        bound = clopper_pearson_upper(int(cum_errors[n - 1]), n, delta)
        if bound < best_bound:
            best_bound, best_n = bound, n
    return (
        f"no threshold is certified ({method}) at selective risk <= {risk:g} with probability "
        f">= {1 - delta:g} on this held-out split of {conf.numel()} samples; the lowest "
        f"certifiable risk is about {best_bound:.4f} (at coverage {best_n / conf.numel():.3f}): "
        "raise the target risk or DELTA, or hold out more data"
    )


def acceptance_threshold(confidence: torch.Tensor, rate: float, delta: float) -> CertifiedThreshold:
    """The highest threshold whose true acceptance is >= ``rate`` with prob. >= 1 - delta.

    Args:
        confidence: N held-out (in-distribution) confidences.
        rate: the acceptance fraction to certify, in (0, 1].
        delta: the level: the guarantee holds with probability at least 1 - delta, in (0, 1).
    """
    from scipy.stats import binom

    conf, _ = _sorted(confidence, None)
    n = conf.numel()
    ks = torch.arange(1, n + 1)
    ok = torch.as_tensor(binom.cdf(ks.numpy() - 1, n, rate)) >= 1 - delta
    if not bool(ok.any()):
        need = math.ceil(math.log(delta) / math.log(rate))
        raise GuaranteeError(
            f"a held-out split of {n} samples cannot certify acceptance >= {rate:g} with "
            f"probability >= {1 - delta:g}; it needs at least {need} samples"
        )
    k = int(ks[ok][0])
    return CertifiedThreshold(float(conf[k - 1]), rate, "order_statistic", delta)


def certified_threshold(
    confidence: torch.Tensor,
    correct: torch.Tensor,
    task: str,
    value: float,
    delta: float,
    method: str = "ltt",
) -> CertifiedThreshold:
    """The guaranteed threshold of a target (``task`` cov, risk or fpr; ``value`` a fraction):
    risk <= value for ``cov``, acceptance >= value for ``risk`` (coverage) and ``fpr`` (ID).

    Args:
        confidence: N held-out stage-1 confidences.
        correct: N bools, whether each prediction is correct (read for ``cov`` only).
        task: ``cov``, ``risk`` or ``fpr``.
        value: the target's value as a fraction (0.05 for cov@5).
        delta: the level: the guarantee holds with probability at least 1 - delta, in (0, 1).
        method: ``ltt`` or ``sgr`` (risk targets; acceptance targets use a binomial order
            statistic).
    """
    check_guarantee(delta, method)
    if task == "cov":
        if method == "ltt":
            return ltt_threshold(confidence, correct, value, delta)
        return sgr_threshold(confidence, correct, value, delta)
    return acceptance_threshold(confidence, value, delta)
