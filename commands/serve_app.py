"""A calibrated cascade on LitServe: the HTTP endpoints, the model's process and its
stage-aware loop (the wiring of ``window-cascades serve``; needs the ``[serve]`` extra).

LitServe runs three kinds of processes: the main one (``serve``'s, which waits), one HTTP
process (uvicorn, forked from the main one) and one inference worker per device (spawned):

* ``CascadeServer`` (a ``LitServer``) owns the endpoints. ``POST /predict`` reads one
  image (raw body), several (multipart files) or a JSON list of base64 strings, refuses what it
  must (401 without the bearer token, 413 over the body limit, 503 when ``max_queue`` requests
  are already in the server, the images' own refusals from
  ``window_cascades.datamodules.request_images``), prepares the images in a thread of the
  HTTP process and queues them for the worker; ``GET /health`` (open), ``GET /info`` and
  ``GET /metrics`` (Prometheus text, ``window_cascades.commands.serve_metrics``).
* ``CascadeAPI`` (a ``LitAPI``) loads the cascade checkpoint in the worker
  (``CascadeModule.load_from_checkpoint``, members embedded) and builds its
  ``window_cascades.cascade.stage_scheduler.StageScheduler``.
* ``CascadeLoop`` (a ``LitLoop``) is the worker's loop: it collects a dynamic batch of
  requests (up to ``max_batch_size`` images within ``batch_timeout`` seconds, cut short when a
  waiting image's ``stage_timeout`` runs out), runs member 1 on it and answers every request
  whose images exited at once; between batches, and whenever no request waits, it runs the
  later members on the images waiting for them. Nothing escapes a step: a bad payload or a
  failing member answers only its own requests.

LitServe's own batched loop answers a batch when every request of it is done, and its
continuous-batching loop is built for streamed token generation (``stream=True`` only); neither
answers exited requests early, hence this loop. What is relied on of LitServe beyond its
documented ``LitAPI``/``LitServer``/``LitLoop`` API is listed in ``LITSERVE_PRIVATE`` (a
test checks that the installed version has it).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hmac
import json
import os
import signal
import sys
import threading
import time
import traceback
import uuid
from dataclasses import dataclass, field
from queue import Empty

import litserve
from fastapi import Depends, HTTPException, Request, Response
from fastapi.responses import JSONResponse
from litserve.loops.base import _SENTINEL_VALUE, LitLoop
from litserve.server import LitServer
from litserve.utils import LitAPIStatus, LoopResponseType, ResponseBufferItem, WorkerSetupStatus
from starlette.exceptions import HTTPException as AnyHTTPException  # FastAPI's is a subclass

from window_cascades.commands.serve_metrics import CONTENT_TYPE, ServeMetrics
from window_cascades.datamodules.request_images import ImagePreparation, RequestImageError

#: LitServe names used beyond its documented API (checked against the installed version).
LITSERVE_PRIVATE = (
    "litserve.loops.base._SENTINEL_VALUE",
    "litserve.server.LitServer._register_api_endpoints",
    "litserve.server.LitServer._register_internal_endpoints",
    "litserve.server.LitServer._get_request_queue",
    "litserve.server.LitServer.verify_worker_status",
    "litserve.utils.WorkerSetupStatus",
    "litserve.server.LitServer._start_server",
    "litserve.utils.ResponseBufferItem",
)
#: LitServer attributes used (set by LitServer itself; a test checks them on an instance).
LITSERVE_ATTRIBUTES = (
    "response_buffer",
    "uvicorn_graceful_timeout",
    "healthcheck_path",
    "info_path",
)
REQUEST_ID = "X-Request-Id"
QUIET_S = 0.5  # after SIGTERM, the worker exits once nothing has arrived for this long


@dataclass
class ServeSettings:
    """What ``serve`` serves and how (plain values: pickled into the worker).

    Attributes:
        ckpt_path: the cascade checkpoint.
        policy: the fitted policy to apply.
        members: member checkpoints named over the embedded ones (empty: the embedded ones).
        member_names: the members' names, in cascade order.
        preparation: how images are prepared (as at calibration) and their limits.
        scheduler: ``stage`` (stage-aware) or ``naive`` (every stage before answering).
        stage_batch: the most images a later member runs on at once.
        stage_timeout: seconds the oldest image waiting for a later member may wait.
        threads: torch threads of the worker.
        max_images: the most images one request may send.
        max_queue: the most requests in the server; more are answered 503.
        token: the bearer token /predict, /info and /metrics need (None: open).
        verbose: one line per request on stdout.
        info: what ``GET /info`` tells of the cascade (JSON-safe).
    """

    ckpt_path: str
    policy: str
    members: list[str]
    member_names: list[str]
    preparation: ImagePreparation
    scheduler: str = "stage"
    stage_batch: int = 16
    stage_timeout: float = 0.01
    threads: int = 1
    max_images: int = 64
    max_queue: int = 256
    token: str | None = None
    verbose: bool = False
    info: dict = field(default_factory=dict)


class WorkerStartError(RuntimeError):
    """The inference worker failed to load the cascade, or ended, before it was ready."""


class StoppedBeforeReady(Exception):
    """SIGTERM or Ctrl-C came while the server was starting: it stopped."""


def error_body(status: int, detail: str) -> dict:
    """The worker's answer for a request it refuses or fails (sent as plain data)."""
    return {"error": {"status": status, "detail": detail}}


class CascadeAPI(litserve.LitAPI):
    """The cascade in the inference worker (see the module docstring).

    Args:
        settings: what is served and how.
        max_batch_size: the most images member 1 runs on at once.
        batch_timeout: seconds the worker waits to fill member 1's batch.
        stage_depth: a shared integer (``multiprocessing.Value``) the worker keeps at the
            number of images waiting for a later member (None: not kept).
    """

    def __init__(
        self, settings: ServeSettings, max_batch_size: int, batch_timeout: float, stage_depth=None
    ):
        super().__init__(
            max_batch_size=max_batch_size,
            batch_timeout=batch_timeout,
            loop=CascadeLoop(stage_depth),
        )
        self.settings = settings
        self.scheduler = None
        self.stopping = False  # SIGTERM came: exit once nothing is left to answer
        self.worker_signals = True  # setup installs the worker's signal handlers

    def _stop(self, signum=None, frame=None) -> None:
        self.stopping = True

    def setup(self, device: str) -> None:
        """Load the cascade (members embedded, or the named ones) onto ``device`` and build
        its scheduler. Ctrl-C in the terminal reaches every process: the worker ignores it, so
        that requests in flight are answered while the server drains. SIGTERM (from the main
        process once the HTTP process is gone, or to the whole process group, as a service
        manager sends it) lets the worker answer what it holds and exit when nothing more
        arrives."""
        import torch

        from window_cascades.cascade.stage_scheduler import StageScheduler
        from window_cascades.lightning_modules.cascade_module import CascadeModule

        if self.worker_signals:
            signal.signal(signal.SIGINT, signal.SIG_IGN)
            signal.signal(signal.SIGTERM, self._stop)
        torch.set_num_threads(self.settings.threads)
        kwargs = {"members": list(self.settings.members)} if self.settings.members else {}
        cascade = CascadeModule.load_from_checkpoint(
            self.settings.ckpt_path, map_location="cpu", weights_only=True, **kwargs
        )
        cascade = cascade.eval().to(device)
        cascade.check_deployable(self.settings.policy)
        fitted = cascade.fitted
        self.device_name = device
        self.scheduler = StageScheduler(
            list(cascade.members),
            fitted.policies[self.settings.policy],
            cascade.score,
            fitted.info["operating_points"][self.settings.policy],
            fitted.temperatures,
            self.settings.stage_batch,
            self.settings.stage_timeout,
            self.settings.scheduler,
        )

    def decode_request(self, request):
        """Unused (``CascadeLoop`` reads the payload); LitServe reads its signature."""
        return request

    def predict(self, x):
        """Unused: ``CascadeLoop`` runs the scheduler."""
        raise NotImplementedError("CascadeLoop runs the cascade")

    def encode_response(self, output):
        """Unused (``CascadeLoop`` answers); LitServe reads its signature."""
        return output


class CascadeLoop(LitLoop):
    """The worker's stage-aware loop over a ``CascadeAPI`` (see the module docstring).

    Args:
        stage_depth: a shared integer kept at the number of images waiting for a later
            member (None: not kept).
    """

    def __init__(self, stage_depth=None):
        super().__init__()
        self.stage_depth = stage_depth
        self._meta: dict = {}  # request key -> (request id, number of images)

    def run(
        self,
        lit_api: CascadeAPI,
        device: str,
        worker_id: int,
        request_queue,
        transport,
        workers_setup_status,
        callback_runner,
    ) -> None:
        """One step: collect a batch and run member 1 on it, or (no request waiting) run a
        later member on what waits for it; answer what is done."""
        scheduler = lit_api.scheduler
        batch = []
        try:
            batch, stop = self._collect(lit_api, request_queue, transport)
            if batch:
                self._start(lit_api, batch, transport)
                while (k := scheduler.due()) is not None:
                    self._answer(lit_api, scheduler.run_stage(k), transport)
            elif (k := scheduler.due(idle=True)) is not None:
                self._answer(lit_api, scheduler.run_stage(k), transport)
            if stop:  # the server stops: answer everything still waiting
                while (k := scheduler.due(idle=True)) is not None:
                    self._answer(lit_api, scheduler.run_stage(k), transport)
        except Exception:  # noqa: BLE001 - the worker must live on; the step's requests failed
            print(f"serve: the inference loop failed:\n{traceback.format_exc()}", file=sys.stderr)
            keys = list(self._meta)
            scheduler.forget(keys)
            for key in keys:
                self._reply(transport, key, error_body(500, "inference failed"))
        finally:
            if self.stage_depth is not None:
                self.stage_depth.value = scheduler.waiting
        self._exit_when_done(lit_api, busy=bool(batch))

    def _exit_when_done(self, lit_api: CascadeAPI, busy: bool) -> None:
        """After SIGTERM: end the worker once no request has arrived for ``QUIET_S``
        seconds and none is open."""
        if not lit_api.stopping:
            return
        scheduler, now = lit_api.scheduler, time.monotonic()
        if busy or scheduler.open_requests or scheduler.waiting:
            self._quiet_since = None
            return
        self._quiet_since = getattr(self, "_quiet_since", None) or now
        if now - self._quiet_since >= QUIET_S:
            # at once: the interpreter's own exit (finalizers of the manager's proxies,
            # torch's threads) takes seconds, and the main process gives the worker 5
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(0)

    def _collect(self, lit_api, request_queue, transport) -> tuple[list, bool]:
        """Up to ``max_batch_size`` images of queued requests: wait for the first (not at all
        while images wait for a later member: the server is then idle when none is there),
        then at most ``batch_timeout`` seconds for more, cut short at the oldest waiting
        image's deadline. Requests older than the server's timeout are answered 504.

        Returns:
            ((response queue, uid, payload) per request, whether the stop sentinel came).
        """
        scheduler = lit_api.scheduler
        wait = 0.0 if scheduler.waiting else (QUIET_S / 4 if lit_api.stopping else 1.0)
        batch, images, first = [], 0, True
        end = None
        while images < lit_api.max_batch_size:
            timeout = wait if first else end - time.monotonic()
            try:
                item = request_queue.get(timeout=max(0.0, timeout))
            except Empty:
                break
            if item == _SENTINEL_VALUE or item is None:
                return batch, True
            if first:
                first = False
                end = time.monotonic() + lit_api.batch_timeout
                deadline = scheduler.next_deadline()
                if deadline is not None:
                    end = min(end, deadline)
            queue_id, uid, queued_at, payload = item
            timeout_s = lit_api.request_timeout
            if timeout_s not in (-1, False, None) and time.monotonic() - queued_at > timeout_s:
                self._reply(
                    transport,
                    (queue_id, uid),
                    error_body(504, f"the request waited more than {timeout_s:g} s (--timeout)"),
                )
                continue
            batch.append(((queue_id, uid), payload))
            images += len(payload.get("images", ())) if isinstance(payload, dict) else 1
        return batch, False

    def _start(self, lit_api: CascadeAPI, batch: list, transport) -> None:
        """Member 1 on the batch's images; a payload that cannot be batched answers 400."""
        preparation = lit_api.settings.preparation
        shape = (preparation.size, preparation.size, preparation.channels)
        requests = []
        for key, payload in batch:
            try:
                arrays = payload["images"]
                if not arrays or len(arrays) > lit_api.settings.max_images:
                    raise ValueError(f"{len(arrays)} images")
                if any(getattr(a, "shape", None) != shape for a in arrays):
                    raise ValueError(f"images must be prepared arrays of shape {shape}")
                x = preparation.to_batch(arrays, lit_api.device_name)
            except Exception as err:  # noqa: BLE001 - only this request is bad
                self._reply(transport, key, error_body(400, f"malformed request payload: {err}"))
                continue
            self._meta[key] = (payload.get("id"), x.shape[0])
            requests.append((key, x))
        if not requests:
            return
        try:
            outcomes = lit_api.scheduler.submit(requests)
        except Exception as err:  # noqa: BLE001 - member 1 failed on this batch
            for key, _ in requests:
                self._meta.pop(key, None)
                self._reply(transport, key, error_body(500, f"inference failed: {err}"))
            return
        self._answer(lit_api, outcomes, transport)

    def _answer(self, lit_api: CascadeAPI, outcomes: list, transport) -> None:
        settings = lit_api.settings
        for outcome in outcomes:
            request_id, _ = self._meta.pop(outcome.key, (None, 0))
            if outcome.error is not None:
                self._reply(transport, outcome.key, error_body(500, outcome.error))
                continue
            results = [
                {**d, "members": settings.member_names[: d["exit_stage"]]}
                for d in outcome.decisions
            ]
            body = {"request_id": request_id, "policy": settings.policy, "results": results}
            self._reply(transport, outcome.key, body)

    def _reply(self, transport, key, body: dict) -> None:
        queue_id, uid = key
        self.put_response(transport, queue_id, uid, body, LitAPIStatus.OK, LoopResponseType.REGULAR)


def _first_line(text: str, limit: int = 300) -> str:
    line = " ".join(str(text).split())
    return line if len(line) <= limit else line[: limit - 3] + "..."


class CascadeServer(LitServer):
    """The HTTP side of a served cascade (see the module docstring).

    Args:
        api: the cascade's ``LitAPI``.
        settings: what is served and how.
        stage_depth: the shared integer the worker keeps at the images waiting for a later
            member (None: reported as 0).
        max_body: the largest request body accepted, in bytes.
        **kwargs: ``LitServer``'s (``accelerator``, ``devices``, ``timeout``, ...).
    """

    def __init__(
        self,
        api: CascadeAPI,
        settings: ServeSettings,
        stage_depth=None,
        max_body: int = 20_000_000,
        **kwargs,
    ):
        self.settings, self.max_body = settings, max_body
        self.stage_depth = stage_depth
        self.metrics = ServeMetrics(
            len(settings.member_names),
            (lambda: stage_depth.value) if stage_depth is not None else None,
        )
        self.stop_requested = False
        self.ready_line = "ready"  # printed once the worker is ready (serve sets it)
        self._main_pid = os.getpid()
        super().__init__(
            api,
            max_payload_size=max_body,
            model_metadata=settings.info,
            disable_openapi_url=True,
            **kwargs,
        )

    # -- authentication -------------------------------------------------------------------

    def authorize(self, request: Request) -> None:
        """Refuse a request without the bearer token (when one is set): 401."""
        token = self.settings.token
        if token is None:
            return
        given = request.headers.get("authorization", "")
        if not hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
            raise HTTPException(
                401,
                "missing or wrong bearer token (send 'Authorization: Bearer <token>')",
                headers={"WWW-Authenticate": "Bearer"},
            )

    # -- endpoints ------------------------------------------------------------------------

    def _register_internal_endpoints(self) -> None:
        """``GET /health`` (open: 200 ``ok`` once the worker is ready, else 503), ``GET
        /info`` and ``GET /metrics`` (behind the token)."""

        @self.app.get(self.healthcheck_path)
        async def health() -> Response:
            status = getattr(self, "workers_setup_status", None) or {}
            ready = bool(status) and all(v == WorkerSetupStatus.READY for v in status.values())
            return Response("ok" if ready else "not ready", status_code=200 if ready else 503)

        @self.app.get(self.info_path, dependencies=[Depends(self.authorize)])
        async def info() -> JSONResponse:
            return JSONResponse(self.settings.info)

        @self.app.get("/metrics", dependencies=[Depends(self.authorize)])
        async def metrics() -> Response:
            return Response(self.metrics.render(), media_type=CONTENT_TYPE)

    def _register_api_endpoints(self, lit_api, request_type, response_type) -> None:
        """``POST /predict`` (see ``predict``)."""

        async def predict(request: Request) -> JSONResponse:
            return await self.predict(request, lit_api)

        self.app.add_api_route(lit_api.api_path, predict, methods=["POST"])

    async def predict(self, request: Request, lit_api) -> JSONResponse:
        """One request: its images checked and prepared, queued, answered with one decision
        per image (or refused in one line with its status)."""
        start = time.perf_counter()
        request_id = _first_line(request.headers.get(REQUEST_ID) or uuid.uuid4().hex, 128)
        code, body, stages = 500, None, None
        metrics = self.metrics
        try:
            self.authorize(request)
        except AnyHTTPException as err:
            metrics.observe(err.status_code, time.perf_counter() - start)
            self._log(request, err.status_code, start, request_id, None)
            return JSONResponse(
                {"detail": err.detail},
                status_code=err.status_code,
                headers={**(err.headers or {}), REQUEST_ID: request_id},
            )
        if metrics.in_flight >= self.settings.max_queue:
            code = 503
            self._log(request, code, start, request_id, None)
            metrics.observe(code, time.perf_counter() - start)
            return JSONResponse(
                {
                    "detail": f"server busy: {metrics.in_flight} requests in the server "
                    f"(--max_queue {self.settings.max_queue}); retry later"
                },
                status_code=503,
                headers={"Retry-After": "1", REQUEST_ID: request_id},
            )
        metrics.in_flight += 1
        try:
            bodies = await self._read_images(request)
            arrays = await asyncio.to_thread(self._prepare, bodies)
            answer = await self._submit(lit_api, {"id": request_id, "images": arrays})
            if "error" in answer:
                code, body = answer["error"]["status"], {"detail": answer["error"]["detail"]}
            else:
                code, body = 200, answer
                stages = [r["exit_stage"] for r in answer["results"]]
        except AnyHTTPException as err:
            code, body = err.status_code, {"detail": _first_line(err.detail)}
        except RequestImageError as err:
            code, body = err.status, {"detail": _first_line(str(err))}
        except Exception as err:  # noqa: BLE001 - one line for the client, the server goes on
            code, body = 500, {"detail": f"internal error: {type(err).__name__}"}
            print(f"serve: {request_id}: {traceback.format_exc()}", file=sys.stderr)
        finally:
            metrics.in_flight -= 1
            metrics.observe(code, time.perf_counter() - start, stages)
            self._log(request, code, start, request_id, stages)
        return JSONResponse(body, status_code=code, headers={REQUEST_ID: request_id})

    def _log(self, request: Request, code: int, start: float, request_id: str, stages) -> None:
        if self.settings.verbose:
            elapsed = (time.perf_counter() - start) * 1e3
            shown = "" if stages is None else f" images={len(stages)} exit={stages}"
            print(
                f"POST {request.url.path} {code} {elapsed:.1f}ms{shown} id={request_id}", flush=True
            )

    async def _read_images(self, request: Request) -> list[bytes]:
        """The images' bytes: multipart files, a JSON list of base64 strings (or ``{"images":
        [...]}``), or the raw body as one image."""
        length = request.headers.get("content-length")
        if length is not None and length.isdigit() and int(length) > self.max_body:
            raise HTTPException(
                413,
                f"request body of {int(length):,} bytes is over the limit of "
                f"{self.max_body:,} (--max_body)",
            )
        kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
        limit = self.settings.max_images
        if kind == "multipart/form-data":
            try:
                form = await request.form(max_files=limit, max_fields=limit + 8)
            except AnyHTTPException as err:
                if "Too many files" in str(err.detail):
                    raise HTTPException(
                        413, f"more than {limit} images in one request (--max_images)"
                    ) from None
                raise
            except Exception as err:  # noqa: BLE001 - the parser's own message, one line
                raise HTTPException(400, f"unreadable multipart body: {err}") from None
            bodies = [await part.read() for _, part in form.multi_items() if hasattr(part, "read")]
            if not bodies:
                raise HTTPException(
                    400, "the multipart body holds no file (send each image as a file part)"
                )
        elif kind == "application/json":
            bodies = self._json_images(await request.body())
        else:
            bodies = [await request.body()]
            if not bodies[0]:
                raise HTTPException(400, "empty body: send an image (png or jpeg bytes)")
        if len(bodies) > limit:
            raise HTTPException(
                413, f"{len(bodies)} images in one request, more than {limit} (--max_images)"
            )
        return bodies

    @staticmethod
    def _json_images(raw: bytes) -> list[bytes]:
        expected = 'expected a JSON list of base64-encoded images (or {"images": [...]})'
        try:
            data = json.loads(raw)
        except (ValueError, UnicodeDecodeError):
            raise HTTPException(400, f"body is not valid JSON; {expected}") from None
        if isinstance(data, dict) and set(data) == {"images"}:
            data = data["images"]
        if not isinstance(data, list) or not data or not all(isinstance(s, str) for s in data):
            raise HTTPException(400, f"unexpected JSON body; {expected}")
        images = []
        for i, text in enumerate(data):
            try:
                images.append(base64.b64decode(text, validate=True))
            except (binascii.Error, ValueError):
                raise HTTPException(
                    400, f"image {i} of the JSON list is not valid base64"
                ) from None
        return images

    def _prepare(self, bodies: list[bytes]) -> list:
        """Every image checked and prepared (in a thread of the HTTP process); the first
        refused one refuses the request, naming its position when there are several."""
        arrays = []
        for i, body in enumerate(bodies):
            try:
                arrays.append(self.settings.preparation.prepare(body))
            except RequestImageError as err:
                if len(bodies) == 1:
                    raise
                raise RequestImageError(err.status, f"image {i}: {err}") from None
        return arrays

    async def _submit(self, lit_api, payload: dict) -> dict:
        """Queue the payload for the worker and wait for its answer (the answer's slot is
        registered before the payload is queued, so no answer can come before it)."""
        uid = str(uuid.uuid4())
        event = asyncio.Event()
        self.response_buffer[uid] = ResponseBufferItem(event)
        try:
            self._get_request_queue(lit_api.api_path).put(
                (self.app.response_queue_id, uid, time.monotonic(), payload)
            )
            await event.wait()
            response, status = self.response_buffer.pop(uid).response[:2]
        finally:
            self.response_buffer.pop(uid, None)
        if status != LitAPIStatus.OK or not isinstance(response, dict):
            return error_body(500, "the inference worker failed")
        return response

    # -- lifecycle ------------------------------------------------------------------------

    def verify_worker_status(self) -> None:
        """Wait for the worker to load the cascade. A worker that fails or ends, or SIGTERM
        during the start, ends the start (the workers are stopped): ``WorkerStartError``
        or ``StoppedBeforeReady``."""
        while True:
            states = list(self.workers_setup_status.values())
            if any(v == WorkerSetupStatus.READY for v in states):
                break
            failed = any(v == WorkerSetupStatus.ERROR for v in states)
            ended = any(not p.is_alive() for p in self.inference_workers)
            if failed or ended or self.stop_requested:
                for process in self.inference_workers:
                    process.terminate()
                    process.join(timeout=10)
                if failed or ended:
                    raise WorkerStartError(
                        "the inference worker could not load the cascade"
                        if failed
                        else "the inference worker ended before it was ready"
                    )
                raise StoppedBeforeReady()
            time.sleep(0.05)
        if self.stop_requested:
            self._shutdown_event.set()

    def _start_server(
        self, port, num_uvicorn_servers, log_level, sockets, uvicorn_worker_type, **kwargs
    ):
        """LitServe's start of the HTTP process; then the main process closes its copy of the
        listening socket, so that once the HTTP process stops accepting (SIGTERM) new
        connections are refused at once instead of waiting in a backlog nobody reads, and
        says where the server listens."""
        workers = super()._start_server(
            port, num_uvicorn_servers, log_level, sockets, uvicorn_worker_type, **kwargs
        )
        if uvicorn_worker_type == "process":
            for sock in sockets:
                sock.close()
        print(self.ready_line, flush=True)
        return workers

    def request_stop(self, signum=None, frame=None) -> None:
        """SIGTERM / SIGINT in the main process: drain and stop. The shutdown event is a
        manager proxy: it is set from a thread (setting it here, inside the handler, would
        deadlock on the proxy's connection, which the interrupted main thread holds)."""
        if os.getpid() != self._main_pid:
            return
        self.stop_requested = True
        event = getattr(self, "_shutdown_event", None)
        if event is not None:
            threading.Thread(target=event.set, daemon=True).start()

    def serve(self, host: str, port: int, drain_timeout: float) -> None:
        """Run until SIGTERM or SIGINT: then stop accepting connections, answer the requests
        in flight (up to ``drain_timeout`` seconds), and end the worker."""
        self._main_pid = os.getpid()
        self.uvicorn_graceful_timeout = drain_timeout
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, self.request_stop)
        try:
            self._run(host, port)
        except StoppedBeforeReady:
            return

    def _run(self, host: str, port: int) -> None:
        self.run(
            host=host,
            port=port,
            num_api_servers=1,
            log_level="warning",
            generate_client_file=False,
            api_server_worker_type="process",
            access_log=False,
        )
