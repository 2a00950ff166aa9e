"""The HTTP service: FastAPI endpoints over one or several models, dynamic batching, limits, metrics and a page.

    app = build_app({"student": Predictor(...)}, ServiceSettings())
    uvicorn.run(app, host="127.0.0.1", port=8000)

Endpoints (described at ``/openapi.json``):
- ``POST /predict`` ``{"texts": [...]}`` (or ``"text"``; for question answering also ``"questions"``, one per text,
  the texts being the contexts; ``"model"`` names one model, else every model that can answer): per model, its
  answers (``serve.predict``) and the time the request took in it;
- ``POST /embed``: sentence vectors of the sentence encoders; ``POST /tokenize``: tokens and ids, per model;
- ``GET /health``: the models, their kinds, backends and labels; ``GET /metrics``: request counts by endpoint and
  status, batch sizes, latency percentiles, the queue;
- ``GET /``: a page to type a text and see every model's answer side by side.

Bad input gets a 4xx and one message saying what is wrong: 400 for an empty body, invalid JSON or invalid UTF-8,
413 for a body over ``max_body_bytes``, 408 for one that does not arrive within ``read_timeout``, 422 for a wrong
field (unknown, not a string, too long, too many items). A ``Host`` that is not an IP address or an allowed name is
a 400 and a request from another site's page a 403 (``HostCheck``). A full queue is a 503 with ``Retry-After`` at
once. Inference runs on one worker thread, off the event loop.
"""

from __future__ import annotations

import asyncio
import ipaddress
import statistics
import time
from collections import Counter, deque
from collections.abc import AsyncIterator, Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse
from pydantic import BaseModel, ConfigDict, StrictStr
from starlette.exceptions import HTTPException

from serve.batching import Batcher, BatchSettings, QueueFull
from serve.predict import Predictor

PAGE = Path(__file__).with_name("page.html")
LATENCY_WINDOW = 10_000  # latencies kept per endpoint for the percentiles
OTHER_ENDPOINT = "other"  # the metrics key of every request to a path or with a method the service does not serve
PREDICTING_KINDS = ("classify", "ner", "qa")


@dataclass(frozen=True)
class ServiceSettings:
    batching: BatchSettings = field(default_factory=BatchSettings)
    max_chars: int = 2000  # characters per text
    max_items: int = 64  # texts per request
    max_body_bytes: int = 1_000_000
    backend: str = "torch"  # shown by /health
    read_timeout: float = 10.0  # seconds for a request's body (its headers: serve.deadline)
    # Host names answered besides IP addresses ("*": any): a name the service was not given is most likely a DNS
    # rebinding page reaching a service on 127.0.0.1.
    allowed_hosts: tuple[str, ...] = ("localhost",)


class ServiceError(Exception):
    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.headers = status, message, headers or {}


class TextsRequest(BaseModel):
    """What /predict, /embed and /tokenize read."""

    model_config = ConfigDict(extra="forbid")

    text: StrictStr | None = None
    texts: list[StrictStr] | None = None
    questions: list[StrictStr] | None = None  # question answering: one question per text (its context)
    model: StrictStr | None = None  # a model's name (GET /health lists them); by default every model that can answer


class Metrics:
    """Counters and recent latencies, read by GET /metrics."""

    def __init__(self) -> None:
        self.requests: Counter[str] = Counter()  # "POST /predict 200"
        self.batch_sizes: Counter[int] = Counter()
        self.latencies: dict[str, deque[float]] = {}
        self.started = time.time()

    def record(self, endpoint: str, status: int, seconds: float) -> None:
        self.requests[f"{endpoint} {status}"] += 1
        self.latencies.setdefault(endpoint, deque(maxlen=LATENCY_WINDOW)).append(seconds * 1000)

    def summary(self, queued: dict[str, int]) -> dict[str, Any]:
        return {
            "uptime_s": round(time.time() - self.started, 1),
            "requests": dict(sorted(self.requests.items())),
            "batch_sizes": {str(size): count for size, count in sorted(self.batch_sizes.items())},
            "latency_ms": {endpoint: percentiles(list(values)) for endpoint, values in self.latencies.items()},
            "queued_items": queued,
        }


def check_unicode(text: str, where: str) -> None:
    """JSON may carry a lone surrogate (``"\\ud800"``), which no tokenizer takes: refused here, before the text can
    join a batch."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as err:
        raise ServiceError(
            422, f"{where} is not valid Unicode: a lone surrogate {text[err.start]!r} at character {err.start}"
        ) from None


def percentiles(values: list[float]) -> dict[str, float]:
    if len(values) < 2:
        return {"count": len(values), **{p: round(values[0], 2) if values else 0.0 for p in ("p50", "p95", "p99")}}
    cuts = statistics.quantiles(values, n=100, method="inclusive")
    return {"count": len(values), "p50": round(cuts[49], 2), "p95": round(cuts[94], 2), "p99": round(cuts[98], 2)}


def field_name(location: tuple[Any, ...]) -> str:
    """``("body", "texts", 2)`` -> ``texts[2]``."""
    parts = [str(part) for part in location if part != "body"]
    name = parts[0] if parts else "body"
    return name + "".join(f"[{part}]" for part in parts[1:])


def validation_message(errors: list[dict[str, Any]]) -> tuple[int, str]:
    """FastAPI's validation errors as one status and one sentence (the first error; the rest are similar)."""
    error = errors[0]
    kind, name = error["type"], field_name(tuple(error.get("loc", ())))
    if kind == "json_invalid":
        return 400, f"the body is not valid JSON: {error.get('ctx', {}).get('error', error['msg'])}"
    if kind == "missing" and name == "body":
        return 400, 'the body is empty: send JSON such as {"texts": ["정말 재미있어요"]}'
    if kind == "extra_forbidden":
        return 422, f"unknown field {name!r}; the fields are {', '.join(TextsRequest.model_fields)}"
    if kind in ("model_attributes_type", "dict_type"):
        return 422, 'the body must be a JSON object such as {"texts": ["정말 재미있어요"]}'
    return 422, f"{name}: {error['msg']}"


def error_response(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers=headers)


def header(scope: dict[str, Any], name: bytes) -> str | None:
    return next((value.decode("latin-1") for key, value in scope["headers"] if key == name), None)


def host_name(netloc: str) -> str:
    """``127.0.0.1:8000`` -> ``127.0.0.1``, ``[::1]:8000`` -> ``::1``, ``Example.com`` -> ``example.com``."""
    if netloc.startswith("["):
        return netloc[1 : netloc.find("]")].lower()
    return netloc.rsplit(":", 1)[0].lower() if netloc.count(":") == 1 else netloc.lower()


def is_ip_address(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


class HostCheck:
    """ASGI middleware against other web pages using the service through a visitor's browser: a ``Host`` that is
    neither an IP address nor an allowed name is a 400 (DNS rebinding needs a name), and a request whose ``Origin``
    is not the service's own a 403 (a page elsewhere may POST text/plain without asking first). Clients that are not
    browsers send no ``Origin``. Our own rather than Starlette's ``TrustedHostMiddleware``, which answers in plain
    text, not the service's one error shape, and knows no "any IP address"."""

    def __init__(self, app: Any, allowed_hosts: tuple[str, ...]) -> None:
        self.app, self.allowed = app, {name.lower() for name in allowed_hosts}

    def refusal(self, scope: dict[str, Any]) -> JSONResponse | None:
        host = header(scope, b"host") or ""
        name = host_name(host)
        if "*" not in self.allowed and name not in self.allowed and not is_ip_address(name):
            advice = f"start the service with --allowed_hosts {name}"
            return error_response(400, f"Host {host!r} is not served here: {advice}")
        origin = header(scope, b"origin")
        if origin is not None and urlsplit(origin).netloc.lower() != host.lower():
            return error_response(403, f"requests from other sites ({origin}) are refused")
        return None

    async def __call__(self, scope: dict[str, Any], receive: Callable[[], Awaitable[Any]], send: Any) -> None:
        refusal = self.refusal(scope) if scope["type"] == "http" else None
        await (refusal or self.app)(scope, receive, send)


class BodyGuard:
    """ASGI middleware: a POST body over ``max_bytes`` is a 413 before it is read whole, one that is not UTF-8 a 400,
    one that has not arrived ``timeout`` seconds after the headers a 408, all before FastAPI parses it; any other
    is read as JSON."""

    def __init__(self, app: Any, max_bytes: int, timeout: float) -> None:
        self.app, self.max_bytes, self.timeout = app, max_bytes, timeout

    async def __call__(self, scope: dict[str, Any], receive: Callable[[], Awaitable[Any]], send: Any) -> None:
        if scope["type"] != "http" or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        body = b""
        deadline = asyncio.get_running_loop().time() + self.timeout
        while True:
            try:
                message = await asyncio.wait_for(receive(), deadline - asyncio.get_running_loop().time())
            except asyncio.TimeoutError:
                too_slow = f"the body did not arrive within {self.timeout:g} s of the headers"
                await error_response(408, too_slow)(scope, receive, send)
                return
            body += message.get("body", b"")
            if len(body) > self.max_bytes:
                too_large = f"the body is over {self.max_bytes:,} bytes: send fewer or shorter texts per request"
                await error_response(413, too_large)(scope, receive, send)
                return
            if not message.get("more_body"):
                break
        try:
            body.decode("utf-8")
        except UnicodeDecodeError as err:
            await error_response(400, f"the body is not valid UTF-8 (byte {err.start}): send UTF-8 JSON")(
                scope, receive, send
            )
            return
        delivered = False

        async def replay() -> dict[str, Any]:
            nonlocal delivered
            if delivered:
                return await receive()
            delivered = True
            return {"type": "http.request", "body": body, "more_body": False}

        # Every POST body here is JSON: read it as JSON even when the client did not say so (curl -d sends a form
        # type), rather than answer that the body is not an object.
        headers = [(k, v) for k, v in scope["headers"] if k != b"content-type"]
        scope = {**scope, "headers": [*headers, (b"content-type", b"application/json")]}
        await self.app(scope, replay, send)


class Counting:
    """ASGI middleware: every HTTP request's endpoint, status and time into ``metrics``. Plain ASGI rather than
    ``@app.middleware("http")``, whose per-request task group and streams took a third of the event loop's time
    under load."""

    def __init__(self, app: Any, metrics: Metrics) -> None:
        self.app, self.metrics = app, metrics
        self.endpoints: set[str] | None = None  # the app's routes, read at the first request (all added by then)

    def endpoint(self, scope: dict[str, Any]) -> str:
        """``POST /predict``; any path or method the app does not serve shares one key, so that clients cannot grow
        the counters without bound."""
        if self.endpoints is None:
            routes = scope["app"].routes
            self.endpoints = {f"{method} {route.path}" for route in routes for method in getattr(route, "methods", ())}
        key = f"{scope['method']} {scope['path']}"
        return key if key in self.endpoints else OTHER_ENDPOINT

    async def __call__(self, scope: dict[str, Any], receive: Callable[[], Awaitable[Any]], send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start, status = time.perf_counter(), 500  # an app that fails before answering is counted as a 500

        async def send_counted(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_counted)
        finally:
            self.metrics.record(self.endpoint(scope), status, time.perf_counter() - start)


class Service:
    """The models, their batchers and the request checks behind the endpoints."""

    def __init__(self, predictors: dict[str, Predictor], settings: ServiceSettings) -> None:
        self.predictors, self.settings = predictors, settings
        self.metrics = Metrics()
        # One thread runs all inference: the models share the cores instead of fighting over them.
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="inference")
        self.batchers: dict[str, Batcher] = {}

    def start(self) -> None:
        for name, predictor in self.predictors.items():
            batcher = Batcher(predictor.predict, self.settings.batching, self.executor, self.record_batch)
            batcher.start()
            self.batchers[name] = batcher

    def record_batch(self, size: int) -> None:
        self.metrics.batch_sizes[size] += 1

    async def stop(self) -> None:
        for batcher in self.batchers.values():
            await batcher.stop()
        self.executor.shutdown(wait=False, cancel_futures=True)

    def texts(self, request: TextsRequest) -> list[str]:
        if (request.text is None) == (request.texts is None):
            raise ServiceError(422, 'give either "text" (one string) or "texts" (a list of strings)')
        texts = [request.text] if request.text is not None else list(request.texts or [])
        if not texts:
            raise ServiceError(422, '"texts" is empty: give at least one text')
        if len(texts) > self.settings.max_items:
            raise ServiceError(422, f"{len(texts)} texts; at most {self.settings.max_items} per request")
        for i, text in enumerate(texts):
            if len(text) > self.settings.max_chars:
                raise ServiceError(
                    422, f"texts[{i}] has {len(text):,} characters; at most {self.settings.max_chars:,} per text"
                )
            if not text.strip():
                raise ServiceError(422, f"texts[{i}] is empty")
            check_unicode(text, f"texts[{i}]")
        for i, question in enumerate(request.questions or []):
            check_unicode(question, f"questions[{i}]")
        return texts

    def chosen(self, request: TextsRequest, kinds: tuple[str, ...]) -> list[str]:
        """The models the request is for: the one it names, or every model of ``kinds`` that can answer it."""
        if request.model is not None:
            if request.model not in self.predictors:
                raise ServiceError(422, f"unknown model {request.model!r}; the models are {', '.join(self.predictors)}")
            if self.predictors[request.model].loaded.kind not in kinds:
                kind = self.predictors[request.model].loaded.kind
                raise ServiceError(422, f"model {request.model!r} is a {kind} model, which this endpoint does not run")
            return [request.model]
        # Questions are for the QA models; plain texts for the others.
        wanted = [kind for kind in kinds if (kind == "qa") == (request.questions is not None)]
        names = [name for name, p in self.predictors.items() if p.loaded.kind in wanted]
        if not names:
            raise ServiceError(422, f"no model here answers this: the models are {self.describe_models()}")
        return names

    def describe_models(self) -> str:
        return ", ".join(f"{name} ({p.loaded.kind})" for name, p in self.predictors.items())

    def items(self, request: TextsRequest, kind: str, texts: list[str]) -> list[Any]:
        if kind != "qa":
            return texts
        if request.questions is None or len(request.questions) != len(texts):
            raise ServiceError(422, 'question answering needs "questions": one question per text (its context)')
        return [{"question": q, "context": c} for q, c in zip(request.questions, texts, strict=True)]

    async def answer(self, request: TextsRequest, kinds: tuple[str, ...]) -> dict[str, Any]:
        texts = self.texts(request)
        names = self.chosen(request, kinds)
        # Every model's items first: a request one of them refuses starts no work in the others.
        items = {name: self.items(request, self.predictors[name].loaded.kind, texts) for name in names}
        return {"results": await asyncio.gather(*(self.timed(name, work) for name, work in items.items()))}

    async def timed(self, name: str, items: list[Any]) -> dict[str, Any]:
        start = time.perf_counter()
        try:
            answers = await self.batchers[name].submit(items)
        except QueueFull as err:
            raise ServiceError(503, f"busy: {err}; try again shortly", {"Retry-After": "1"}) from err
        predictor = self.predictors[name]
        latency = round((time.perf_counter() - start) * 1000, 2)
        return {"model": name, "kind": predictor.loaded.kind, "predictions": answers, "latency_ms": latency}

    def tokenize(self, request: TextsRequest) -> dict[str, Any]:
        texts = self.texts(request)
        names = [request.model] if request.model else list(self.predictors)
        results = []
        for name in names:
            if name not in self.predictors:
                raise ServiceError(422, f"unknown model {name!r}; the models are {', '.join(self.predictors)}")
            tokenizer = self.predictors[name].tokenizer
            limit = self.predictors[name].loaded.max_length
            encoded = tokenizer(texts, truncation=True, max_length=limit)
            tokens = [
                {"tokens": tokenizer.convert_ids_to_tokens(ids), "input_ids": ids} for ids in encoded["input_ids"]
            ]
            results.append({"model": name, "tokenized": tokens})
        return {"results": results}

    def health(self) -> dict[str, Any]:
        models = [
            {
                "name": name,
                "kind": p.loaded.kind,
                "path": p.loaded.path,
                "backend": self.settings.backend,
                "labels": p.loaded.labels,
                "max_length": p.loaded.max_length,
            }
            for name, p in self.predictors.items()
        ]
        return {"status": "ok", "models": models}


def build_app(predictors: dict[str, Predictor], settings: ServiceSettings | None = None) -> FastAPI:
    service = Service(predictors, settings or ServiceSettings())

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        service.start()
        yield
        await service.stop()

    # No /docs or /redoc: their pages load scripts from a CDN, blank offline; /openapi.json describes the API.
    app = FastAPI(
        title="DistilKoBERT service",
        summary="Korean BERT models, batched, on the CPU",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
    )
    app.state.service = service
    app.add_middleware(BodyGuard, max_bytes=service.settings.max_body_bytes, timeout=service.settings.read_timeout)
    app.add_middleware(HostCheck, allowed_hosts=service.settings.allowed_hosts)  # before a body is read
    app.add_middleware(Counting, metrics=service.metrics)  # outermost: it sees every other answer too

    @app.exception_handler(ServiceError)
    async def service_error(request: Request, err: ServiceError) -> JSONResponse:
        return error_response(err.status, err.message, err.headers)

    @app.exception_handler(HTTPException)  # 404, 405, a body FastAPI cannot parse: the service's one error shape
    async def http_error(request: Request, err: HTTPException) -> JSONResponse:
        return error_response(err.status_code, str(err.detail), dict(err.headers or {}))

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, err: RequestValidationError) -> JSONResponse:
        status, message = validation_message(list(err.errors()))
        return error_response(status, message)

    @app.post("/predict")
    async def predict(request: TextsRequest) -> dict[str, Any]:
        """Labels and probabilities (classifiers), entities (NER), answer spans (QA), per model."""
        return await service.answer(request, PREDICTING_KINDS)

    @app.post("/embed")
    async def embed(request: TextsRequest) -> dict[str, Any]:
        """Sentence vectors of the sentence encoders."""
        return await service.answer(request, ("embed",))

    @app.post("/tokenize")
    async def tokenize(request: TextsRequest) -> dict[str, Any]:
        """Each model's tokens and ids for the texts (in a worker thread: long texts must not hold the event loop)."""
        return await asyncio.to_thread(service.tokenize, request)

    def get_and_head(path: str, **options: Any) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        """A GET endpoint that answers HEAD too (one operation in /openapi.json: FastAPI would list it twice)."""

        def register(endpoint: Callable[..., Any]) -> Callable[..., Any]:
            app.add_api_route(path, endpoint, methods=["HEAD"], include_in_schema=False, **options)
            return app.get(path, **options)(endpoint)

        return register

    @get_and_head("/health")
    async def health() -> dict[str, Any]:
        return service.health()

    @get_and_head("/metrics")
    async def metrics() -> dict[str, Any]:
        return service.metrics.summary({name: b.queued_items for name, b in service.batchers.items()})

    @get_and_head("/", response_class=HTMLResponse)
    async def page() -> str:
        return PAGE.read_text(encoding="utf-8")

    return app
