"""benchmarks/serve_load.py: on a tiny random classifier both modes answer every request, the burst beyond the queue
bound is partly refused with 503s, and the service still answers afterwards; a run stops at its time limit; a server
that fails to start is reported with its output, one that ignores SIGTERM is killed."""

from __future__ import annotations

import asyncio
import signal
import statistics
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from benchmarks import serve_load


def test_load_both_modes_and_a_burst_beyond_the_queue(served_models: dict[str, Path], tmp_path: Path) -> None:
    options = serve_load.ServeLoadOptions(
        model_name_or_path=str(served_models["distilbert-classify"]),
        backend="torch",
        threads=1,
        clients=4,
        requests=16,
        rounds=2,
        overload_queue=2,  # a queue of 2 against 16 requests at once: refused ones even when the tiny model is fast
        output_file=str(tmp_path / "report.json"),
    )

    figures = serve_load.run_benchmark(options)

    assert [row["mode"] for row in figures["results"]] == ["batching on", "batching off"]
    for row in figures["results"]:
        assert (row["rounds"], row["requests"], row["errors"], row["cut_short"]) == (2, 32, 0, False)
        assert row["requests_per_s"] == pytest.approx(statistics.median(row["rounds_requests_per_s"]), abs=0.1)
        assert row["requests_per_s"] > 0
        assert row["p50_ms"] <= row["p99_ms"]
    assert len(figures["rounds_speedup"]) == 2
    assert figures["results"][1]["mean_batch"] == 1.0  # batching off: every request alone
    overload = figures["overload"]
    assert overload["sent"] == 16 and overload["refused_503"] >= 1 and overload["other"] == 0
    assert overload["alive"] is True


def test_a_run_stops_at_its_time_limit_and_counts_refusals_as_errors() -> None:
    async def send(text: str) -> serve_load.Outcome:
        await asyncio.sleep(0.01)
        return serve_load.Outcome(503 if text == "503" else 200, 0.01)

    async def run() -> dict:
        return await serve_load.closed_loop(send, ["좋아", "503"], clients=2, total=10_000, limit=0.3)

    run_outcomes = asyncio.run(run())
    figures = serve_load.load_figures([{**run_outcomes, "batches": Counter({2: 3, 1: 2})}], clients=2)
    assert figures["cut_short"] is True and 0 < figures["requests"] < 10_000
    assert figures["errors"] == figures["statuses"]["503"] >= figures["requests"] // 2 - 1
    assert figures["mean_batch"] == 1.6  # (3 x 2 + 2 x 1) / 5


def test_rounds_take_turns_and_a_mode_is_its_median_round() -> None:
    on, off = serve_load.MODES
    assert serve_load.turns(3) == [on, off, off, on, on, off]
    ok, refused = serve_load.Outcome(200, 0.01), serve_load.Outcome(503, 0.01)
    runs = [
        {"outcomes": [ok] * 10, "wall_s": 1.0, "cut_short": False, "batches": Counter({1: 10})},  # 10/s
        {"outcomes": [ok] * 30 + [refused], "wall_s": 1.0, "cut_short": False, "batches": Counter({3: 10})},  # 30/s
        {"outcomes": [ok] * 40, "wall_s": 2.0, "cut_short": True, "batches": Counter({4: 10})},  # 20/s
    ]
    figures = serve_load.load_figures(runs, clients=4)
    assert figures["rounds_requests_per_s"] == [10.0, 30.0, 20.0] and figures["requests_per_s"] == 20.0
    assert (figures["requests"], figures["errors"], figures["cut_short"], figures["mean_batch"]) == (81, 1, True, 2.67)


def test_a_server_that_exits_is_reported_with_its_output_and_one_that_ignores_sigterm_is_killed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    failing = [sys.executable, "-c", "print('no model here'); raise SystemExit(3)"]
    server = serve_load.start_server("failing", failing, serve_load.free_port(), tmp_path / "failing.log")
    with pytest.raises(RuntimeError, match=r"(?s)exited \(3\).*no model here"):
        serve_load.wait_healthy(server, timeout=30)

    stubborn = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print('up', flush=True); "
    stubborn += "time.sleep(60)"
    server = serve_load.start_server("stubborn", [sys.executable, "-c", stubborn], 0, tmp_path / "stubborn.log")
    deadline = time.monotonic() + 30
    while "up" not in server.log.read_text() and time.monotonic() < deadline:  # SIGTERM ignored from "up" on
        time.sleep(0.05)
    monkeypatch.setattr(serve_load, "STOP_TIMEOUT", 0.5)
    serve_load.stop_server(server)
    assert server.process.returncode == -signal.SIGKILL
