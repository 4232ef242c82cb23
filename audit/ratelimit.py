"""A budget of events per key and time window, counted in the shared cache (Redis when configured).

A fixed window: the first use of a key starts it, with ``limit`` units to spend until it ends.
Counting is an atomic ``incr`` of the cache, so every server process draws on the same budget and two
requests at the same moment cannot both spend the last units (a token bucket kept in the cache
would need a read and a write, and concurrent requests would both see it full). The price of a fixed
window: a client may spend ``limit`` at the end of one window and ``limit`` again at the start of the
next, so at most twice the limit in a short burst.
"""

from __future__ import annotations

from django.core.cache import cache


def take(key: str, amount: int, *, limit: int, window: int) -> bool:
    """Spend ``amount`` units of ``key``'s budget; False (and nothing spent) if that would pass ``limit``."""
    if amount > limit:
        return False
    for _ in range(2):
        cache.add(key, 0, timeout=window)  # starts the window; no-op while it runs
        try:
            used = cache.incr(key, amount)
        except ValueError:  # the window ended between add and incr: start the next one
            continue
        if used > limit:
            try:
                cache.decr(key, amount)  # refused: what was asked is not spent
            except ValueError:  # the window ended meanwhile
                pass
            return False
        return True
    return False
