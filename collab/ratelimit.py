"""Token buckets: per connection (messages) and per participant (the points of their shapes). Pure."""

from __future__ import annotations

import time
from collections.abc import Callable


class TokenBucket:
    """``rate`` tokens a second, at most ``burst`` saved; :meth:`take` is False when too few are left (drop)."""

    def __init__(self, rate: float, burst: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate = rate
        self.burst = burst
        self.clock = clock
        self.tokens = burst
        self.stamp = clock()
        self.dropped = 0

    def take(self, cost: float = 1) -> bool:
        """Take ``cost`` tokens (a message is 1; a shape costs its points), or nothing if fewer are left."""
        now = self.clock()
        self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens >= cost:
            self.tokens -= cost
            return True
        self.dropped += 1
        return False

    def full(self) -> bool:
        return self.tokens + (self.clock() - self.stamp) * self.rate >= self.burst

    def wait(self, cost: float) -> float:
        """Seconds until ``cost`` tokens are there."""
        return max(0.0, (cost - self.tokens) / self.rate)


class Buckets:
    """One :class:`TokenBucket` per key (a participant of a session), shared by all their connections in
    this process, kept across reconnects; at most ``limit`` keys, full buckets dropped first."""

    def __init__(self, rate: float, burst: float, limit: int = 10_000,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.rate, self.burst, self.limit, self.clock = rate, burst, limit, clock
        self.buckets: dict[object, TokenBucket] = {}

    def __getitem__(self, key: object) -> TokenBucket:
        bucket = self.buckets.get(key)
        if bucket is None:
            if len(self.buckets) >= self.limit:
                self.buckets = {k: b for k, b in self.buckets.items() if not b.full()}
                if len(self.buckets) >= self.limit:  # all in use: the oldest half goes
                    self.buckets = dict(list(self.buckets.items())[self.limit // 2:])
            bucket = self.buckets[key] = TokenBucket(self.rate, self.burst, self.clock)
        return bucket
