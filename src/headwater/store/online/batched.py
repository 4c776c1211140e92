"""Online reads from an event loop that never block it, batched across requests.

A server answering many requests at once on one event loop must not wait for a
networked online store in a blocking call: every other request would wait with it.
A store that can read without blocking implements :class:`AsyncReads`
(``read_many_async``: one pipelined round trip for many entities, awaited).
:class:`BatchedReads` puts the reads of concurrent requests together: a read queues its
entity and waits; one round trip at a time carries every read queued since the
previous one left. Under load a round trip carries as many reads as requests arrived
while the previous one was out, so the cost of a round trip (the client's and the
server's) is shared by all of them; with one request at a time it is one read per
round trip, answered as soon as it would be alone.

A failed round trip fails each of its reads with the store's error
(:class:`~headwater.errors.BackendError`); the next reads try again.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Protocol, runtime_checkable

__all__ = ["AsyncReads", "BatchedReads"]


@runtime_checkable
class AsyncReads(Protocol):
    """A store that reads many entities in one awaited round trip."""

    async def read_many_async(self, namespace: str, entities: Sequence[str]
                              ) -> list[dict[str, bytes]]:
        """:meth:`~headwater.store.online.OnlineStore.read_many`, without blocking the
        event loop."""
        ...

    async def close_async(self) -> None:
        """Release what the reads hold on the event loop (connections)."""
        ...


_Read = tuple[str, str, "asyncio.Future[dict[str, bytes]]"]


class BatchedReads:
    """Reads of one event loop's requests, one round trip at a time (see the module).

    ``round_trips`` and ``reads`` count what went out: their ratio is the reads a
    round trip carried on average.
    """

    def __init__(self, store: AsyncReads) -> None:
        self.store = store
        self.round_trips = 0
        self.reads = 0
        self._pending: list[_Read] = []
        self._busy = False

    async def read(self, namespace: str, entity: str) -> dict[str, bytes]:
        """The entity's feature blobs (a fresh dict; ``{}`` when unknown)."""
        future: asyncio.Future[dict[str, bytes]] = asyncio.get_running_loop().create_future()
        self._pending.append((namespace, entity, future))
        if not self._busy:
            self._busy = True
            asyncio.get_running_loop().call_soon(self._send)
        return await future

    def _send(self) -> None:
        pending, self._pending = self._pending, []
        if not pending:
            self._busy = False
            return
        asyncio.get_running_loop().create_task(self._round_trip(pending))

    async def _round_trip(self, pending: list[_Read]) -> None:
        by_namespace: dict[str, list[_Read]] = {}
        for read in pending:
            by_namespace.setdefault(read[0], []).append(read)
        self.round_trips += 1
        self.reads += len(pending)
        try:
            for namespace, reads in by_namespace.items():
                try:
                    found = await self.store.read_many_async(namespace,
                                                             [entity for _, entity, _ in reads])
                except Exception as exc:
                    for _, _, future in reads:
                        if not future.done():
                            future.set_exception(exc)
                    continue
                for (_, _, future), entries in zip(reads, found, strict=True):
                    if not future.done():  # its request may have been cancelled
                        future.set_result(entries)
        except BaseException:  # the round trip was cancelled (the loop stops): so are they
            for _, _, future in pending:
                if not future.done():
                    future.cancel()
            raise
        finally:
            self._send()  # what queued meanwhile goes next, or nothing is busy

    async def close(self) -> None:
        """Close the store's event-loop connections."""
        await self.store.close_async()
