"""serve.app and serve.batching: bad input answered with the right status and one message, the service staying up;
dynamic batching handing each caller its own answers; a full queue refused at once; the event loop free while a
batch runs."""

from __future__ import annotations

import ast
import asyncio
import threading
import time
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import ROOT
from fastapi.testclient import TestClient

from serve.app import BodyGuard, ServiceSettings, build_app
from serve.batching import Batcher, BatchSettings, QueueFull
from serve.models import load_model
from serve.predict import Predictor, torch_backend

pytestmark = pytest.mark.usefixtures("one_torch_thread")
REVIEWS = ["정말 재미있어요", "배우들 연기가 최고! 스토리는 좀 아쉽지만", "별로", "시간 아까움 ㅡㅡ", "또 보고 싶다"]
LIMITS = ServiceSettings(max_chars=100, max_items=4, max_body_bytes=2000)


@pytest.fixture(scope="module")
def predictors(served_models: dict[str, Path]) -> dict[str, Predictor]:
    chosen = {"bert": "bert-classify", "lstm": "bilstm-classify", "ner": "distilbert-ner", "qa": "bert-qa"}
    chosen["embedder"] = "sentence-mean"
    predictors = {}
    for name, folder in chosen.items():
        loaded = load_model(str(served_models[folder]))
        predictors[name] = Predictor(loaded, torch_backend(loaded))
    return predictors


@pytest.fixture(scope="module")
def client(predictors: dict[str, Predictor]) -> Iterator[TestClient]:
    with TestClient(build_app(predictors, LIMITS), base_url="http://localhost") as client:
        yield client


BAD_INPUTS = [
    # (what a client sends, status, words of the message)
    ({"content": b""}, 400, "the body is empty"),
    ({"content": b'{"texts": ["a"'}, 400, "not valid JSON"),
    ({"content": '{"texts": ["좋아"]}'.encode("cp949")}, 400, "not valid UTF-8"),
    ({"content": b'{"texts": ["' + b"x" * 3000 + b'"]}'}, 413, "over 2,000 bytes"),
    ({"json": ["정말 재미있어요"]}, 422, "must be a JSON object"),
    ({"json": {"texts": [3]}}, 422, "texts[0]: Input should be a valid string"),
    ({"json": {"text": None}}, 422, 'give either "text"'),
    ({"json": {"text": "좋아", "texts": ["좋아"]}}, 422, 'give either "text"'),
    ({"json": {"texts": []}}, 422, '"texts" is empty'),
    ({"json": {"texts": ["좋아", "  "]}}, 422, "texts[1] is empty"),
    ({"json": {"texts": ["가" * 101]}}, 422, "texts[0] has 101 characters; at most 100"),
    ({"json": {"texts": ["좋아"] * 5}}, 422, "5 texts; at most 4"),
    ({"json": {"texts": ["좋아"], "txt": 1}}, 422, "unknown field 'txt'"),
    ({"json": {"texts": ["좋아"], "model": "gpt"}}, 422, "unknown model 'gpt'"),
    ({"json": {"texts": ["좋아"], "model": "embedder"}}, 422, "is a embed model"),
    ({"json": {"texts": ["좋아"], "model": "qa"}}, 422, 'needs "questions"'),
    ({"content": b'{"texts": ["ok", "a\\ud800b"]}'}, 422, "texts[1] is not valid Unicode: a lone surrogate"),
    ({"content": b'{"texts": ["ctx"], "questions": ["\\udfff"]}'}, 422, "questions[0] is not valid Unicode"),
]


@pytest.mark.parametrize(("request_kwargs", "status", "message"), BAD_INPUTS)
def test_bad_input_gets_its_status_and_one_message_and_the_service_stays_up(
    client: TestClient, request_kwargs: dict[str, Any], status: int, message: str
) -> None:
    response = client.post("/predict", **request_kwargs)
    assert response.status_code == status
    assert message in response.json()["error"]
    assert client.post("/predict", json={"text": "정말 재미있어요", "model": "bert"}).status_code == 200


def test_answers_of_every_kind(client: TestClient, predictors: dict[str, Predictor]) -> None:
    answer = client.post("/predict", json={"texts": REVIEWS[:2]}).json()["results"]
    assert [r["model"] for r in answer] == ["bert", "lstm", "ner"]  # QA needs questions, the encoder is /embed's
    for result in answer:
        assert result["predictions"] == predictors[result["model"]].predict(REVIEWS[:2])
        assert result["latency_ms"] > 0
    bert = answer[0]["predictions"][0]
    assert bert["label"] in ("negative", "positive") and sum(bert["probabilities"].values()) == pytest.approx(1.0)
    qa = client.post("/predict", json={"texts": ["서울은 한국의 수도다"], "questions": ["수도는?"]}).json()
    assert qa["results"][0]["model"] == "qa"
    span = qa["results"][0]["predictions"][0]
    assert "서울은 한국의 수도다"[span["start"] : span["end"]] == span["answer"]
    vectors = client.post("/embed", json={"text": "좋아요"}).json()["results"][0]["predictions"]
    assert len(vectors) == 1 and len(vectors[0]) == 32
    tokens = client.post("/tokenize", json={"text": "좋아요", "model": "bert"}).json()["results"][0]["tokenized"]
    assert tokens == [{"tokens": ["[CLS]", "▁좋아", "요", "[SEP]"], "input_ids": [2, 4207, 6999, 3]}]


def test_health_metrics_and_page(client: TestClient) -> None:
    health = client.get("/health").json()
    assert health["status"] == "ok"
    assert {m["name"]: m["kind"] for m in health["models"]} == {
        "bert": "classify",
        "lstm": "classify",
        "ner": "ner",
        "qa": "qa",
        "embedder": "embed",
    }
    client.post("/predict", json={"text": "좋아"})
    client.post("/predict", content=b"x" * 3000)  # refused by BodyGuard, before FastAPI: counted all the same
    client.post("/tokenize", json={"texts": []})
    metrics = client.get("/metrics").json()
    counts = metrics["requests"]
    assert counts["POST /predict 200"] >= 1 and counts["POST /predict 413"] >= 1 and counts["POST /tokenize 422"] >= 1
    assert counts["GET /health 200"] >= 1
    assert metrics["latency_ms"]["POST /predict"]["p50"] > 0 and metrics["batch_sizes"]
    # Unknown paths and methods share one key: clients cannot grow /metrics without bound.
    for i in range(50):
        client.get(f"/nowhere/{i}")
    client.request("PURGE", "/predict")
    counts = client.get("/metrics").json()["requests"]
    assert counts["other 404"] >= 50 and counts["other 405"] >= 1
    assert client.get("/nowhere").json() == {"error": "Not Found"}  # the service's one error shape
    assert not [key for key in counts if "nowhere" in key or "PURGE" in key]
    page = client.get("/")
    assert page.status_code == 200 and 'id="text"' in page.text and "http" not in page.text.split("<script>")[0]
    assert client.get("/docs").status_code == 404  # its page loads scripts from a CDN: blank offline
    assert "/predict" in client.get("/openapi.json").json()["paths"]
    for path in ("/health", "/metrics", "/"):
        head = client.head(path)
        assert head.status_code == 200 and head.content == b""


HOSTS = [
    # (Host, allowed names, status): IP addresses and allowed names pass, a port or brackets changing nothing
    ("localhost", ("localhost",), 200),
    ("LOCALHOST:8000", ("localhost",), 200),
    ("127.0.0.1:8000", ("localhost",), 200),
    ("[::1]:8000", ("localhost",), 200),
    ("10.1.2.3", ("localhost",), 200),
    ("rebind.attacker.example", ("localhost",), 400),
    ("rebind.attacker.example:8000", ("localhost",), 400),
    ("", ("localhost",), 400),
    ("models.internal:8000", ("localhost", "models.internal"), 200),
    ("anything.example", ("*",), 200),
]


@pytest.mark.parametrize(("host", "allowed", "status"), HOSTS)
def test_a_host_name_not_given_to_the_service_is_refused(
    predictors: dict[str, Predictor], host: str, allowed: tuple[str, ...], status: int
) -> None:
    with TestClient(build_app({"bert": predictors["bert"]}, ServiceSettings(allowed_hosts=allowed))) as client:
        response = client.get("/health", headers={"host": host})
    assert response.status_code == status
    if status == 400:
        assert "is not served here: start the service with --allowed_hosts" in response.json()["error"]


def test_a_request_from_another_sites_page_is_refused_before_it_runs(client: TestClient) -> None:
    batches = len(client.get("/metrics").json()["batch_sizes"])
    other_site = {"origin": "http://attacker.example", "content-type": "text/plain"}
    refused = client.post("/predict", content='{"text": "좋아"}', headers=other_site)
    assert refused.status_code == 403 and "other sites (http://attacker.example)" in refused.json()["error"]
    assert client.post("/predict", json={"text": "좋아"}, headers={"origin": "null"}).status_code == 403
    assert len(client.get("/metrics").json()["batch_sizes"]) == batches  # no model ran for them
    # The service's own page, and clients that are not browsers (no Origin), are answered.
    assert client.post("/predict", json={"text": "좋아"}, headers={"origin": "http://localhost"}).status_code == 200
    assert client.post("/predict", content='{"text": "좋아"}', headers={"content-type": "text/plain"}).is_success


def test_a_body_that_does_not_arrive_in_time_is_a_408() -> None:
    async def scenario() -> list[dict[str, Any]]:
        async def never_finished() -> dict[str, Any]:
            if not started:
                started.append(True)
                return {"type": "http.request", "body": b'{"te', "more_body": True}
            await asyncio.sleep(60)
            raise AssertionError("the deadline should have passed")

        async def app(scope: Any, receive: Any, send: Any) -> None:
            raise AssertionError("a late body must not reach the app")

        started: list[bool] = []
        sent: list[dict[str, Any]] = []

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)

        scope = {"type": "http", "method": "POST", "path": "/predict", "headers": []}
        await asyncio.wait_for(BodyGuard(app, max_bytes=1000, timeout=0.2)(scope, never_finished, send), 5)
        return sent

    sent = asyncio.run(scenario())
    assert sent[0]["status"] == 408
    assert b"the body did not arrive within 0.2 s of the headers" in sent[1]["body"]


@asynccontextmanager
async def served(app: Any) -> AsyncIterator[httpx.AsyncClient]:
    """A client of ``app`` running (its lifespan: the batchers), in this event loop."""
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://localhost") as http:
            yield http


async def submit_together(app: Any, texts: list[str]) -> list[httpx.Response]:
    async with served(app) as http:
        requests = [http.post("/predict", json={"text": text, "model": "bert"}) for text in texts]
        return await asyncio.gather(*requests)


def test_batching_returns_each_caller_its_own_answer(predictors: dict[str, Predictor]) -> None:
    settings = ServiceSettings(batching=BatchSettings(max_batch=8, max_wait_ms=200))
    app = build_app({"bert": predictors["bert"]}, settings)
    responses = asyncio.run(submit_together(app, REVIEWS))
    expected = predictors["bert"].predict(REVIEWS)
    assert [r.json()["results"][0]["predictions"][0] for r in responses] == expected
    assert app.state.service.metrics.batch_sizes == {len(REVIEWS): 1}  # one batch of all five


class Gate:
    """A run function that blocks until released: a batch that takes as long as the test wants."""

    def __init__(self) -> None:
        self.entered, self.release = threading.Event(), threading.Event()

    def __call__(self, items: list[str]) -> list[str]:
        self.entered.set()
        self.release.wait(10)
        return [item.upper() for item in items]


def test_a_full_queue_refuses_at_once_and_the_loop_stays_free() -> None:
    async def scenario() -> None:
        gate = Gate()
        batcher = Batcher(gate, BatchSettings(max_batch=2, max_wait_ms=0, max_queue=3), ThreadPoolExecutor(1))
        batcher.start()
        running = asyncio.ensure_future(batcher.submit(["a", "b"]))  # runs, blocked in the gate
        await asyncio.get_running_loop().run_in_executor(None, gate.entered.wait, 5)
        waiting = asyncio.ensure_future(batcher.submit(["c", "d", "e"]))  # fills the queue
        await asyncio.sleep(0.01)
        with pytest.raises(QueueFull, match="the queue holds 3"):
            await asyncio.wait_for(batcher.submit(["f"]), 0.5)  # refused at once, not after the gate opens
        gate.release.set()
        assert await running == ["A", "B"]
        assert await waiting == ["C", "D", "E"]  # more than max_batch in one request: a batch of its own
        assert await batcher.submit(["g"]) == ["G"]
        await batcher.stop()

    asyncio.run(scenario())


def test_requests_that_waited_through_a_batch_start_the_moment_it_ends() -> None:
    """The wait for a batch to fill counts from the first request's arrival: one that arrived while the previous
    batch ran, and has waited longer than ``max_wait_ms`` by then, runs at once rather than waiting again."""

    async def scenario() -> None:
        gate = Gate()
        batcher = Batcher(gate, BatchSettings(max_batch=2, max_wait_ms=600), ThreadPoolExecutor(1))
        batcher.start()
        running = asyncio.ensure_future(batcher.submit(["a", "b"]))  # a full batch: runs at once, held in the gate
        await asyncio.get_running_loop().run_in_executor(None, gate.entered.wait, 5)
        gate.entered.clear()
        waiting = asyncio.ensure_future(batcher.submit(["c"]))
        await asyncio.sleep(0.65)  # "c" has now waited longer than max_wait_ms
        released = time.monotonic()
        gate.release.set()
        assert await running == ["A", "B"]
        await asyncio.get_running_loop().run_in_executor(None, gate.entered.wait, 5)
        assert time.monotonic() - released < 0.3  # not another 0.6 s
        assert await waiting == ["C"]
        await batcher.stop()

    asyncio.run(scenario())


def test_a_full_queue_is_a_503_and_health_answers_while_a_batch_runs(predictors: dict[str, Predictor]) -> None:
    gate = Gate()

    class GatedPredictor:
        loaded, tokenizer = predictors["bert"].loaded, predictors["bert"].tokenizer

        def predict(self, items: list[str]) -> list[str]:
            return gate(items)

    settings = ServiceSettings(batching=BatchSettings(max_batch=1, max_wait_ms=0, max_queue=1))
    app = build_app({"bert": GatedPredictor()}, settings)  # type: ignore[dict-item]

    async def scenario() -> None:
        async with served(app) as http:
            first = asyncio.ensure_future(http.post("/predict", json={"text": "하나"}))
            await asyncio.get_running_loop().run_in_executor(None, gate.entered.wait, 5)
            second = asyncio.ensure_future(http.post("/predict", json={"text": "둘"}))  # waits in the queue
            await asyncio.sleep(0.05)
            third = await asyncio.wait_for(http.post("/predict", json={"text": "셋"}), 2)
            assert third.status_code == 503 and third.headers["retry-after"] == "1"
            assert "busy" in third.json()["error"]
            health = await asyncio.wait_for(http.get("/health"), 2)  # the event loop is not blocked
            assert health.status_code == 200
            gate.release.set()
            assert (await first).json()["results"][0]["predictions"] == ["하나"]
            assert (await second).json()["results"][0]["predictions"] == ["둘"]

    asyncio.run(scenario())


def test_without_batching_every_request_runs_alone() -> None:
    async def scenario() -> dict[int, int]:
        sizes: dict[int, int] = {}

        def record(size: int) -> None:
            sizes[size] = sizes.get(size, 0) + 1

        batcher = Batcher(lambda items: items, BatchSettings(enabled=False), ThreadPoolExecutor(1), record)
        batcher.start()
        answers = await asyncio.gather(*(batcher.submit([str(i)] * (1 + i % 2)) for i in range(6)))
        assert answers == [[str(i)] * (1 + i % 2) for i in range(6)]
        await batcher.stop()
        return sizes

    assert asyncio.run(scenario()) == {1: 3, 2: 3}


def test_a_failing_request_fails_alone() -> None:
    async def scenario() -> None:
        def run(items: list[str]) -> list[str]:
            if "bad" in items:
                raise RuntimeError("the model failed")
            return items

        batcher = Batcher(run, BatchSettings(max_wait_ms=0), ThreadPoolExecutor(1))
        batcher.start()
        with pytest.raises(RuntimeError, match="the model failed"):
            await batcher.submit(["bad"])
        assert await batcher.submit(["good"]) == ["good"]
        # Batched with a bad request, the good ones still get their answers.
        requests = [batcher.submit([text]) for text in ["one", "bad", "two", "three"]]
        answers = await asyncio.gather(*requests, return_exceptions=True)
        assert answers[0] == ["one"] and answers[2:] == [["two"], ["three"]]
        assert isinstance(answers[1], RuntimeError)
        await batcher.stop()

    asyncio.run(scenario())


def test_tokenize_runs_off_the_event_loop(predictors: dict[str, Predictor]) -> None:
    app = build_app({"bert": predictors["bert"]}, ServiceSettings())
    service, gate = app.state.service, Gate()
    tokenize = service.tokenize
    service.tokenize = lambda request: (gate([]), tokenize(request))[1]  # held in the gate until released

    async def scenario() -> None:
        async with served(app) as http:
            tokenizing = asyncio.ensure_future(http.post("/tokenize", json={"text": "정말 재미있어요"}))
            await asyncio.get_running_loop().run_in_executor(None, gate.entered.wait, 5)
            health = await asyncio.wait_for(http.get("/health"), 2)  # answered while tokenize works
            assert health.status_code == 200
            gate.release.set()
            assert (await tokenizing).json()["results"][0]["tokenized"][0]["tokens"][0] == "[CLS]"

    asyncio.run(scenario())


def test_the_service_imports_no_training_code() -> None:
    # The answer rules it shares with training (NER word tags, QA spans, the KorQuAD metric) live in common/: the
    # service once imported finetune.korquad for them, inside a function, and with it the trainer and accelerate.
    training = {"finetune", "distill", "pretrain", "reproduce", "hub_upload"}
    imported = set()
    for path in (ROOT / "serve").glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module:
                imported.add((path.name, node.module))
            elif isinstance(node, ast.Import):
                imported |= {(path.name, alias.name) for alias in node.names}
    assert not [(file, module) for file, module in imported if module.split(".")[0] in training]
