"""What a poll cycle did, per source and in total, as printed by `poll`."""

from __future__ import annotations

from dataclasses import dataclass, field

# X API pay-per-use prices (USD), each object billed once per UTC day (docs.x.com, "X API pay-per-usage pricing":
# Posts: Read $0.005, User: Read $0.010 per resource). The defaults of FEEDAPP_X_PRICE_POST_READ / _USER_READ.
PRICE_PER_POST = 0.005
PRICE_PER_USER = 0.010


@dataclass
class SourceResult:
    """One source's share of a cycle."""

    username: str
    new_posts: int = 0
    requests: int = 0
    post_reads: int = 0  # billable today: first read of each post this UTC day
    user_reads: int = 0
    error: str | None = None
    skipped: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None and self.skipped is None

    def line(self) -> str:
        """One line for the operator."""
        head = (f"@{self.username}: {self.new_posts} new, {self.requests} requests, "
                f"{self.post_reads} post reads, {self.user_reads} user reads")
        if self.error:
            return f"{head}; error: {self.error}"
        if self.skipped:
            return f"{head}; skipped: {self.skipped}"
        return head


@dataclass
class CycleSummary:
    """A whole cycle: the per-source results plus profile look-ups."""

    results: list[SourceResult] = field(default_factory=list)
    lookup_requests: int = 0
    lookup_user_reads: int = 0
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0
    price_post: float = PRICE_PER_POST  # FEEDAPP_X_PRICE_POST_READ, set by the `poll` command
    price_user: float = PRICE_PER_USER  # FEEDAPP_X_PRICE_USER_READ

    @property
    def requests(self) -> int:
        return self.lookup_requests + sum(r.requests for r in self.results)

    @property
    def post_reads(self) -> int:
        return sum(r.post_reads for r in self.results)

    @property
    def user_reads(self) -> int:
        return self.lookup_user_reads + sum(r.user_reads for r in self.results)

    @property
    def new_posts(self) -> int:
        return sum(r.new_posts for r in self.results)

    @property
    def failed(self) -> int:
        return sum(1 for r in self.results if not r.ok)

    @property
    def cost(self) -> float:
        return self.post_reads * self.price_post + self.user_reads * self.price_user

    def lines(self) -> list[str]:
        """Every source's line, the notes, then the total."""
        total = (f"total: {len(self.results)} sources, {self.new_posts} new posts, {self.requests} requests, "
                 f"{self.post_reads} post reads, {self.user_reads} user reads (about ${self.cost:.3f}), "
                 f"{self.failed} failed or skipped, {self.seconds:.2f} s")
        return [r.line() for r in self.results] + self.notes + [total]
