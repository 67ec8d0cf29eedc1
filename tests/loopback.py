"""Test servers on 127.0.0.1 that stop at once.

socketserver's serve_forever() looks at its shutdown flag only between select() timeouts, so every
shutdown() waits up to a poll interval; with a fake X API per test that wait was the largest part of a
test's set-up and tear-down. Here the loop also waits on a wake-up socket that shutdown() writes to.
"""

from __future__ import annotations

import selectors
import socket
import threading


class StopsAtOnce:
    """Mixin for a socketserver server (put it first): serve_forever() ends as soon as shutdown() is called."""

    def server_activate(self) -> None:
        super().server_activate()
        self._wake_read, self._wake_write = socket.socketpair()
        self._stop_asked = False
        self._stopped = threading.Event()  # as socketserver's: shutdown() needs serve_forever() started

    def serve_forever(self, poll_interval: float = 0.5) -> None:  # noqa: ARG002 - woken instead of polling
        """Answer connections until shutdown()."""
        try:
            with selectors.DefaultSelector() as selector:
                selector.register(self, selectors.EVENT_READ)
                selector.register(self._wake_read, selectors.EVENT_READ)
                while not self._stop_asked:
                    ready = selector.select()
                    if self._stop_asked:
                        break
                    if any(key.fileobj is self for key, _ in ready):
                        self._handle_request_noblock()
                    self.service_actions()
        finally:
            self._stopped.set()

    def shutdown(self) -> None:
        """Stop serve_forever() and wait until it has returned (call it from another thread)."""
        self._stop_asked = True
        self._wake_write.send(b"\0")
        self._stopped.wait()

    def server_close(self) -> None:
        super().server_close()
        self._wake_read.close()
        self._wake_write.close()
