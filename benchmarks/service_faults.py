"""The HTTP service under the faults issue 32's probes found: a poisoned text in a crowd, unbounded metrics keys,
slow clients, foreign hosts and pages, odd methods and bodies. Each probe prints what the service did.

    python -m benchmarks.service_faults                                  # a random 3-layer classifier, KoBERT tokenizer
    python -m benchmarks.service_faults --model_name_or_path runs/smoke/nsmc/distilled/best

The service runs as deployed, ``python -m serve`` in a subprocess (``--read_timeout 2``, so that the slow-client
probes are short). Every probe is also held by a test (named in the output); this script shows them on one running
service, with figures: statuses, seconds, bytes and the process's memory.
"""

from __future__ import annotations

import asyncio
import json
import socket
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

from benchmarks.serve_load import (
    DISTILKOBERT_3,
    build_classifier,
    free_port,
    review_texts,
    start_server,
    stop_server,
    wait_healthy,
)
from common.config import key, run_command
from common.io import write_json

ROOT = Path(__file__).resolve().parent.parent
READ_TIMEOUT = 2.0
POISON = '{"texts": ["a\\ud800b"]}'  # valid JSON, a lone surrogate no tokenizer takes


def request(url: str, method: str = "GET", body: bytes | None = None, headers: dict[str, str] | None = None) -> tuple:
    """(status, body) of one plain request; HTTP errors are answers too."""
    sent = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(sent, timeout=30) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as err:
        return err.code, err.read()


def resident_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return round(int(line.split()[1]) / 1024, 1)
    return float("nan")


async def crowd(url: str, texts: list[str], clients: int) -> dict[str, Any]:
    """``clients`` requests at once, one of them poisoned: the statuses of the good ones and of the poisoned one."""
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=clients)) as session:

        async def post(body: str) -> int:
            async with session.post(f"{url}/predict", data=body.encode("utf-8")) as response:
                await response.read()
                return response.status

        bodies = [json.dumps({"text": texts[i % len(texts)]}) for i in range(clients - 1)]
        middle = clients // 2
        statuses = await asyncio.gather(*(post(body) for body in [*bodies[:middle], POISON, *bodies[middle:]]))
    poisoned = statuses[middle]
    good = Counter(statuses[:middle] + statuses[middle + 1 :])
    return {"good": dict(good), "poisoned": poisoned}


def seconds_until_closed(connection: socket.socket) -> float:
    start = time.monotonic()
    connection.settimeout(30)
    while connection.recv(1024):
        pass
    return round(time.monotonic() - start, 2)


def slow_headers(port: int) -> float:
    with socket.create_connection(("127.0.0.1", port)) as connection:
        connection.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n")  # and never the blank line
        return seconds_until_closed(connection)


def slow_body(port: int) -> tuple[str, float]:
    with socket.create_connection(("127.0.0.1", port)) as connection:
        head = b"POST /predict HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 100\r\n\r\n"
        connection.sendall(head + b'{"texts": ')  # 10 of the 100 bytes promised
        start = time.monotonic()
        connection.settimeout(30)
        answer = connection.recv(4096).split(b"\r\n", 1)[0].decode()
        return answer, round(time.monotonic() - start, 2)


async def health_while_tokenizing(url: str) -> dict[str, float]:
    """/health's latency alone, then while a long /tokenize request works."""
    long_texts = {"texts": ["정말 재미있어요 " * 200] * 64}
    async with aiohttp.ClientSession() as session:

        async def health_ms() -> float:
            start = time.perf_counter()
            async with session.get(f"{url}/health") as response:
                await response.read()
            return round(1000 * (time.perf_counter() - start), 1)

        alone = await health_ms()
        tokenizing = asyncio.ensure_future(session.post(f"{url}/tokenize", json=long_texts))
        await asyncio.sleep(0.05)
        during = await health_ms()
        (await tokenizing).release()
    return {"health_ms_alone": alone, "health_ms_during_tokenize": during}


def probes(url: str, port: int, pid: int, texts: list[str], unknown_paths: int) -> list[dict[str, Any]]:
    rows = []

    def row(case: str, observed: Any, held: bool, test: str) -> None:
        rows.append({"case": case, "observed": observed, "held": held, "test": test})
        print(f"{'ok ' if held else 'BAD'} {case}: {observed}  [{test}]")

    status, body = request(f"{url}/predict", "POST", POISON.encode())
    row("a lone surrogate in a text", f"{status} {json.loads(body)['error']}", status == 422,
        "test_serve_app.py::test_bad_input_gets_its_status_and_one_message_and_the_service_stays_up")  # fmt: skip
    for clients in (21, 200):
        outcome = asyncio.run(crowd(url, texts, clients))
        row(f"{clients} clients at once, one poisoned", outcome,
            outcome["good"] == {200: clients - 1} and outcome["poisoned"] == 422,
            "test_serve_app.py::test_a_failing_request_fails_alone")  # fmt: skip

    before = (len(request(f"{url}/metrics")[1]), resident_mb(pid))
    for i in range(unknown_paths):
        request(f"{url}/nowhere/{i}")
    after = (len(request(f"{url}/metrics")[1]), resident_mb(pid))
    row(f"{unknown_paths:,} GETs to unknown paths", f"/metrics {before[0]:,} -> {after[0]:,} bytes, "
        f"memory {before[1]} -> {after[1]} MB", after[0] < before[0] + 200,
        "test_serve_app.py::test_health_metrics_and_page")  # fmt: skip

    seconds = slow_headers(port)
    row("headers that never end", f"closed after {seconds} s (--read_timeout {READ_TIMEOUT:g})",
        seconds < READ_TIMEOUT + 2, "test_serve_deadline.py::test_headers_that_never_finish_are_cut_off")  # fmt: skip
    answer, seconds = slow_body(port)
    row("a body that never ends", f"{answer} after {seconds} s", answer.endswith("408 Request Timeout"),
        "test_serve_app.py::test_a_body_that_does_not_arrive_in_time_is_a_408")  # fmt: skip

    status, _ = request(f"{url}/health", "HEAD")
    row("HEAD /health", status, status == 200, "test_serve_app.py::test_health_metrics_and_page")
    status, body = request(f"{url}/predict", "POST", b"[" * 50_000 + b"]" * 50_000)
    row("JSON nested 50,000 deep", f"{status} {body[:80]!r}", status in (400, 422) and b'"error"' in body,
        "test_serve_app.py::test_bad_input_gets_its_status_and_one_message_and_the_service_stays_up")  # fmt: skip
    figures = asyncio.run(health_while_tokenizing(url))
    row("/health while a long /tokenize works", figures, figures["health_ms_during_tokenize"] < 100,
        "test_serve_app.py::test_tokenize_runs_off_the_event_loop")  # fmt: skip

    status, body = request(f"{url}/health", headers={"Host": "rebind.attacker.example"})
    row("Host: rebind.attacker.example", f"{status} {json.loads(body)['error']}", status == 400,
        "test_serve_app.py::test_a_host_name_not_given_to_the_service_is_refused")  # fmt: skip
    headers = {"Origin": "http://attacker.example", "Content-Type": "text/plain"}
    status, body = request(f"{url}/predict", "POST", json.dumps({"text": texts[0]}).encode(), headers)
    row("a text/plain POST from another site's page", f"{status} {json.loads(body)['error']}", status == 403,
        "test_serve_app.py::test_a_request_from_another_sites_page_is_refused_before_it_runs")  # fmt: skip
    status, _ = request(f"{url}/docs")
    row("/docs (a CDN page, blank offline)", status, status == 404, "test_serve_app.py::test_health_metrics_and_page")
    healthy = request(f"{url}/health")[0] == 200
    row("the service after all of it", "answers /health" if healthy else "down", healthy, "-")
    return rows


@dataclass(kw_only=True)
class ServiceFaultOptions:
    """What ``python -m benchmarks.service_faults`` reads."""

    model_name_or_path: str = key("", "A model folder to serve; empty: a random classifier of DistilKoBERT's shape.")
    unknown_paths: int = key(5000, "GETs to distinct unknown paths.")
    output_file: str = key(str(ROOT / "benchmarks" / "results" / "service_faults.json"), "The figures, as JSON.")

    def validate(self) -> None:
        if self.model_name_or_path and not Path(self.model_name_or_path).is_dir():
            raise ValueError(f"--model_name_or_path {self.model_name_or_path!r}: not a folder")
        if self.unknown_paths < 1:
            raise ValueError(f"--unknown_paths must be at least 1, got {self.unknown_paths}")


def probe_service(options: ServiceFaultOptions) -> list[dict[str, Any]]:
    """Every probe against one ``python -m serve`` in a subprocess: what the service did, and whether it held; a row
    each, written to ``options.output_file``. RuntimeError, with its last output, if the service does not start."""
    options.validate()
    with tempfile.TemporaryDirectory() as workspace:
        folder = Path(options.model_name_or_path or Path(workspace) / "classifier")
        if not options.model_name_or_path:
            build_classifier(folder, DISTILKOBERT_3)
        port = free_port()
        command = [sys.executable, "-m", "serve", "--model_name_or_path", str(folder), "--port", str(port)]
        server = start_server("probed", [*command, "--read_timeout", str(READ_TIMEOUT)], port, Path(workspace) / "log")
        try:
            wait_healthy(server, 120)
            rows = probes(server.url, port, server.process.pid, review_texts(64), options.unknown_paths)
        finally:
            stop_server(server)
    model = options.model_name_or_path or "random DistilKoBERT-shaped classifier"
    write_json(options.output_file, {"model": model, "rows": rows})
    return rows


def main(argv: list[str] | None = None) -> int:
    try:
        rows = run_command(probe_service, ServiceFaultOptions, argv, "python -m benchmarks.service_faults", __doc__)
    except RuntimeError as err:  # the service did not start: its own last words say why
        raise SystemExit(f"error: {err}") from err
    print(f"{sum(r['held'] for r in rows)} of {len(rows)} held")
    return 0


if __name__ == "__main__":
    sys.exit(main())
