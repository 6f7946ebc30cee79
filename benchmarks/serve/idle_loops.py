"""Why ``serve`` runs its own loop in LitServe's worker, not LitServe's continuous batching.

    python benchmarks/serve/idle_loops.py --out benchmarks/serve/idle_loops.json

LitServe 0.2.19's ``ContinuousBatchingLoop`` is the loop that keeps requests moving through a
batch as others finish. This program checks, on the installed LitServe, what it would mean
for a served cascade:

* whether a non-streaming API (JSON answers, as ``/predict`` gives) may use it;
* the CPU the inference worker burns while no request comes, over ``--seconds`` (from
  ``/proc/<pid>/stat``: user + system clock ticks), for a toy streaming API on that loop, for
  LitServe's own ``BatchedLoop`` on the same toy API, and for ``window-cascades serve`` (the
  stage-aware loop) on a small untrained cascade.

Every server listens on 127.0.0.1, gets no request but ``/health``, and is stopped (SIGTERM,
then SIGKILL of its process group) before the next starts.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

TOY = """
import sys
import litserve as ls
from litserve.loops.continuous_batching_loop import DefaultContinuousBatchingLoop


class Toy(ls.LitAPI):
    def setup(self, device):
        pass

    def decode_request(self, request):
        return request

    def predict(self, inputs, generated=None):
        return ["x"] * len(inputs)

    def has_finished(self, uid, token, max_len):
        return True

    def encode_response(self, output):
        return {"out": output}


if __name__ == "__main__":
    kind, port = sys.argv[1], int(sys.argv[2])
    if kind == "continuous":
        api = Toy(max_batch_size=8, stream=True, loop=DefaultContinuousBatchingLoop())
    else:
        api = Toy(max_batch_size=8, batch_timeout=0.005)
    server = ls.LitServer(api, accelerator="cpu")
    server.run(host="127.0.0.1", port=port, generate_client_file=False, log_level="warning")
"""


def session_pids(leader: int) -> list[int]:
    found = subprocess.run(["pgrep", "-s", str(leader)], capture_output=True, text=True)
    return [int(p) for p in found.stdout.split()]


def ticks(pid: int) -> int:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime + stime


def worker(leader: int) -> int:
    for pid in session_pids(leader):
        if b"spawn_main" in Path(f"/proc/{pid}/cmdline").read_bytes():
            return pid
    raise RuntimeError("no inference worker")


def idle_ticks(command: list[str], port: int, seconds: float, cwd: Path) -> dict:
    process = subprocess.Popen(
        command,
        cwd=cwd,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )  # fmt: skip - one call as one reads it
    try:
        deadline = time.monotonic() + 300
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/health", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline or process.poll() is not None:
                raise RuntimeError(f"{command} did not start")
            time.sleep(0.25)
        time.sleep(2.0)  # past the start
        pid = worker(process.pid)
        before = ticks(pid)
        time.sleep(seconds)
        used = ticks(pid) - before
        hz = os.sysconf("SC_CLK_TCK")
        return {"ticks": used, "cpu_share_of_a_core": round(used / hz / seconds, 3)}
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            pass
        for pid in session_pids(process.pid):
            os.kill(pid, signal.SIGKILL)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", required=True)
    p.add_argument("--seconds", type=float, default=10.0)
    p.add_argument("--port", type=int, default=18631)
    args = p.parse_args(argv)
    import litserve
    from litserve.loops.continuous_batching_loop import DefaultContinuousBatchingLoop

    work = Path(tempfile.mkdtemp(prefix="idle-loops-"))
    (work / "toy.py").write_text(TOY)
    result: dict = {"litserve": litserve.__version__, "seconds": args.seconds}
    try:
        toy: dict = {}
        exec(TOY.split("if __name__")[0], toy)  # the toy API, defined here too
        litserve.LitServer(
            toy["Toy"](max_batch_size=8, loop=DefaultContinuousBatchingLoop()), accelerator="cpu"
        )
        result["continuous_batching_without_stream"] = "accepted"
    except ValueError as err:
        result["continuous_batching_without_stream"] = f"refused: {str(err).splitlines()[0]}"
    python = sys.executable
    result["idle_worker"] = {
        "litserve ContinuousBatchingLoop (toy, stream=True)": idle_ticks(
            [python, "toy.py", "continuous", str(args.port)], args.port, args.seconds, work
        ),
        "litserve BatchedLoop (toy, batch_timeout 5 ms)": idle_ticks(
            [python, "toy.py", "batched", str(args.port + 1)], args.port + 1, args.seconds, work
        ),
    }
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from load_test import write_benchmark_cascade

    ckpt, _ = write_benchmark_cascade(work, "resnet10t", 0.2)
    serve = [python, "-m", "window_cascades", "serve", "--ckpt_path", str(ckpt), "--policy"]
    result["idle_worker"]["window-cascades serve (stage-aware loop)"] = idle_ticks(
        [*serve, "random", "--port", str(args.port + 2), "--threads", "1"],
        args.port + 2,
        args.seconds,
        work,
    )
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
