"""A bounded load test of the HTTP service on localhost: requests/s and latency with dynamic batching on and off,
then a burst beyond the queue bound (how many 503s, and whether the service still answers).

    python -m benchmarks.serve_load
    python -m benchmarks.serve_load --model_name_or_path runs/mini/nsmc/distilled/best --backend onnx --clients 16

The service runs as it is deployed, ``python -m serve`` in a subprocess, started three times: batching on, batching
off (``--no_batching``), and batching on with a small ``--max_queue`` for the burst. The two modes take turns for
``--rounds`` rounds (on then off, then off then on, ...), each on its own server, as neighbours on a shared machine
change its speed from minute to minute: each mode's requests/s is the median over its rounds, the speed-up is the
ratio of the medians (each round's is kept too), latencies are over all its rounds' requests.

Without ``--model_name_or_path`` the model is a classifier of DistilKoBERT's shape (3 layers, hidden 768, 12 heads,
FFN 3072, 8,002 tokens) with random weights and the real KoBERT tokenizer (``data/kobert``): speed depends on the
shape only. Each request is one real review of the bundled NSMC test file. ``--clients`` asyncio clients send
``--requests`` requests in all, each client one after another; a round stops at ``--time_limit`` seconds (reported
as cut short).
requests/s counts the 200s over the wall time; p50 and p99 are the clients' latencies of the 200s; errors are any
other status or a failed request; the mean batch comes from the service's ``GET /metrics``. The burst:
``--overload_requests`` (4 x clients) requests at once against a server holding ``--overload_queue`` texts, counting
200s and 503s, then whether ``GET /health`` still answers. An ONNX backend's graph is exported before the servers
start (random weights: the int8 check lets any drop pass). The clients share the machine's cores with the service:
run it on a quiet machine.
"""

from __future__ import annotations

import asyncio
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Awaitable, Callable
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import aiohttp

from benchmarks.report import write_report
from common.config import key, run_command
from common.readers import read_nsmc

# torch, transformers and serve.export are imported where a model is built or exported: --help answers at once.

ROOT = Path(__file__).resolve().parent.parent
REVIEWS = ROOT / "data" / "nsmc_test.txt.gz"
KOBERT_TOKENIZER = {
    "vocab_file": str(ROOT / "data" / "kobert" / "tokenizer_78b3253a26.model"),
    "vocab_txt": str(ROOT / "data" / "kobert" / "vocab.txt"),
}
DISTILKOBERT_3 = {
    "vocab_size": 8002,
    "pad_token_id": 1,
    "dim": 768,
    "n_layers": 3,
    "n_heads": 12,
    "hidden_dim": 3072,
    "max_position_embeddings": 512,
}
SENTIMENT = {"id2label": {0: "negative", 1: "positive"}, "label2id": {"negative": 0, "positive": 1}}
MODES = ("batching on", "batching off")
SERVICE_QUEUE = 256  # the service's default --max_queue, for the two measured runs
REQUEST_TIMEOUT = 60.0  # seconds; far above any latency here, so a timeout is an error worth counting
STOP_TIMEOUT = 10.0  # seconds a server has to exit after SIGTERM before it is killed


@dataclass(kw_only=True)
class ServeLoadOptions:
    """What ``python -m benchmarks.serve_load`` reads."""

    model_name_or_path: str = key("", "A classifier folder this project wrote (default: random DistilKoBERT-3).")
    backend: Literal["torch", "onnx", "onnx-int8"] = key("onnx-int8", "What runs the model in the service.")
    clients: int = key(32, "Concurrent clients.")
    requests: int = key(640, "Requests per mode and round, one review each.")
    rounds: int = key(3, "Rounds of both modes, taking turns.")
    time_limit: float = key(120.0, "Seconds per round before it is stopped.")
    threads: int = key(os.cpu_count() or 1, "The service's inference threads.")
    max_batch_size: int = key(32, "The service's texts per batch.")
    max_wait_ms: float = key(5.0, "The service's wait for a batch to fill.")
    overload_queue: int = key(8, "The service's --max_queue in the burst.")
    overload_requests: int | None = key(None, "Requests sent at once (default 4 x clients).")
    startup_timeout: float = key(300.0, "Seconds a server has to answer /health.")
    output_file: str = key(str(ROOT / "benchmarks" / "results" / "serve_load.json"), "The figures, as JSON.")

    def validate(self) -> None:
        counts = ("clients", "requests", "rounds", "threads", "max_batch_size", "overload_queue", "overload_requests")
        for name in counts:
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ValueError(f"--{name} must be at least 1, got {value}")
        if self.time_limit <= 0 or self.max_wait_ms < 0:
            raise ValueError("--time_limit must be positive and --max_wait_ms not negative")
        if self.model_name_or_path and not os.path.isdir(self.model_name_or_path):
            raise ValueError(f"--model_name_or_path {self.model_name_or_path!r} is not a folder")

    def burst_size(self) -> int:
        """Requests sent at once in the burst."""
        return self.overload_requests or 4 * self.clients


# The model


def build_classifier(folder: Path, shape: dict[str, int]) -> None:
    """A random DistilBERT sentiment classifier of ``shape`` saved with the real KoBERT tokenizer."""
    import torch
    from transformers import DistilBertConfig, DistilBertForSequenceClassification

    from common.io import quiet_file_progress_bars
    from tokenization_kobert import KoBertTokenizerFast

    quiet_file_progress_bars()  # a bar for a second of saving is noise
    torch.manual_seed(0)
    model = DistilBertForSequenceClassification(DistilBertConfig(**shape, **SENTIMENT))
    model.eval().save_pretrained(folder)
    KoBertTokenizerFast(**KOBERT_TOKENIZER).save_pretrained(folder)


def prepare_model(args: ServeLoadOptions, workspace: Path) -> tuple[Path, str]:
    """The model folder to serve, its ONNX graph written if the backend needs it, and a description of it."""
    # The servers' too (server_command reads it): the graph is exported once, before them.
    args.onnx_cache = str(workspace / "onnx-cache")
    if args.model_name_or_path:
        folder, description = Path(args.model_name_or_path), args.model_name_or_path
    else:
        folder = workspace / "distilkobert-3-random"
        build_classifier(folder, DISTILKOBERT_3)
        description = (
            "random DistilKoBERT classifier (3 layers, hidden 768, 12 heads, FFN 3072, 8,002 tokens), KoBERT tokenizer"
        )
    if args.backend != "torch":
        export_graph(folder, args.backend == "onnx-int8", not args.model_name_or_path, args.onnx_cache)
    return folder, f"{description} ({args.backend})"


def export_graph(folder: Path, int8: bool, random_weights: bool, cache: str) -> None:
    """The folder's ONNX graph, written here once rather than by each of the three servers on start-up (all into
    the same folder at the same time)."""
    from serve.export import ExportArguments, ensure_exported, export

    if not random_weights:
        ensure_exported(str(folder), int8, cache)  # as the service would: checked, once, into its cache
        return
    # Random weights have no accuracy for int8 to keep: a few examples and any drop pass the check.
    check = {"int8": True, "check_examples": 32, "max_metric_drop": 100} if int8 else {}
    export(ExportArguments(model_name_or_path=str(folder), output_dir=str(folder), **check))


def review_texts(count: int) -> list[str]:
    """The first ``count`` non-empty reviews of the bundled NSMC test file (the service refuses empty texts)."""
    texts = [r["document"] for r in read_nsmc(str(REVIEWS), "test") if r["document"].strip()]
    return texts[:count]


# The server


@dataclass
class Server:
    name: str
    process: subprocess.Popen[bytes]
    url: str
    log: Path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def server_command(folder: Path, args: ServeLoadOptions, port: int, batching: bool, queue: int) -> list[str]:
    command = [sys.executable, "-m", "serve", "--model_name_or_path", str(folder), "--backend", args.backend]
    command += ["--port", str(port), "--threads", str(args.threads), "--max_batch_size", str(args.max_batch_size)]
    command += ["--max_wait_ms", str(args.max_wait_ms), "--max_queue", str(queue)]
    command += ["--onnx_cache_dir", args.onnx_cache]
    return command + ([] if batching else ["--no_batching"])


def start_server(name: str, command: list[str], port: int, log: Path) -> Server:
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    with log.open("wb") as out:  # the child keeps its own handle
        process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    return Server(name, process, f"http://127.0.0.1:{port}", log)


def stop_server(server: Server) -> None:
    if server.process.poll() is not None:
        return
    server.process.terminate()
    try:
        server.process.wait(STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        server.process.kill()
        server.process.wait()


def log_tail(server: Server, lines: int = 20) -> str:
    return "\n".join(server.log.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:])


def wait_healthy(server: Server, timeout: float) -> None:
    """Return once ``GET /health`` answers 200; RuntimeError, with the server's last output, if it exits first or
    the time runs out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"the {server.name} server exited ({server.process.returncode}):\n{log_tail(server)}")
        try:
            with urllib.request.urlopen(f"{server.url}/health", timeout=2.0) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError):
            pass  # not listening yet
        time.sleep(0.2)
    raise RuntimeError(f"the {server.name} server did not answer /health in {timeout:.0f} s:\n{log_tail(server)}")


# The clients


@dataclass
class Outcome:
    status: int | None  # None: the request failed (connection, timeout)
    seconds: float


async def send(client: aiohttp.ClientSession, text: str) -> Outcome:
    start = time.perf_counter()
    try:
        async with client.post("/predict", json={"texts": [text]}) as response:
            await response.read()
            status: int | None = response.status
    except (aiohttp.ClientError, asyncio.TimeoutError):  # the builtin TimeoutError only from Python 3.11
        status = None
    return Outcome(status, time.perf_counter() - start)


def pooled_client(url: str, connections: int) -> aiohttp.ClientSession:
    """The clients' connections, kept open. aiohttp rather than httpx: measured against this service, httpx's
    client took 8.3 ms of CPU per request and aiohttp's 0.5 ms, CPU the clients take from the service they share
    the machine with."""
    connector = aiohttp.TCPConnector(limit=connections)
    return aiohttp.ClientSession(url, connector=connector, timeout=aiohttp.ClientTimeout(total=REQUEST_TIMEOUT))


async def batch_sizes(client: aiohttp.ClientSession) -> Counter[int]:
    async with client.get("/metrics") as response:
        sizes = (await response.json())["batch_sizes"]
    return Counter({int(size): count for size, count in sizes.items()})


async def closed_loop(
    send_one: Callable[[str], Awaitable[Outcome]], texts: list[str], clients: int, total: int, limit: float
) -> dict:
    """``clients`` clients each sending one request (``send_one(text)``) after another until ``total`` are sent or
    ``limit`` seconds pass; the outcomes, the wall time and whether the limit cut the run short."""
    numbers = iter(range(total))  # shared: each client takes the next request's number (one event loop, no lock)
    outcomes: list[Outcome] = []

    async def one_client() -> None:
        for number in numbers:
            outcomes.append(await send_one(texts[number % len(texts)]))

    start = time.perf_counter()
    tasks = [asyncio.create_task(one_client()) for _ in range(clients)]
    _, pending = await asyncio.wait(tasks, timeout=limit)
    for task in pending:  # requests in flight at the limit are dropped, not counted
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)
    return {"outcomes": outcomes, "wall_s": time.perf_counter() - start, "cut_short": bool(pending)}


async def measure_round(url: str, texts: list[str], args: ServeLoadOptions) -> dict[str, Any]:
    """One round of one mode: ``closed_loop``'s run and the batch sizes the service ran during it."""
    async with pooled_client(url, args.clients) as client:
        # One request per client first: opens the connections and runs the model's first calls (ONNX Runtime
        # allocates on them), neither of which should count.
        await asyncio.gather(*(send(client, text) for text in texts[: args.clients]))
        before = await batch_sizes(client)
        run = await closed_loop(lambda text: send(client, text), texts, args.clients, args.requests, args.time_limit)
        run["batches"] = await batch_sizes(client) - before
    return run


def percentile_ms(values: list[float], q: int) -> float | None:
    """The ``q``-th percentile, rounded; None without values (JSON has no NaN)."""
    if len(values) < 2:
        return round(values[0], 1) if values else None
    return round(statistics.quantiles(values, n=100, method="inclusive")[q - 1], 1)


def requests_per_s(run: dict) -> float:
    return sum(o.status == 200 for o in run["outcomes"]) / run["wall_s"]


def load_figures(runs: list[dict], clients: int) -> dict[str, Any]:
    """One mode's figures over its rounds (``measure_round``'s runs): the median round's requests/s, latencies and
    counts over all of them."""
    outcomes = [outcome for run in runs for outcome in run["outcomes"]]
    ok = [o.seconds * 1000 for o in outcomes if o.status == 200]
    batches: Counter[int] = sum((run["batches"] for run in runs), Counter())
    batched = sum(batches.values())
    return {
        "clients": clients,
        "rounds": len(runs),
        "requests": len(outcomes),
        "cut_short": any(run["cut_short"] for run in runs),
        "wall_s": round(sum(run["wall_s"] for run in runs), 2),
        "requests_per_s": round(statistics.median(requests_per_s(run) for run in runs), 1),
        "rounds_requests_per_s": [round(requests_per_s(run), 1) for run in runs],
        "p50_ms": percentile_ms(ok, 50),
        "p99_ms": percentile_ms(ok, 99),
        "errors": len(outcomes) - len(ok),
        "statuses": dict(Counter(str(o.status) for o in outcomes)),
        "mean_batch": round(sum(size * count for size, count in batches.items()) / batched, 2) if batched else 0.0,
        "batch_sizes": {str(size): count for size, count in sorted(batches.items())},
    }


async def healthy(client: aiohttp.ClientSession) -> bool:
    try:
        async with client.get("/health") as response:
            return response.status == 200
    except (aiohttp.ClientError, asyncio.TimeoutError):
        return False


async def burst(url: str, texts: list[str], count: int) -> dict[str, Any]:
    """``count`` requests at once, then whether the service still answers /health."""
    async with pooled_client(url, count) as client:
        # Connections opened first, so the burst's requests arrive together rather than one TCP handshake apart.
        await asyncio.gather(*(healthy(client) for _ in range(count)))
        outcomes = await asyncio.gather(*(send(client, texts[i % len(texts)]) for i in range(count)))
        alive = await healthy(client)
    statuses = Counter(o.status for o in outcomes)
    return {
        "sent": count,
        "ok": statuses[200],
        "refused_503": statuses[503],
        "other": count - statuses[200] - statuses[503],
        "alive": alive,
    }


# The benchmark


def load_queue(args: ServeLoadOptions) -> int:
    """The measured runs' --max_queue: room for every client's request, so that none is ever refused."""
    return max(SERVICE_QUEUE, args.clients)


def start_servers(folder: Path, args: ServeLoadOptions, workspace: Path, stack: ExitStack) -> dict[str, Server]:
    """The three servers, up and answering; ``stack`` stops them whatever happens."""
    plans = {"batching on": (True, load_queue(args)), "batching off": (False, load_queue(args))}
    plans["overload"] = (True, args.overload_queue)
    servers = {}
    # All three start together (start-up, mostly imports, is the slow part) and are used one at a time; a server
    # that is up and idle waits on its socket and takes no CPU.
    for name, (batching, queue) in plans.items():
        port = free_port()
        log = workspace / f"{name.replace(' ', '-')}.log"
        servers[name] = start_server(name, server_command(folder, args, port, batching, queue), port, log)
        stack.callback(stop_server, servers[name])
    for server in servers.values():  # all up before any is measured: one still starting would take CPU
        wait_healthy(server, args.startup_timeout)
    return servers


def turns(rounds: int) -> list[str]:
    """The modes' order, round by round: on, off, off, on, on, off, ... (neither always goes first)."""
    modes = list(MODES)
    return [mode for round_ in range(rounds) for mode in (modes if round_ % 2 == 0 else modes[::-1])]


def run_benchmark(args: ServeLoadOptions) -> dict[str, Any]:
    """Both modes measured in turns and the burst sent, each on its own server; the figures and the settings.
    RuntimeError, with its last output, for a server that does not start."""
    args.validate()
    with tempfile.TemporaryDirectory() as workspace, ExitStack() as stack:
        folder, description = prepare_model(args, Path(workspace))
        texts = review_texts(max(args.requests, args.burst_size()))
        servers = start_servers(folder, args, Path(workspace), stack)
        runs: dict[str, list[dict]] = {mode: [] for mode in MODES}
        for mode in turns(args.rounds):
            runs[mode].append(asyncio.run(measure_round(servers[mode].url, texts, args)))
        for mode in MODES:
            stop_server(servers[mode])
        overload = asyncio.run(burst(servers["overload"].url, texts, args.burst_size()))
        overload["alive"] = overload["alive"] and servers["overload"].process.poll() is None
    results = [{"mode": mode, **load_figures(runs[mode], args.clients)} for mode in MODES]
    on, off = results[0]["requests_per_s"], results[1]["requests_per_s"]
    rounds = zip(results[0]["rounds_requests_per_s"], results[1]["rounds_requests_per_s"], strict=True)
    return {
        "settings": {
            "model": description,
            "backend": args.backend,
            "clients": args.clients,
            "requests": args.requests,
            "rounds": args.rounds,
            "time_limit_s": args.time_limit,
            "threads": args.threads,
            "max_batch_size": args.max_batch_size,
            "max_wait_ms": args.max_wait_ms,
            "max_queue": load_queue(args),
            "texts": f"{os.path.relpath(REVIEWS, ROOT)}, one review per request",
        },
        "results": results,
        "batching_speedup": round(on / off, 2) if off else None,
        "rounds_speedup": [round(a / b, 2) if b else None for a, b in rounds],
        "overload": {"max_queue": args.overload_queue, **overload},
    }


def print_figures(figures: dict[str, Any]) -> None:
    settings = figures["settings"]
    print(
        f"{settings['model']}; {settings['threads']} inference threads, batches of at most "
        f"{settings['max_batch_size']}, waiting at most {settings['max_wait_ms']} ms"
    )
    print("| mode | clients | requests | requests/s (median) | each round | p50 ms | p99 ms | errors | mean batch |")
    print("|---|---:|---:|---:|---|---:|---:|---:|---:|")
    for row in figures["results"]:
        mode = row["mode"] + (f" (a round cut short at {settings['time_limit_s']:g} s)" if row["cut_short"] else "")
        each = ", ".join(str(value) for value in row["rounds_requests_per_s"])
        print(
            f"| {mode} | {row['clients']} | {row['requests']} | {row['requests_per_s']} | {each} | {row['p50_ms']} | "
            f"{row['p99_ms']} | {row['errors']} | {row['mean_batch']} |"
        )
    each = ", ".join(f"{value}x" for value in figures["rounds_speedup"])
    print(f"batching on / off: {figures['batching_speedup']}x requests/s (medians; round by round: {each})")
    burst_figures = figures["overload"]
    print(
        f"overload (batching on, --max_queue {burst_figures['max_queue']}): sent {burst_figures['sent']} at once, "
        f"200: {burst_figures['ok']}, 503: {burst_figures['refused_503']}, other: {burst_figures['other']}, "
        f"alive: {str(burst_figures['alive']).lower()}"
    )


def measure_serve_load(options: ServeLoadOptions) -> dict[str, Any]:
    """``run_benchmark``'s figures, written to ``options.output_file`` and returned as a report."""
    return write_report(options.output_file, "serve_load", run_benchmark(options))


def main(argv: list[str] | None = None) -> int:
    try:
        report = run_command(measure_serve_load, ServeLoadOptions, argv, "python -m benchmarks.serve_load", __doc__)
    except RuntimeError as err:  # a server that did not start: its own last words say why
        raise SystemExit(f"error: {err}") from err
    print_figures(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
