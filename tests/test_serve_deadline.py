"""serve.deadline: a connection whose request headers do not arrive in time is closed, on a real uvicorn server
with each HTTP protocol uvicorn may pick; requests in time, one after another on one connection, are answered."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from serve.deadline import with_header_deadline

DEADLINE = 0.5
REQUEST = b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"


async def hello(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "http":
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"5")]})
        await send({"type": "http.response.body", "body": b"hello"})


@pytest.fixture(params=[HttpToolsProtocol, H11Protocol], ids=["httptools", "h11"])
def address(request: pytest.FixtureRequest) -> Iterator[tuple[str, int]]:
    listening = socket.socket()
    listening.bind(("127.0.0.1", 0))
    protocol = with_header_deadline(DEADLINE, request.param)
    server = uvicorn.Server(uvicorn.Config(hello, http=protocol, log_level="warning", timeout_keep_alive=30))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [listening]}, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.01)
    yield listening.getsockname()
    server.should_exit = True
    thread.join(10)


def seconds_until_closed(connection: socket.socket) -> float:
    """How long the server took to close ``connection`` (reading and dropping whatever it answers first)."""
    start = time.monotonic()
    connection.settimeout(10)
    while connection.recv(1024):
        pass
    return time.monotonic() - start


def test_headers_that_never_finish_are_cut_off(address: tuple[str, int]) -> None:
    with socket.create_connection(address) as silent:
        assert DEADLINE * 0.8 < seconds_until_closed(silent) < DEADLINE + 2
    with socket.create_connection(address) as trickling:
        trickling.sendall(b"GET / HTTP/1.1\r\n")
        for _ in range(3):  # a byte now and then does not keep it open
            time.sleep(DEADLINE / 4)
            trickling.sendall(b"X")
        assert seconds_until_closed(trickling) < DEADLINE + 2


def test_requests_in_time_are_answered_and_the_next_request_gets_its_own_deadline(address: tuple[str, int]) -> None:
    with socket.create_connection(address) as connection:
        connection.settimeout(5)
        for _ in range(3):  # each request alone in time, together longer than the deadline
            time.sleep(DEADLINE * 0.6)
            connection.sendall(REQUEST)
            assert connection.recv(1024).endswith(b"hello")
        connection.sendall(b"GET / HTTP/1.1\r\n")  # then headers begun and left unfinished
        assert seconds_until_closed(connection) < DEADLINE + 2
