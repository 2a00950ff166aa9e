"""Dynamic batching: the items of requests that arrive close together run as one batch, each caller gets its own.

    batcher = Batcher(predictor.predict, BatchSettings(max_batch=32, max_wait_ms=5), executor)
    answers = await batcher.submit(["첫 리뷰", "둘째 리뷰"])   # QueueFull at once when the queue is full

One asyncio task per model takes the waiting requests in arrival order: it collects more until ``max_batch`` items
are waiting or the first of them has waited ``max_wait_ms``, then runs them as one call of ``run`` on the executor
(a thread: the event loop keeps accepting requests meanwhile) and hands each request its slice of the answers.
The wait counts from the first request's arrival, so requests that arrived while the previous batch ran start the
moment it ends: the model does not idle while the event loop sends the previous batch's answers. With batching off,
every request runs alone and at once. The queue holds at most ``max_queue`` items; a request that would overflow it
is refused immediately, never left to wait. A batch that fails runs again request by request, so that only the
request that made it fail gets the error.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, field
from typing import Any


class QueueFull(RuntimeError):
    """The batcher's queue cannot take the request's items now."""


@dataclass(frozen=True)
class BatchSettings:
    enabled: bool = True
    max_batch: int = 32  # items per batch (a request with more runs as one batch of its own)
    max_wait_ms: float = 5.0  # how long the first waiting request waits for others
    max_queue: int = 256  # items waiting, beyond which requests are refused


@dataclass
class Waiting:
    items: Sequence[Any]
    future: asyncio.Future[list[Any]]
    arrived: float = field(default_factory=time.monotonic)


class Batcher:
    def __init__(
        self,
        run: Callable[[list[Any]], list[Any]],
        settings: BatchSettings,
        executor: Executor,
        on_batch: Callable[[int], None] = lambda size: None,
    ) -> None:
        self.run, self.settings, self.executor, self.on_batch = run, settings, executor, on_batch
        self.waiting: deque[Waiting] = deque()
        self.queued_items = 0
        self.arrived = asyncio.Event()
        self.worker: asyncio.Task[None] | None = None

    def start(self) -> None:
        self.worker = asyncio.get_running_loop().create_task(self.work())

    async def stop(self) -> None:
        if self.worker is not None:
            self.worker.cancel()
            await asyncio.gather(self.worker, return_exceptions=True)

    async def submit(self, items: Sequence[Any]) -> list[Any]:
        """The answers to ``items``, in order; QueueFull at once when they do not fit in the queue."""
        if self.queued_items + len(items) > self.settings.max_queue:
            raise QueueFull(f"{self.queued_items} items are waiting (the queue holds {self.settings.max_queue})")
        waiting = Waiting(items, asyncio.get_running_loop().create_future())
        self.waiting.append(waiting)
        self.queued_items += len(items)
        self.arrived.set()
        return await waiting.future

    async def work(self) -> None:
        while True:
            await self.arrived.wait()
            self.arrived.clear()
            while self.waiting:
                if self.settings.enabled:
                    await self.gather_more()
                batch = self.take()
                await self.run_batch(batch)

    async def gather_more(self) -> None:
        """Wait until a full batch is waiting or the first request has waited ``max_wait_ms`` since it arrived."""
        deadline = self.waiting[0].arrived + self.settings.max_wait_ms / 1000
        while self.queued_items < self.settings.max_batch:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            self.arrived.clear()
            try:
                await asyncio.wait_for(self.arrived.wait(), remaining)
            except asyncio.TimeoutError:  # the builtin TimeoutError only from Python 3.11
                return

    def take(self) -> list[Waiting]:
        """The first waiting request, and those after it while the batch stays within ``max_batch`` items (one
        alone with batching off)."""
        batch = [self.waiting.popleft()]
        size = len(batch[0].items)
        while self.settings.enabled and self.waiting and size + len(self.waiting[0].items) <= self.settings.max_batch:
            size += len(self.waiting[0].items)
            batch.append(self.waiting.popleft())
        self.queued_items -= size
        return batch

    async def run_batch(self, batch: list[Waiting]) -> None:
        items = [item for waiting in batch for item in waiting.items]
        self.on_batch(len(items))
        try:
            answers = await asyncio.get_running_loop().run_in_executor(self.executor, self.run, items)
        except Exception as err:  # the worker goes on
            if len(batch) > 1:  # one bad request must not fail those batched with it: each runs again alone
                for waiting in batch:
                    await self.run_batch([waiting])
            elif not batch[0].future.done():
                batch[0].future.set_exception(err)
            return
        start = 0
        for waiting in batch:
            if not waiting.future.done():  # a caller that went away has a cancelled future
                waiting.future.set_result(answers[start : start + len(waiting.items)])
            start += len(waiting.items)
