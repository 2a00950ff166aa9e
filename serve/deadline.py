"""A deadline for a request's headers, which uvicorn does not have: a client that opens a connection and sends its
headers slowly (or never) would hold the connection for as long as it likes (Slowloris).

    uvicorn.run(app, http=with_header_deadline(10.0))

uvicorn's only timer, ``timeout_keep_alive``, starts after a response and stops at the next byte received, and ASGI
middleware sees a request only once its headers are complete; so the deadline lives in the HTTP protocol class, one
subclass of whichever protocol uvicorn would pick (httptools when installed, else h11). The body has its own
deadline in ``serve.app.BodyGuard``, where a late body can still be answered with a 408.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

logger = logging.getLogger("serve")


def default_protocol() -> type[asyncio.Protocol]:
    """The HTTP protocol class uvicorn's ``http="auto"`` picks."""
    try:
        from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

        return HttpToolsProtocol
    except ImportError:
        from uvicorn.protocols.http.h11_impl import H11Protocol

        return H11Protocol


def with_header_deadline(seconds: float, base: type[asyncio.Protocol] | None = None) -> type[asyncio.Protocol]:
    """``base`` (uvicorn's own choice by default), closing a connection whose request headers are not all in
    ``seconds`` after its first byte (after it opened, for the first request)."""
    base = base or default_protocol()

    class HeaderDeadline(base):  # type: ignore[misc, valid-type]
        def connection_made(self, transport: Any) -> None:
            self.header_timer: asyncio.TimerHandle | None = None
            super().connection_made(transport)
            self.arm()

        def data_received(self, data: bytes) -> None:
            if self.waiting_for_headers():
                self.arm()
            super().data_received(data)
            if not self.waiting_for_headers():
                self.disarm()

        def connection_lost(self, exc: Exception | None) -> None:
            self.disarm()
            super().connection_lost(exc)

        def waiting_for_headers(self) -> bool:
            # Both protocols start a request's cycle the moment its headers are complete.
            return self.cycle is None or self.cycle.response_complete

        def arm(self) -> None:
            if self.header_timer is None:
                self.header_timer = self.loop.call_later(seconds, self.headers_too_late)

        def disarm(self) -> None:
            if self.header_timer is not None:
                self.header_timer.cancel()
                self.header_timer = None

        def headers_too_late(self) -> None:
            self.header_timer = None
            if self.waiting_for_headers() and not self.transport.is_closing():
                logger.info("closed a connection from %s: no complete request headers in %g s", self.client, seconds)
                self.transport.close()

    HeaderDeadline.__name__ = HeaderDeadline.__qualname__ = f"{base.__name__}WithHeaderDeadline"
    return HeaderDeadline
