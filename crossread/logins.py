"""One rate limit for every password login: the login page, the admin's, any view calling ``authenticate``.

It sits in the authentication backend (:class:`RateLimitedModelBackend`, Django's ``ModelBackend``
with the limit around it), so no login form can forget it. Two limits, in the shared cache:

- Per client address (:func:`crossread.proxies.client_address`), strict: ``LOGIN_ATTEMPTS`` failed
  logins in a window of ``LOGIN_WINDOW_SECONDS`` that starts with the address's first attempt, then
  every attempt from that address is refused until the window ends. An attempt is counted before its
  password is checked (and uncounted if it succeeds), so parallel requests cannot slip past the
  limit. IPv6 clients are counted per /64 (one host usually holds a whole /64).
- Per username, a backoff rather than a lock-out (a lock-out would let anyone lock a user out): after
  ``LOGIN_BACKOFF_AFTER`` failures, each attempt for that username must come at least 1, 2, 4 ... s
  (at most ``LOGIN_BACKOFF_MAX_SECONDS``) after the last failure, and only one attempt is let through
  each time the wait ends. The owner, from an address that is not limited, waits seconds, not minutes.
  A successful login forgets the username's failures.

A refused attempt raises :class:`LoginThrottled` (a ``DomainError``, 429) out of ``authenticate``:
the login view shows the form again, saying when to try again; :class:`crossread.security.
LoginThrottledMiddleware` answers for any other view. Only attempts with a request and a password
are limited (``manage.py`` and the test client's ``login`` call ``authenticate`` without a request).
"""

from __future__ import annotations

import hashlib
import ipaddress
import math
import time
from collections.abc import Callable
from typing import Any

from asgiref.sync import sync_to_async
from django.contrib.auth import get_user_model
from django.contrib.auth.backends import ModelBackend
from django.core.cache import cache
from django.http import HttpRequest

from crossread.conf import option
from crossread.errors import DomainError, ErrorCode
from crossread.proxies import client_address

#: How long an attempt let through a username's backoff holds the slot if it never reports its outcome.
SLOT_SECONDS = 30


class LoginThrottled(DomainError):
    code = ErrorCode.RATE_LIMITED

    def __init__(self, retry_after: float) -> None:
        self.retry_after = max(1, math.ceil(retry_after))
        super().__init__(
            f"Too many failed attempts. Try again {in_words(self.retry_after)}.", retry_after=self.retry_after
        )


def in_words(seconds: int) -> str:
    """``in 1 second``, ``in 40 seconds``, ``in 15 minutes``."""
    if seconds < 60:
        return f"in {seconds} second{'s' if seconds != 1 else ''}"
    minutes = math.ceil(seconds / 60)
    return f"in {minutes} minute{'s' if minutes != 1 else ''}"


class LoginLimiter:
    """The two limits over Django's cache, with a clock that tests may replace."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self.clock = clock

    # ----------------------------------------------------------------------------------- per address

    def _address_keys(self, address: str) -> tuple[str, str]:
        base = f"login:address:{_digest(_address_group(address))}"
        return f"{base}:since", f"{base}:count"

    def claim_address(self, address: str) -> None:
        """Count an attempt from ``address``; raise if it is over the limit."""
        window, now = option("LOGIN_WINDOW_SECONDS"), self.clock()
        since_key, count_key = self._address_keys(address)
        since = cache.get(since_key)
        if since is None or now - since >= window:  # the first attempt of a window starts it
            since = now
            cache.set_many({since_key: now, count_key: 0}, timeout=window)
        if _incr(count_key, timeout=window) > option("LOGIN_ATTEMPTS"):
            raise LoginThrottled(since + window - now)

    def release_address(self, address: str) -> None:
        """An attempt that succeeded does not count."""
        try:
            cache.decr(self._address_keys(address)[1])
        except ValueError:  # the window ended meanwhile
            pass

    # ---------------------------------------------------------------------------------- per username

    def _user_keys(self, username: str) -> tuple[str, str]:
        digest = _digest(username.lower())
        return f"login:user:{digest}:failures", f"login:user:{digest}:not-before"

    def claim_username(self, username: str) -> None:
        """Raise unless an attempt for ``username`` may be made now (and take the one slot if backing off)."""
        failures_key, not_before_key = self._user_keys(username)
        failures = cache.get(failures_key) or 0
        if failures < option("LOGIN_BACKOFF_AFTER"):
            return
        now, not_before = self.clock(), cache.get(not_before_key) or 0.0
        if now < not_before:
            raise LoginThrottled(not_before - now)
        # One attempt per opening: parallel ones would otherwise all pass the check above. (Its outcome
        # sets the next opening; should it never come, e.g. a database error, the slot frees itself.)
        if not cache.add(f"{not_before_key}:{not_before!r}", 1, timeout=SLOT_SECONDS):
            raise LoginThrottled(self.delay(failures + 1))

    def delay(self, failures: int) -> float:
        """Seconds to wait after the ``failures``-th failure of a username."""
        after = option("LOGIN_BACKOFF_AFTER")
        if failures < after:
            return 0.0
        return float(min(2 ** min(failures - after, 32), option("LOGIN_BACKOFF_MAX_SECONDS")))

    def failed(self, username: str) -> None:
        failures_key, not_before_key = self._user_keys(username)
        memory = option("LOGIN_WINDOW_SECONDS")
        failures = _incr(failures_key, timeout=memory)
        cache.touch(failures_key, memory)
        if failures >= option("LOGIN_BACKOFF_AFTER"):
            cache.set(not_before_key, self.clock() + self.delay(failures), timeout=memory)

    def succeeded(self, username: str) -> None:
        cache.delete_many(self._user_keys(username))


LIMITER = LoginLimiter()


class RateLimitedModelBackend(ModelBackend):
    """Django's ``ModelBackend``, with the login limits of :data:`LIMITER` around each password check."""

    def authenticate(
        self, request: HttpRequest | None, username: str | None = None, password: str | None = None, **kwargs: Any
    ) -> Any:
        if request is None or password is None:
            return super().authenticate(request, username, password, **kwargs)
        if username is None:
            username = kwargs.get(getattr(get_user_model(), "USERNAME_FIELD", "username"))
        name = str(username or "")[:150]
        address = client_address(request)
        LIMITER.claim_address(address)
        try:
            LIMITER.claim_username(name)
        except LoginThrottled:
            LIMITER.release_address(address)  # no password was checked
            raise
        user = super().authenticate(request, username, password, **kwargs)
        if user is None:
            LIMITER.failed(name)
        else:
            LIMITER.release_address(address)
            LIMITER.succeeded(name)
        return user

    async def aauthenticate(
        self, request: HttpRequest | None, username: str | None = None, password: str | None = None, **kwargs: Any
    ) -> Any:
        """The same limits for ``aauthenticate`` (Django's own would check the password without them)."""
        return await sync_to_async(self.authenticate)(request, username, password, **kwargs)


def _incr(key: str, timeout: int) -> int:
    cache.add(key, 0, timeout=timeout)
    try:
        return cache.incr(key)
    except ValueError:  # expired between add and incr
        cache.add(key, 1, timeout=timeout)
        return 1


def _address_group(address: str) -> str:
    """The unit counted per address: the address itself, for IPv6 its /64."""
    try:
        parsed = ipaddress.ip_address(address)
    except ValueError:
        return address
    if parsed.version == 6:
        return str(ipaddress.ip_network(f"{parsed}/64", strict=False))
    return str(parsed)


def _digest(text: str) -> str:
    """Cache keys of a fixed alphabet and length, whatever a username holds."""
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:32]
