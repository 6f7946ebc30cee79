"""Load test of ``window-cascades serve`` on CPU localhost: single member, full ensemble, naive
batched cascade and stage-aware cascade, side by side, alternated; and a soak.

    python benchmarks/serve/load_test.py --out benchmarks/serve              # about 35 minutes
    python benchmarks/serve/load_test.py --out benchmarks/serve --soak 600   # then a 10-minute soak

The cascade: two untrained timm ``resnet18`` at 224 x 224 RGB (timing does not depend on the
weights), embedded in a self-contained cascade.ckpt written to a temporary folder, with three
fitted policies: ``single`` (member 1), ``ensemble`` (both members) and ``random`` at a pass
fraction of 0.2 (``--pass-fraction``: the window's typical share; ``random`` passes exactly
that share, by a hash of the image's arrival number). Four servers, one at a time:

* A ``single``, B ``ensemble``, C ``random`` with ``--scheduler naive`` (a batch answers once
  every stage it needs has run), D ``random`` with ``--scheduler stage`` (stage-aware), with
  the given ``--stage_batch``/``--stage_timeout`` (the command's defaults unless set), and E
  as D with ``--other_stage_batch``/``--other_stage_timeout``, to check the defaults against
  other member-2 batching.

Each server's inference worker is pinned to CPU 0 (one torch thread); its HTTP process, the
main process and this client share CPU 1. The client is our own open-loop client (asyncio +
httpx): Poisson arrivals at a set rate, latency measured from each request's *scheduled*
send time (no coordinated omission), one 256 x 256 JPEG per request (64 distinct ones), each
with a unique ``X-Request-Id`` checked against the answer. Per round (``--repeats``): A first,
then B, C, D and E in an order rotated each round; each server gets a closed-loop probe
(``--concurrency`` requests kept in flight: its saturation throughput, and the worker's CPU
time per request), then open-loop arrivals at the round's common rates, 0.5 x and 0.7 x A's
saturation of that round (``--rates``), to compare latencies at the same rates. In the first
round each server but E also runs a ladder of open-loop rates (fractions of its own saturation). The
machine is shared: the targets are judged on each round's ratios (its five servers ran minutes
apart, under about the same load) and their medians.

Every request goes to 127.0.0.1; every phase is bounded in requests and seconds and stops by
itself; every server is stopped (SIGTERM, then SIGKILL of its process group) before the next.
Writes ``serve_cpu.csv`` (one row per phase), ``summary.json`` and ``results.md`` (the
tables, targets met or missed), and with ``--soak`` ``soak_cpu.json`` and ``soak.md``.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import math
import os
import platform
import random
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np
import torch
from PIL import Image

CONFIGS = {  # label -> (policy, scheduler, what it is)
    "A": ("single", "naive", "single member"),
    "B": ("ensemble", "naive", "full ensemble"),
    "C": ("random", "naive", "naive batched cascade"),
    "D": ("random", "stage", "stage-aware cascade"),
    "E": ("random", "stage", "stage-aware cascade, other stage settings"),
}
WORKER_CPU, CLIENT_CPU = 0, 1


# -- the cascade and the requests ------------------------------------------------------------


def write_benchmark_cascade(folder: Path, model: str, pass_fraction: float) -> tuple[Path, list]:
    """A self-contained cascade.ckpt of two untrained ``model`` members (224 px RGB, ImageNet
    normalisation, crop 0.875, bicubic) with ``single``, ``ensemble`` and ``random`` fitted;
    returns its path and the members' MACs per image."""
    from window_cascades.cascade.fitted import FittedCascade
    from window_cascades.cascade.policies import RandomPolicy, ensemble_policy, single_policy
    from window_cascades.lightning_modules.cascade_module import CascadeModule
    from window_cascades.lightning_modules.complexity import count_macs_params
    from window_cascades.lightning_modules.member import MemberModule

    paths = []
    for seed in (0, 1):
        torch.manual_seed(seed)
        member = MemberModule(model_name=model, num_classes=10, in_chans=3, resolution=224)
        paths.append(str(folder / f"m{seed}.ckpt"))
        torch.save(
            {"state_dict": member.state_dict(), "hyper_parameters": dict(member.hparams)},
            paths[-1],
        )
    cascade = CascadeModule(members=paths)
    cascade.set_data_input(((0.485, 0.456, 0.406), (0.229, 0.224, 0.225)), 0.875)
    cascade.data_image_size, cascade.data_interpolation = 224, "bicubic"
    point = {"target": "cov@5", "accept": 0.5, "bound": None, "ood": 0.2, "ood_tpr": 0.95}
    cascade.fitted = FittedCascade(
        {
            "single": single_policy(2),
            "ensemble": ensemble_policy(2),
            "random": RandomPolicy(2, pass_fraction, seed=0),
        },
        None,
        {
            "score": "msp",
            "operating_points": {p: dict(point) for p in ("single", "ensemble", "random")},
        },
    )
    ckpt = {
        "state_dict": cascade.state_dict(),
        "hyper_parameters": dict(cascade.hparams),
        "pytorch-lightning_version": "2.6.0",
    }
    cascade.on_save_checkpoint(ckpt)
    path = folder / "cascade.ckpt"
    torch.save(ckpt, path)
    macs = [float(count_macs_params(m, (3, 224, 224))[0]) for m in cascade.members]
    for p in paths:
        Path(p).unlink()  # the checkpoint embeds them
    return path, macs


def jpegs(count: int = 64, size: int = 256, seed: int = 0) -> list[bytes]:
    """Smooth random colour images as JPEG bytes (quality 90)."""
    rng = np.random.default_rng(seed)
    found = []
    for _ in range(count):
        small = rng.integers(0, 255, (8, 8, 3), dtype=np.uint8)
        image = Image.fromarray(small).resize((size, size), Image.BICUBIC)
        buf = io.BytesIO()
        image.save(buf, "JPEG", quality=90)
        found.append(buf.getvalue())
    return found


# -- servers ---------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def session_pids(leader: int) -> list[int]:
    found = subprocess.run(["pgrep", "-s", str(leader)], capture_output=True, text=True)
    return [int(p) for p in found.stdout.split()]


def is_worker(pid: int) -> bool:
    try:
        return b"spawn_main" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False


def pin(pid: int, cpu: int) -> None:
    """Every thread of ``pid`` onto ``cpu`` (threads it starts later inherit it)."""
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            os.sched_setaffinity(int(task.name), {cpu})
        except OSError:
            pass


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds ``pid`` has used (all its threads)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_bytes(pids: list[int]) -> int:
    total = 0
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) * 1024
        except OSError:
            pass
    return total


class Server:
    """One ``window-cascades serve`` process group on 127.0.0.1, pinned as the docstring says."""

    def __init__(
        self, ckpt: Path, policy: str, scheduler: str, args, log: Path, stage: dict | None = None
    ):
        stage = stage or {"stage_batch": args.stage_batch, "stage_timeout": args.stage_timeout}
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        command = [
            sys.executable,
            "-m",
            "window_cascades",
            "serve",
            "--ckpt_path",
            str(ckpt),
            "--port",
            str(self.port),
            "--policy",
            policy,
            "--scheduler",
            scheduler,
            "--threads",
            "1",
            "--accelerator",
            "cpu",
            "--max_batch_size",
            str(args.max_batch_size),
            "--batch_timeout",
            str(args.batch_timeout),
            "--stage_batch",
            str(stage["stage_batch"]),
            "--stage_timeout",
            str(stage["stage_timeout"]),
        ]  # fmt: skip - the command line as one reads it
        self.log = open(log, "w")
        self.process = subprocess.Popen(
            ["taskset", "-c", str(CLIENT_CPU), *command],
            cwd=log.parent,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def wait_ready(self, timeout: float = 300.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the server ended: {Path(self.log.name).read_text()[-2000:]}")
            try:
                if httpx.get(f"{self.url}/health", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.25)
        else:
            raise RuntimeError(f"the server was not ready in {timeout:g} s")
        workers = [p for p in session_pids(self.process.pid) if is_worker(p)]
        if len(workers) != 1:
            raise RuntimeError(f"expected one inference worker, found {workers}")
        self.worker = workers[0]
        pin(self.worker, WORKER_CPU)

    def worker_cpu(self) -> float:
        return cpu_seconds(self.worker)

    def rss(self) -> int:
        return rss_bytes(session_pids(self.process.pid))

    def stop(self) -> int | None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=30)
        left = session_pids(self.process.pid)
        for pid in left:
            os.kill(pid, signal.SIGKILL)
        self.log.close()
        return self.process.returncode


# -- the client ------------------------------------------------------------------------------


async def _one(client, url, body, rid, scheduled, records):
    try:
        answer = await client.post(url, content=body, headers={"X-Request-Id": rid})
        done = time.monotonic()
        record = {"id": rid, "status": answer.status_code, "latency": done - scheduled}
        if answer.status_code == 200:
            data = answer.json()
            record["echo"] = data["request_id"]
            record["exit_stage"] = data["results"][0]["exit_stage"]
    except httpx.HTTPError as err:
        record = {"id": rid, "status": type(err).__name__, "latency": time.monotonic() - scheduled}
    records.append(record)


async def open_loop(url, rate, duration, warmup, bodies, seed, prefix) -> tuple[list, float]:
    """Poisson arrivals at ``rate``/s for ``warmup + duration`` s; the records of the requests
    scheduled after the warm-up, and the seconds they spanned."""
    rng = random.Random(seed)
    records, tasks = [], []
    limits = httpx.Limits(max_connections=512, max_keepalive_connections=512)
    async with httpx.AsyncClient(limits=limits, timeout=120) as client:
        start = time.monotonic() + 0.2
        t, n = 0.0, 0
        while True:
            t += rng.expovariate(rate)
            if t > warmup + duration:
                break
            await asyncio.sleep(max(0.0, start + t - time.monotonic()))
            rid = f"{prefix}-{n}"
            sink = records if t >= warmup else []
            tasks.append(
                asyncio.create_task(
                    _one(client, f"{url}/predict", bodies[n % len(bodies)], rid, start + t, sink)
                )
            )
            n += 1
        await asyncio.gather(*tasks)
    return records, duration


async def closed_loop(url, concurrency, duration, bodies, prefix, cpu=None) -> tuple[list, float]:
    """``concurrency`` requests kept in flight for ``duration`` s (after 3 s of warm-up);
    ``cpu`` (a function returning the worker's CPU seconds) is read when the measured window
    opens and closes, and the difference is returned as the records' ``worker_cpu_s``."""
    records = []
    marks: list[float] = []
    async with httpx.AsyncClient(timeout=120) as client:
        warm_end = time.monotonic() + 3.0
        end = warm_end + duration
        counter = iter(range(10**9))

        async def user():
            while time.monotonic() < end:
                n = next(counter)
                sink = records if time.monotonic() >= warm_end else []
                await _one(
                    client,
                    f"{url}/predict",
                    bodies[n % len(bodies)],
                    f"{prefix}-{n}",
                    time.monotonic(),
                    sink,
                )

        async def mark():
            await asyncio.sleep(max(0.0, warm_end - time.monotonic()))
            marks.append(cpu() if cpu else math.nan)
            await asyncio.sleep(max(0.0, end - time.monotonic()))
            marks.append(cpu() if cpu else math.nan)

        await asyncio.gather(mark(), *(user() for _ in range(concurrency)))
    for record in records:
        record["window_cpu_s"] = marks[1] - marks[0]
    return records, duration


def q(values: list[float], p: float) -> float:
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(p * len(ordered)) - 1))]


def summarise(records: list, seconds: float) -> dict:
    ok = [r for r in records if r["status"] == 200]
    wrong = [r for r in ok if r.get("echo") != r["id"]]
    exited = [r["latency"] for r in ok if r.get("exit_stage") == 1]
    passed = [r["latency"] for r in ok if r.get("exit_stage", 1) > 1]
    every = [r["latency"] for r in ok]
    cpu = records[0].get("window_cpu_s", math.nan) if records else math.nan
    row = {
        "requests": len(records),
        "answered": len(ok),
        "worker_cpu_ms_per_request": cpu / len(ok) * 1e3 if ok else math.nan,
        "per_worker_cpu_s": len(ok) / cpu if cpu and cpu > 0 else math.nan,
        "errors": len(records) - len(ok),
        "mismatched_ids": len(wrong),
        "goodput": len(ok) / seconds,
        "passed_fraction": len(passed) / len(ok) if ok else math.nan,
    }
    for name, values in (("all", every), ("exited", exited), ("passed", passed)):
        for p in (0.5, 0.95, 0.99):
            row[f"p{round(p * 100)}_{name}_ms"] = q(values, p) * 1e3
    return row


# -- the run ---------------------------------------------------------------------------------


def machine() -> str:
    model = "unknown CPU"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    return f"{os.cpu_count()}-core {model}"


def load_average() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument(
        "--out", required=True, help="folder for serve_cpu.csv, summary.json, results.md"
    )
    p.add_argument("--model", default="resnet18")
    p.add_argument("--pass-fraction", type=float, default=0.2)
    p.add_argument("--repeats", type=int, default=5, help="rounds of the five servers")
    p.add_argument("--duration", type=float, default=15.0, help="seconds per measured phase")
    p.add_argument("--warmup", type=float, default=3.0)
    p.add_argument("--concurrency", type=int, default=16, help="closed-loop probe")
    p.add_argument("--ladder", type=float, nargs="*", default=[0.25, 0.5, 0.75, 1.0, 1.25])
    p.add_argument(
        "--rates",
        type=float,
        nargs="+",
        default=[0.5, 0.7],
        help="common open-loop rates, as fractions of the single member's saturation",
    )
    p.add_argument("--max_batch_size", type=int, default=16)
    p.add_argument("--batch_timeout", type=float, default=0.002)
    p.add_argument("--stage_batch", type=int, default=16)
    p.add_argument("--stage_timeout", type=float, default=0.01)
    p.add_argument("--other_stage_batch", type=int, default=8, help="E's --stage_batch")
    p.add_argument("--other_stage_timeout", type=float, default=0.05, help="E's --stage_timeout")
    p.add_argument("--soak", type=float, default=0.0, help="seconds of D at 0.8 x saturation")
    p.add_argument("--soak-only", action="store_true", help="the soak only")
    args = p.parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # the servers are stopped first
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    os.sched_setaffinity(0, {CLIENT_CPU})
    torch.set_num_threads(1)
    bodies = jpegs()
    work = Path(tempfile.mkdtemp(prefix="serve-load-"))
    ckpt, macs = write_benchmark_cascade(work, args.model, args.pass_fraction)
    print(
        f"[load] {machine()}, load average {load_average()}; cascade {ckpt} (MACs {macs})",
        flush=True,
    )
    if not args.soak_only:
        measure(args, ckpt, macs, bodies, work, out)
    if args.soak > 0:
        soak(args, ckpt, bodies, work, out)
    return 0


def run_server(label, args, ckpt, work, tag):
    policy, scheduler, _ = CONFIGS[label]
    other = {"stage_batch": args.other_stage_batch, "stage_timeout": args.other_stage_timeout}
    stage = other if label == "E" else None
    server = Server(ckpt, policy, scheduler, args, work / f"server_{label}_{tag}.log", stage)
    server.wait_ready()
    return server


def phase(server, label, r, name, rate, args, bodies, seed) -> dict:
    """One measured phase on a running server: closed loop (``rate`` None) or open loop."""
    prefix = f"{label}{r}{name}"
    if rate is None:
        job = closed_loop(
            server.url, args.concurrency, args.duration, bodies, prefix, server.worker_cpu
        )
    else:
        job = open_loop(server.url, rate, args.duration, args.warmup, bodies, seed, prefix)
    records, seconds = asyncio.run(job)
    row = {"config": label, "round": r, "phase": name, "rate": rate, "load": load_average()}
    return {**row, **summarise(records, seconds)}


def measure(args, ckpt, macs, bodies, work, out) -> dict:
    """Rounds of the five servers, A first (its saturation sets the round's common rates),
    B, C, D, E in an order rotated each round; the rows written after every server."""
    rows: list[dict] = []
    started = time.strftime("%Y-%m-%d %H:%M")
    for r in range(args.repeats):
        others = ["B", "C", "D", "E"]
        rates: dict[float, float] = {}
        for label in ["A", *others[r % 4 :], *others[: r % 4]]:
            server = run_server(label, args, ckpt, work, f"r{r}")
            try:
                rows.append(phase(server, label, r, "saturation", None, args, bodies, r))
                capacity = rows[-1]["goodput"]
                print(f"[load] round {r} {label} saturation {capacity:.1f}/s", flush=True)
                rates = rates or {f: f * capacity for f in args.rates}
                for fraction, rate in rates.items():
                    rows.append(
                        phase(server, label, r, f"rate_{fraction:g}", rate, args, bodies, r)
                    )
                    p50 = rows[-1]["p50_exited_ms"]
                    print(f"[load] round {r} {label} at {rate:.1f}/s: p50 exited {p50:.0f} ms")
                for k, fraction in enumerate(args.ladder if r == 0 and label != "E" else []):
                    name, rate = f"ladder_{fraction:g}", fraction * capacity
                    rows.append(phase(server, label, r, name, rate, args, bodies, 100 + k))
            finally:
                code = server.stop()
                if code != 0:
                    print(f"[load] warning: server {label} exited with {code}", flush=True)
            write_csv(out / "serve_cpu.csv", rows)
    summary = summarise_runs(rows, macs, args, started)
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    (out / "results.md").write_text(results_markdown(summary, rows))
    return summary


def write_csv(path: Path, rows: list[dict]) -> None:
    import csv

    fields = list(rows[0])
    for row in rows:
        fields += [k for k in row if k not in fields]
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fields, lineterminator="\n")
        writer.writeheader()
        for row in rows:
            writer.writerow(
                {k: (f"{v:.4g}" if isinstance(v, float) else v) for k, v in row.items()}
            )


def median_of(rows, label, phase, key) -> float:
    values = [
        r[key]
        for r in rows
        if r["config"] == label and r["phase"] == phase and not math.isnan(r[key])
    ]
    return statistics.median(values) if values else math.nan


def summarise_runs(rows, macs, args, started) -> dict:
    """Medians over the rounds of each figure, and of each round's ratios (the five servers of
    a round ran minutes apart, under about the same load of the shared machine)."""
    rounds = sorted({r["round"] for r in rows})

    def get(label, r, name, key):
        found = [x[key] for x in rows if (x["config"], x["round"], x["phase"]) == (label, r, name)]
        return found[0] if found else math.nan

    def median(values):
        values = [v for v in values if not math.isnan(v)]
        return statistics.median(values) if values else math.nan

    keys = [k for k in rows[0] if k.endswith("_ms") or k in ("goodput", "passed_fraction", "rate")]
    sat = {k: median([get(k, r, "saturation", "goodput") for r in rounds]) for k in CONFIGS}
    cpu_ms = {
        k: median([get(k, r, "saturation", "worker_cpu_ms_per_request") for r in rounds])
        for k in CONFIGS
    }
    per_round = []
    for r in rounds:
        passed = get("D", r, "saturation", "passed_fraction")
        expected = macs[0] + passed * macs[1]  # expected MACs per image of the cascade
        predicted = get("B", r, "saturation", "goodput") * sum(macs) / expected
        predicted_cpu_ms = get("B", r, "saturation", "worker_cpu_ms_per_request") * expected
        entry = {
            "round": r,
            "passed_fraction": passed,
            "macs_predicted_per_s": predicted,
            "saturation_over_prediction": get("D", r, "saturation", "goodput") / predicted,
            "worker_cpu_over_prediction": predicted_cpu_ms
            / sum(macs)
            / get("D", r, "saturation", "worker_cpu_ms_per_request"),
            "defaults_saturation": get("D", r, "saturation", "goodput")
            / get("E", r, "saturation", "goodput"),
        }
        for fraction in args.rates:  # D over E (other stage settings)
            for kind in ("all", "exited", "passed"):
                name = f"rate_{fraction:g}"
                entry[f"defaults_p50_{kind}_{fraction:g}"] = get(
                    "D", r, name, f"p50_{kind}_ms"
                ) / get("E", r, name, f"p50_{kind}_ms")
        for fraction in args.rates:
            name = f"rate_{fraction:g}"
            stage = get("D", r, name, "p50_exited_ms")
            entry[f"rate_{fraction:g}_per_s"] = get("A", r, name, "rate")
            entry[f"exited_p50_over_single_{fraction:g}"] = stage / get("A", r, name, "p50_all_ms")
            entry[f"exited_p50_over_naive_{fraction:g}"] = stage / get(
                "C", r, name, "p50_exited_ms"
            )
        per_round.append(entry)
    targets = {}
    for key, bound, above in (
        ("saturation_over_prediction", 0.9, True),
        ("worker_cpu_over_prediction", 0.9, True),
        *((f"exited_p50_over_single_{f:g}", 1.2, False) for f in args.rates),
        *((f"exited_p50_over_naive_{f:g}", 1.0, False) for f in args.rates),
    ):
        value = median([e[key] for e in per_round])
        met = value >= bound if above else value <= bound
        if key.startswith("exited_p50_over_naive"):
            met = value < bound
        targets[key] = {
            "median": value,
            "rounds": [e[key] for e in per_round],
            "bound": bound,
            "met": met,
        }
    at_rates = {
        f"{f:g}": {
            k: {key: median([get(k, r, f"rate_{f:g}", key) for r in rounds]) for key in keys}
            for k in CONFIGS
        }
        for f in args.rates
    }
    return {
        "machine": machine(),
        "device": "cpu (not measured on a GPU)",
        "started": started,
        "finished": time.strftime("%Y-%m-%d %H:%M"),
        "load_average_1_5_15_per_phase": [f"{r['config']}{r['round']} {r['load']}" for r in rows],
        "python": platform.python_version(),
        "torch": torch.__version__,
        "model": args.model,
        "pass_fraction": args.pass_fraction,
        "settings": {
            k: getattr(args, k)
            for k in (
                "repeats",
                "duration",
                "warmup",
                "concurrency",
                "rates",
                "ladder",
                "max_batch_size",
                "batch_timeout",
                "stage_batch",
                "stage_timeout",
                "other_stage_batch",
                "other_stage_timeout",
            )
        },
        "member_macs": macs,
        "saturation_per_s": sat,
        "worker_cpu_ms_per_request": cpu_ms,
        "saturation_runs": {
            k: [get(k, r, "saturation", "goodput") for r in rounds] for k in CONFIGS
        },
        "per_round": per_round,
        "targets": targets,
        "at_rates": at_rates,
        "d_over_e": {
            key: {
                "median": median([e[key] for e in per_round]),
                "rounds": [e[key] for e in per_round],
            }
            for key in per_round[0]
            if key.startswith("defaults_")
        },
    }


def results_markdown(s: dict, rows: list[dict]) -> str:
    loads = [float(x.split()[1]) for x in s["load_average_1_5_15_per_phase"]]
    lines = [
        "# `window-cascades serve` under load (CPU, localhost)",
        "",
        f"Machine: {s['machine']}, shared with other work (1-minute load average after each "
        f"phase: median {statistics.median(loads):.1f}, range {min(loads):.1f}-{max(loads):.1f}); "
        f"torch {s['torch']}, Python {s['python']}; {s['device']}. {s['started']} to "
        f"{s['finished']}. Program: `benchmarks/serve/load_test.py` (its own open-loop asyncio + "
        f"httpx client; {s['settings']['repeats']} rounds, medians). Members: two untrained "
        f"{s['model']} at 224 x 224 RGB ({s['member_macs'][0] / 1e9:.2f} GMACs each); the "
        f"cascade: the `random` policy passing {s['pass_fraction']:.0%} on. The inference worker "
        "pinned to CPU 0 (1 torch thread); the HTTP process and the client on CPU 1. Server "
        f"settings: `--max_batch_size {s['settings']['max_batch_size']} --batch_timeout "
        f"{s['settings']['batch_timeout']} --stage_batch {s['settings']['stage_batch']} "
        f"--stage_timeout {s['settings']['stage_timeout']}`.",
        "",
        "| configuration | saturation (req/s; each round) | worker CPU per request (ms) "
        "| passed on |",
        "|---|---|---|---|",
    ]
    for label, (policy, scheduler, what) in CONFIGS.items():
        runs = ", ".join(f"{v:.1f}" for v in s["saturation_runs"][label])
        first = next(iter(s["at_rates"]))
        lines.append(
            f"| {label} {what} (`--policy {policy} --scheduler {scheduler}`) | "
            f"{s['saturation_per_s'][label]:.1f} ({runs}) | "
            f"{s['worker_cpu_ms_per_request'][label]:.0f} | "
            f"{s['at_rates'][first][label]['passed_fraction']:.2f} |"
        )
    lines += [
        "",
        f"Saturation: closed-loop throughput with {s['settings']['concurrency']} requests in "
        "flight. Worker CPU per request: the inference worker's user + system CPU time over "
        "that window per request answered (what the model cost, whatever share of its core the "
        "shared machine left the worker).",
    ]
    for fraction, at in s["at_rates"].items():
        lines += [
            "",
            f"Open-loop at {fraction} x the single member's saturation of the same round "
            f"(median {at['A']['rate']:.1f} requests/s), latency in ms:",
            "",
            "| configuration | p50 / p95 / p99 all | p50 / p95 / p99 exited "
            "| p50 / p95 / p99 passed on | goodput (req/s) |",
            "|---|---|---|---|---|",
        ]
        for label, (_, _, what) in CONFIGS.items():
            a = at[label]
            lines.append(
                f"| {label} {what} | {triple(a, 'all')} | {triple(a, 'exited')} | "
                f"{triple(a, 'passed')} | {a['goodput']:.1f} |"
            )
    t = s["targets"]
    lines += [
        "",
        "Targets: each round's ratio (the five servers of a round ran minutes apart), and "
        "their median.",
        "",
        "| target | each round | median | met |",
        "|---|---|---|---|",
    ]
    names = {
        "saturation_over_prediction": "stage-aware saturation / MACs-predicted (ensemble's "
        "saturation x 2 / (1 + passed on)) >= 0.9",
        "worker_cpu_over_prediction": "the same, per worker CPU second >= 0.9",
    }
    for fraction in s["settings"]["rates"]:
        names[f"exited_p50_over_single_{fraction:g}"] = (
            f"exited p50 / single member's p50 at {fraction:g} x <= 1.2"
        )
        names[f"exited_p50_over_naive_{fraction:g}"] = (
            f"exited p50 / naive cascade's exited p50 at {fraction:g} x < 1"
        )
    for key, name in names.items():
        target = t[key]
        rounds = ", ".join(f"{v:.2f}" for v in target["rounds"])
        lines.append(f"| {name} | {rounds} | {target['median']:.2f} | {yes(target['met'])} |")
    lines += [
        "",
        "The stage settings of D (`--stage_batch "
        f"{s['settings']['stage_batch']} --stage_timeout {s['settings']['stage_timeout']}`) over "
        f"E's (`--stage_batch {s['settings']['other_stage_batch']} --stage_timeout "
        f"{s['settings']['other_stage_timeout']}`), each round's ratio "
        "(below 1 is faster for latency, above 1 for saturation):",
        "",
        "| D / E | each round | median |",
        "|---|---|---|",
    ]
    for key, found in s["d_over_e"].items():
        rounds = ", ".join(f"{v:.2f}" for v in found["rounds"])
        what = (
            "saturation"
            if key == "defaults_saturation"
            else "p50 {} at {} x".format(*key.removeprefix("defaults_p50_").split("_"))
        )
        lines.append(f"| {what} | {rounds} | {found['median']:.2f} |")
    lines += [
        "",
        "Open-loop ladder (first round; rates as fractions of each server's own saturation):",
        "",
        "| configuration | offered (req/s) | goodput (req/s) | p50 / p99 all (ms) "
        "| p50 exited (ms) | errors |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        if r["phase"].startswith("ladder_"):
            lines.append(
                f"| {r['config']} x{r['phase'][7:]} | {r['rate']:.1f} | {r['goodput']:.1f} | "
                f"{r['p50_all_ms']:.0f} / {r['p99_all_ms']:.0f} | {fmt(r['p50_exited_ms'])} "
                f"| {r['errors']} |"
            )
    return "\n".join(lines) + "\n"


def triple(row: dict, kind: str) -> str:
    return " / ".join(fmt(row[f"p{p}_{kind}_ms"]) for p in (50, 95, 99))


def fmt(value: float) -> str:
    return "-" if value is None or math.isnan(value) else f"{value:.0f}"


def yes(flag: bool) -> str:
    return "yes" if flag else "**no**"


def soak(args, ckpt, bodies, work, out) -> None:
    """D at 0.8 x its saturation (probed on the soak's server just before) for ``args.soak``
    s: every request answered exactly once (200, its own id), no 5xx; the servers' RSS every
    10 s, growth from minute 2 to the last minute."""
    server = run_server("D", args, ckpt, work, "soak")
    samples: list[tuple[float, int, str]] = []
    start_load = load_average()
    try:
        probe = phase(server, "D", 0, "soak_probe", None, args, bodies, 0)
        rate = 0.8 * probe["goodput"]
        print(f"[load] soak at {rate:.1f}/s (saturation {probe['goodput']:.1f}/s)", flush=True)

        async def sample_rss():
            t0 = time.monotonic()
            while time.monotonic() - t0 < args.soak + 5:
                samples.append((time.monotonic() - t0, server.rss(), load_average()))
                await asyncio.sleep(10)

        async def both():
            sampler = asyncio.create_task(sample_rss())
            result = await open_loop(server.url, rate, args.soak, 0.0, bodies, 7, "soak")
            sampler.cancel()
            return result

        records, seconds = asyncio.run(both())
    finally:
        code = server.stop()
    ids = [r["id"] for r in records]
    ok = [r for r in records if r["status"] == 200 and r.get("echo") == r["id"]]
    minute2 = [b for t, b, _ in samples if 60 <= t < 120]
    last = [b for t, b, _ in samples if t >= samples[-1][0] - 60]
    loads = [float(x.split()[0]) for _, _, x in samples]
    growth = statistics.mean(last) / statistics.mean(minute2) - 1 if minute2 and last else math.nan
    result = {
        "machine": machine(),
        "load_average_before_after": [start_load, load_average()],
        "load_average_1min_during": {
            "median": statistics.median(loads),
            "min": min(loads),
            "max": max(loads),
        },
        "seconds": args.soak,
        "saturation_probe_per_s": probe["goodput"],
        "rate_per_s": rate,
        "sent": len(records),
        "unique_ids": len(set(ids)),
        "answered_200_own_id": len(ok),
        "errors": {
            str(s): sum(1 for r in records if r["status"] == s)
            for s in {r["status"] for r in records}
            if s != 200
        },
        "server_exit_code": code,
        "p50_ms": q([r["latency"] for r in ok], 0.5) * 1e3,
        "p99_ms": q([r["latency"] for r in ok], 0.99) * 1e3,
        "rss_mb": [[round(t), round(b / 2**20)] for t, b, _ in samples],
        "rss_growth": growth,
        "met": len(ok) == len(records) == len(set(ids)) and growth < 0.10,
    }
    (out / "soak_cpu.json").write_text(json.dumps(result, indent=2) + "\n")
    (out / "soak.md").write_text(soak_markdown(result))
    print(
        f"[load] soak: {json.dumps({k: v for k, v in result.items() if k != 'rss_mb'})}", flush=True
    )


def soak_markdown(r: dict) -> str:
    growth = r["rss_growth"]
    load = r["load_average_1min_during"]
    rss = [mb for _, mb in r["rss_mb"]]
    errors = ", ".join(f"{k}: {v}" for k, v in r["errors"].items()) or "none"
    return "\n".join(
        [
            "# Soak: the stage-aware cascade at 80% of its saturation",
            "",
            f"{r['seconds'] / 60:g} minutes of open-loop Poisson arrivals at {r['rate_per_s']:.1f}"
            f" requests/s (0.8 x {r['saturation_probe_per_s']:.1f}/s, the saturation probed on "
            f"the same server just before), on the {r['machine']} (shared; 1-minute load "
            f"average during the soak: median {load['median']:.1f}, {load['min']:.1f} to "
            f"{load['max']:.1f}). `benchmarks/serve/load_test.py --soak`.",
            "",
            "| sent | unique ids | answered 200 with their own id | other answers | "
            "p50 / p99 (ms) | RSS of the server's processes (MB) | RSS growth, minute 2 to the "
            "last | server exit status | met |",
            "|---|---|---|---|---|---|---|---|---|",
            f"| {r['sent']} | {r['unique_ids']} | {r['answered_200_own_id']} | {errors} | "
            f"{r['p50_ms']:.0f} / {r['p99_ms']:.0f} | {min(rss)} to {max(rss)} | "
            f"{growth:+.1%} | {r['server_exit_code']} | {yes(r['met'])} |",
            "",
        ]
    )


if __name__ == "__main__":
    sys.exit(main())
