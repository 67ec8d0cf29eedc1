"""Which sources the filtered stream covers now, shared by the stream's threads and the poll cycle.

A source is covered ("live") once its gap was filled by a timeline poll after the current
connection opened: from then on every post of it arrives by the stream, so polling it
would only read (and pay for) posts twice. Every disconnect ends every source's coverage;
the next connection fills each gap again. Claims keep a gap fill and a poll of one source
from running at once (both write its timeline position).
"""

from __future__ import annotations

import threading


class Coverage:
    """The current connection's generation, its live sources, and the ids it delivered per source."""

    def __init__(self):
        self.lock = threading.Lock()
        self.generation = 0  # +1 on every connection X accepts
        self.connected = False
        self.live: set[int] = set()
        self.oldest: dict[int, int] = {}  # source id -> oldest post id delivered on this connection
        self.newest: dict[int, int] = {}  # source id -> newest post id delivered and stored on this connection
        self._claimed: set[int] = set()

    def opened(self) -> int:
        """A new connection: nothing is covered until its gap is filled; its generation."""
        with self.lock:
            self.generation += 1
            self.connected = True
            self.live.clear()
            self.oldest.clear()
            self.newest.clear()
            return self.generation

    def closed(self) -> None:
        """The connection ended: polling covers every source until the next one fills their gaps."""
        with self.lock:
            self.connected = False
            self.live.clear()

    def covers(self, source_id: int) -> bool:
        """Whether the stream delivers this source's posts now."""
        with self.lock:
            return self.connected and source_id in self.live

    def delivered(self, source_id: int, post_id: int) -> tuple[int, bool]:
        """A post arrived (before it is stored): (generation, whether its source is live)."""
        with self.lock:
            self.oldest[source_id] = min(post_id, self.oldest.get(source_id, post_id))
            return self.generation, self.connected and source_id in self.live

    def stored(self, generation: int, source_id: int, post_id: int) -> None:
        """A delivered post is committed: a later gap fill's end moves past it."""
        with self.lock:
            if generation == self.generation:
                self.newest[source_id] = max(post_id, self.newest.get(source_id, post_id))

    def make_live(self, generation: int, source_id: int) -> tuple[bool, int | None]:
        """The source's gap is filled: (still this connection, newest id the stream stored for it)."""
        with self.lock:
            if generation != self.generation or not self.connected:
                return False, None
            self.live.add(source_id)
            return True, self.newest.get(source_id)

    def drop(self, source_ids) -> None:
        """These sources left the stream's rules (removed, paused, turned protected), or lost a post on it."""
        with self.lock:
            self.live.difference_update(source_ids)
            for source_id in source_ids:
                # What this connection delivered before is no longer one run up to now: the next gap fill
                # reads from the newest stored post to the next delivery (a stale `oldest` would end it early).
                self.oldest.pop(source_id, None)
                self.newest.pop(source_id, None)

    def claim(self, source_id: int) -> bool:
        """Take the source for one timeline read; False when another read of it is running."""
        with self.lock:
            if source_id in self._claimed:
                return False
            self._claimed.add(source_id)
            return True

    def release(self, source_id: int) -> None:
        """The timeline read of this source is over."""
        with self.lock:
            self._claimed.discard(source_id)
