"""torchmetrics wrappers: equal to the pure functions, and under 2-process DDP (gloo)."""

import os

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from window_cascades.lightning_modules.metric_wrappers import (
    CalibrationMetrics,
    SelectiveClassificationMetrics,
)
from window_cascades.uncertainty.probability_metrics import (
    accuracy,
    brier_score,
    expected_calibration_error,
    negative_log_likelihood,
)
from window_cascades.uncertainty.selective import aurc, coverage_at_risk, risk_at_coverage


def sample_data(n=301, c=7, seed=0):
    gen = torch.Generator().manual_seed(seed)
    probs = (torch.randn(n, c, generator=gen) * 2).softmax(-1)
    # mostly the arg-max class, so low selective risks are reachable
    keep = torch.rand(n, generator=gen) < 0.7
    targets = torch.where(keep, probs.argmax(-1), torch.randint(c, (n,), generator=gen))
    is_ood = torch.rand(n, generator=gen) < 0.3
    return probs, targets, is_ood


def make_metrics():
    return {
        "sc": SelectiveClassificationMetrics(risks=(0.3,), coverages=(0.5,)),
        "cal": CalibrationMetrics(),
    }


def feed(metrics, probs, targets, is_ood, chunk=37):
    for s in range(0, probs.shape[0], chunk):
        p, t = probs[s : s + chunk], targets[s : s + chunk]
        conf, pred = p.max(-1)
        metrics["sc"].update(conf, pred, t)
        metrics["cal"].update(p, t)
    return {name: m.compute() for name, m in metrics.items()}


def test_wrappers_equal_pure_functions():
    probs, targets, is_ood = sample_data()
    out = feed(make_metrics(), probs, targets, is_ood)
    conf = probs.max(-1).values.double()
    correct = probs.argmax(-1) == targets
    assert out["sc"]["aurc"] == pytest.approx(aurc(conf, correct))
    assert out["sc"]["cov@30"] == pytest.approx(coverage_at_risk(conf, correct, 0.3)[0])
    assert out["sc"]["risk@50"] == pytest.approx(risk_at_coverage(conf, correct, 0.5)[0])
    assert out["cal"]["ece"] == pytest.approx(expected_calibration_error(probs, targets))
    assert out["cal"]["nll"] == pytest.approx(negative_log_likelihood(probs, targets))
    assert out["cal"]["brier"] == pytest.approx(brier_score(probs, targets))
    assert out["cal"]["acc"] == pytest.approx(accuracy(probs, targets))


def _worker(rank, world, port, queue):
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=world)
    probs, targets, is_ood = sample_data()
    # uneven, interleaved shards, as an unpadded distributed sampler gives
    idx = torch.arange(rank, probs.shape[0], world)
    out = feed(make_metrics(), probs[idx], targets[idx], is_ood[idx], chunk=16)
    queue.put((rank, out))
    dist.barrier()
    dist.destroy_process_group()


@pytest.mark.slow  # starts processes: the fast loop leaves it to the full suite
@pytest.mark.ddp
def test_two_gloo_processes_equal_one_process():
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    procs = [ctx.Process(target=_worker, args=(r, 2, port, queue)) for r in range(2)]
    for p in procs:
        p.start()
    results = dict(queue.get(timeout=120) for _ in procs)
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0
    single = feed(make_metrics(), *sample_data())
    for rank in (0, 1):  # every rank computes, and gets the whole-data value
        for group, values in single.items():
            for key, value in values.items():
                assert results[rank][group][key] == pytest.approx(value, rel=1e-9), (group, key)
