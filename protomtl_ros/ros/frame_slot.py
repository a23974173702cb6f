"""A one-item buffer that keeps only the newest frame for a worker thread."""

import threading


class LatestFrameSlot:
    """Hold at most one pending item; a new item replaces the one not yet taken.

    The producer (a subscription callback) never blocks, and a consumer slower than the
    producer always gets the newest item, so no queue builds up behind a slow model.
    """

    def __init__(self):
        self._condition = threading.Condition()
        self._item = None
        self._closed = False

    def put(self, item):
        """Store ``item`` and return the item it replaced, or None if the slot was empty."""
        with self._condition:
            replaced = self._item
            self._item = item
            self._condition.notify()
        return replaced

    def take(self, timeout_s: float):
        """Remove and return the pending item, waiting up to ``timeout_s``; None if none came."""
        with self._condition:
            if self._item is None and not self._closed:
                self._condition.wait(timeout_s)
            item = self._item
            self._item = None
        return item

    def close(self):
        """Wake any waiting consumer; later take() calls return without waiting."""
        with self._condition:
            self._closed = True
            self._condition.notify_all()

    @property
    def closed(self) -> bool:
        return self._closed
