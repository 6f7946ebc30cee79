"""``window-cascades serve``: a calibrated cascade over HTTP, with stage-aware scheduling.

    window-cascades serve --ckpt_path cascade.ckpt [--host 127.0.0.1] [--port 8000]
                          [--policy window] [--scheduler stage|naive] [--token_file FILE] ...

The checkpoint alone is enough (it embeds its members, the fitted policies, the data's input
and the members' SHA-256). Everything the server will apply is checked here first, before any
process starts: the checkpoint (read with ``weights_only=True``), the policy (fitted, with an
operating point), named members, the limits and the token; a problem is one line, ``error:
...``, exit status 2. The server itself is LitServe (the ``[serve]`` extra; without it this
command says so in one line), wired in ``window_cascades.commands.serve_app``:
``POST /predict``, ``GET /health``, ``GET /info``, ``GET /metrics``. SIGTERM or Ctrl-C stops
accepting connections, answers the requests in flight (up to ``--drain_timeout`` seconds)
and exits with status 0.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys
from pathlib import Path

EXTRA = "serve needs the [serve] extra: pip install 'window-cascades[serve]'"
TOKEN_ENV = "WINDOW_CASCADES_SERVE_TOKEN"
HOSTS = {"127.0.0.1": "127.0.0.1", "localhost": "127.0.0.1", "0.0.0.0": "0.0.0.0", "::": "::"}
SCHEDULERS = ("stage", "naive")


def default_threads() -> int:
    """Torch threads of the worker: the CPUs this process may use, less one for the HTTP
    process (at least 1)."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cpus = os.cpu_count() or 1
    return max(1, cpus - 1)


def _positive(kind):
    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}") from None
        if not value > 0:
            raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}")
        return value

    return parse


def build_parser(prog: str | None = None) -> argparse.ArgumentParser:
    """The options of ``serve`` (``--help`` lists them with their defaults)."""
    p = argparse.ArgumentParser(
        prog=prog,
        description="Serve a calibrated cascade over HTTP: POST /predict (one image as the "
        "raw body, several as multipart files or a JSON list of base64 strings), GET /health, "
        "GET /info, GET /metrics (Prometheus). Needs the [serve] extra.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    what = p.add_argument_group("what to serve")
    what.add_argument("--ckpt_path", required=True, help="the calibrated cascade (cascade.ckpt)")
    what.add_argument("--policy", default="window", help="a fitted policy of the checkpoint")
    what.add_argument(
        "--members",
        nargs="+",
        default=[],
        metavar="CKPT",
        help="member checkpoints to use instead of the embedded ones, in cascade order (a "
        "notice names any that differ from the recorded ones)",
    )
    where = p.add_argument_group("where")
    where.add_argument(
        "--host",
        default="127.0.0.1",
        help="127.0.0.1 (this machine only), 0.0.0.0 or :: (every interface)",
    )
    where.add_argument("--port", type=int, default=8000, help="1024 to 65535")
    run = p.add_argument_group("devices and batching")
    run.add_argument("--accelerator", choices=("auto", "cpu", "cuda"), default="auto")
    run.add_argument(
        "--threads", type=_positive(int), default=default_threads(), help="torch threads"
    )
    run.add_argument(
        "--scheduler",
        choices=SCHEDULERS,
        default="stage",
        help="stage: requests whose images exit at stage 1 answer at once, passed-on images "
        "wait for member 2 in a queue of their own; naive: a batch answers once every stage "
        "it needs has run",
    )
    run.add_argument(
        "--max_batch_size", type=_positive(int), default=16, help="images per member-1 batch"
    )
    run.add_argument(
        "--batch_timeout",
        type=float,
        default=0.002,
        help="seconds to wait for more requests to fill a member-1 batch",
    )
    run.add_argument(
        "--stage_batch", type=_positive(int), default=16, help="images per member-2+ batch"
    )
    run.add_argument(
        "--stage_timeout",
        type=_positive(float),
        default=0.01,
        help="seconds a passed-on image may wait for member 2 to fill its batch while "
        "requests keep arriving (when none waits, member 2 runs at once)",
    )
    limits = p.add_argument_group("limits and operation")
    limits.add_argument(
        "--max_queue", type=_positive(int), default=256, help="requests in the server; 503 above"
    )
    limits.add_argument(
        "--timeout", type=_positive(float), default=30.0, help="seconds a request may wait: 504"
    )
    limits.add_argument(
        "--max_body", type=_positive(int), default=20_000_000, help="bytes of a request: 413"
    )
    limits.add_argument(
        "--max_images", type=_positive(int), default=64, help="images in one request: 413"
    )
    limits.add_argument(
        "--max_pixels", type=_positive(int), default=4096 * 4096, help="pixels of an image: 413"
    )
    limits.add_argument(
        "--min_side", type=_positive(int), default=8, help="pixels of an image's side: 400"
    )
    limits.add_argument("--formats", default="png,jpeg", help="accepted image formats: 415")
    limits.add_argument(
        "--token_file",
        default=None,
        help=f"a file holding the bearer token /predict, /info and /metrics need (or "
        f"${TOKEN_ENV}); /health stays open",
    )
    limits.add_argument(
        "--drain_timeout",
        type=_positive(float),
        default=30.0,
        help="on SIGTERM, seconds to answer the requests in flight",
    )
    limits.add_argument("--verbose", action="store_true", help="one line per request")
    return p


def _token(path: str | None) -> str | None:
    if path is None:
        return os.environ.get(TOKEN_ENV) or None
    try:
        token = Path(path).read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as err:
        raise ValueError(f"--token_file {path}: cannot be read ({err})") from None
    if not token or any(c.isspace() for c in token):
        raise ValueError(f"--token_file {path}: expected one token (no spaces) in the file")
    return token


def _checked_members(args: argparse.Namespace, ckpt: dict, path: str):
    """The checkpoint's embedded member specs (None in an older checkpoint), the members named
    with ``--members`` (checked: files that exist, one per recorded member) and the recorded
    members; an older checkpoint without ``--members`` needs its member files where they were.
    """
    from window_cascades.lightning_modules.cascade_checkpoint import embedded_members
    from window_cascades.lightning_modules.cascade_members import (
        check_recorded_members_found,
        recorded_members,
    )

    specs = embedded_members(ckpt)
    members = [str(m) for m in args.members]
    for member in members:
        if not Path(member).is_file():
            raise FileNotFoundError(f"--members: member checkpoint not found: {member}")
    recorded = recorded_members(ckpt)
    if members and len(members) != len(recorded):
        raise ValueError(
            f"--members: {len(members)} member(s) given, but {path} was calibrated with "
            f"{len(recorded)}: name one file per member, in cascade order"
        )
    if specs is None and not members:  # an older checkpoint: its member files are needed
        check_recorded_members_found(ckpt, path)
    return specs, members, recorded


def _served_info(args, path, fitted, names, models, members, recorded, preparation) -> dict:
    """What ``GET /info`` says of the served cascade: checkpoint, policies, operating point,
    members (name, model, SHA-256: None for members named with ``--members``) and input."""
    return {
        "checkpoint": path,
        "policy": args.policy,
        "policies": sorted(fitted.policies),
        "score": fitted.info.get("score"),
        "operating_point": fitted.info["operating_points"][args.policy],
        "members": [
            {
                "name": name,
                "model": models[k] if models and not members else None,
                "sha256": None if members else recorded[k].get("sha256"),
            }
            for k, name in enumerate(names)
        ],
        "scheduler": args.scheduler,
        "input": {
            "size": preparation.size,
            "channels": preparation.channels,
            "crop_pct": preparation.crop_pct,
            "interpolation": preparation.interpolation,
            "formats": list(preparation.formats),
        },
    }


def _check_options(args: argparse.Namespace) -> None:
    """Refuse a host, port or batch timeout that cannot work, in one line."""
    if args.host not in HOSTS:
        raise ValueError(
            f"--host {args.host}: expected 127.0.0.1 (or localhost: this machine only), 0.0.0.0 "
            "or :: (every interface)"
        )
    if not 1024 <= args.port <= 65535:
        raise ValueError(f"--port {args.port}: expected a port from 1024 to 65535")
    if args.batch_timeout < 0:
        raise ValueError(f"--batch_timeout {args.batch_timeout}: expected seconds >= 0")


def _preparation(args: argparse.Namespace, prepared: dict):
    """How the server prepares a sent image: the checkpoint's prediction input
    (``prediction_input``) with the server's format and size limits."""
    from window_cascades.datamodules.request_images import ImagePreparation

    formats = tuple(f.strip().lower() for f in args.formats.split(",") if f.strip())
    return ImagePreparation(
        prepared["input_size"],
        prepared["crop_pct"],
        prepared["interpolation"],
        tuple(prepared["mean"]),
        tuple(prepared["std"]),
        formats,
        args.max_pixels,
        args.min_side,
    )


def serve_settings(args: argparse.Namespace):
    """Everything ``serve`` will apply, read from the checkpoint and checked (no process is
    started, no member run).

    Returns:
        (settings, the ready line, the server's LitServer arguments).

    Raises:
        ValueError, FileNotFoundError: one line naming the option, file or field.
    """
    from window_cascades.cascade.fitted import CHECKPOINT_KEY, FittedCascade
    from window_cascades.commands.serve_app import ServeSettings
    from window_cascades.lightning_modules.cascade_checkpoint import (
        DATA_INPUT_KEY,
        read_cascade_checkpoint,
    )
    from window_cascades.lightning_modules.cascade_data_input import prediction_input
    from window_cascades.lightning_modules.cascade_deployment import check_deployable
    from window_cascades.lightning_modules.member_checkpoint import checkpoint_member_inputs
    from window_cascades.lightning_modules.member_specs import member_name, spec_names

    _check_options(args)
    path = str(args.ckpt_path)
    ckpt = read_cascade_checkpoint(path)
    fitted = FittedCascade.from_dict(ckpt[CHECKPOINT_KEY]) if ckpt.get(CHECKPOINT_KEY) else None
    check_deployable(fitted, args.policy)
    specs, members, recorded = _checked_members(args, ckpt, path)
    inputs = checkpoint_member_inputs(
        None if members or specs is None else specs,
        members or ([] if specs else [m["path"] for m in recorded]),
    )
    prepared = prediction_input(ckpt.get(DATA_INPUT_KEY), inputs, path)
    preparation = _preparation(args, prepared)
    names = (
        [member_name(m) for m in members]
        if members
        else (spec_names(specs) if specs else [member_name(m["path"]) for m in recorded])
    )
    models = [s["hyper_parameters"]["model_name"] for s in specs] if specs else None
    info = _served_info(args, path, fitted, names, models, members, recorded, preparation)
    settings = ServeSettings(
        ckpt_path=path,
        policy=args.policy,
        members=members,
        member_names=names,
        preparation=preparation,
        scheduler=args.scheduler,
        stage_batch=args.stage_batch,
        stage_timeout=args.stage_timeout,
        threads=args.threads,
        max_images=args.max_images,
        max_queue=args.max_queue,
        token=_token(args.token_file),
        verbose=args.verbose,
        info=info,
    )
    shown_host = f"[{HOSTS[args.host]}]" if ":" in HOSTS[args.host] else HOSTS[args.host]
    ready = (
        f"serving {path} ({len(names)} members: {', '.join(names)}; policy {args.policy}, "
        f"{args.scheduler} scheduler) on http://{shown_host}:{args.port}"
    )
    server_kwargs = {"accelerator": args.accelerator, "devices": 1, "timeout": args.timeout}
    return settings, ready, server_kwargs


def build_server(args: argparse.Namespace, settings, ready: str, server_kwargs: dict):
    """The LitServe server of ``settings`` (nothing started)."""
    import multiprocessing as mp

    from window_cascades.commands.serve_app import CascadeAPI, CascadeServer

    stage_depth = mp.get_context("spawn").Value("i", 0, lock=False)
    api = CascadeAPI(settings, args.max_batch_size, args.batch_timeout, stage_depth)
    server = CascadeServer(api, settings, stage_depth, args.max_body, **server_kwargs)
    server.ready_line = ready
    return server


def main(argv: list[str] | None = None, prog: str | None = None) -> int:
    """Check everything, then serve until SIGTERM or Ctrl-C; returns the exit status."""
    args = build_parser(prog).parse_args(list(sys.argv[1:] if argv is None else argv))
    missing = [m for m in ("litserve", "python_multipart") if importlib.util.find_spec(m) is None]
    if missing:
        print(f"error: {EXTRA} ({', '.join(missing)} is not installed)", file=sys.stderr)
        return 2
    try:
        settings, ready, server_kwargs = serve_settings(args)
    except (ValueError, OSError) as err:
        message = str(err).strip() or type(err).__name__
        print(f"error: {message}", file=sys.stderr)
        return 2
    server = build_server(args, settings, ready, server_kwargs)
    try:
        server.serve(HOSTS[args.host], args.port, args.drain_timeout)
    except OSError as err:  # the port is taken, the address cannot be bound
        print(
            f"error: --host {args.host} --port {args.port}: {err.strerror or err}", file=sys.stderr
        )
        return 2
    except RuntimeError as err:  # the worker failed to load the cascade (traceback above)
        print(f"error: {err} (see above)", file=sys.stderr)
        return 1
    except (EOFError, ConnectionError):  # the worker died: LitServe stopped the server
        print("error: the inference worker ended unexpectedly; the server stopped", file=sys.stderr)
        return 1
    return 0
