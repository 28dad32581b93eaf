"""Running an iterator in a background thread ahead of its consumer (decoding while detecting)."""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from typing import TypeVar

T = TypeVar("T")


class Demand:
    """The consumer's requests for items, as seen by a producer thread (lockstep prefetching).

    The consumer calls :meth:`request` each time it asks for the next item; the producer calls
    :meth:`wait` before a decision that must see everything the consumer did with the items before,
    and :meth:`spend` when it hands an item over. :meth:`stop` releases a waiting producer.
    """

    def __init__(self) -> None:
        self._requests = threading.Semaphore(0)
        self._held = False
        self.stopped = threading.Event()

    def request(self) -> None:
        self._requests.release()

    def wait(self) -> bool:
        """Block until the consumer waits for an item; False when it stopped instead."""
        while not self._held:
            if self.stopped.is_set():
                return False
            self._held = self._requests.acquire(timeout=0.1)
        return True

    def spend(self) -> None:
        self._held = False

    def stop(self) -> None:
        self.stopped.set()


def prefetched(items: Iterator[T], size: int, demand: Demand | None = None) -> Iterator[T]:
    """Run the iterator ``items`` in a daemon thread, ``size`` items ahead of the consumer.

    An exception raised by ``items`` is re-raised in the consumer after the items before it.
    Closing the returned generator (e.g. ``break`` in a ``for`` loop) stops the thread and closes
    ``items``. With ``demand`` (shared with the producer, see :class:`Demand`) each request of the
    consumer is signalled to the producer before the consumer waits for the item.
    """
    q: queue.Queue = queue.Queue(maxsize=max(1, size))
    stop = demand.stopped if demand is not None else threading.Event()
    done = object()

    def put(item: object) -> bool:
        while not stop.is_set():
            try:
                q.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def work() -> None:
        try:
            for item in items:
                if not put(item):
                    break
        except BaseException as e:  # noqa: BLE001 - handed to the consumer
            put(e)
        else:
            put(done)
        finally:
            close = getattr(items, "close", None)
            if close is not None:
                close()

    thread = threading.Thread(target=work, name="prefetch", daemon=True)
    thread.start()
    try:
        while True:
            if demand is not None:
                demand.request()
            item = q.get()
            if item is done:
                break
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        thread.join(timeout=5)
