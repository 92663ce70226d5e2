"""Per-key request rate limits: a token bucket per key.

Each key may burst up to ``burst`` requests (default: a minute's worth) and is refilled at
``per_minute / 60`` requests a second. :meth:`RateLimiter.check` takes a token, or says how many
seconds to wait for one (the HTTP edge answers 429 with ``Retry-After``). Buckets of keys that
have been idle long enough to be full again are forgotten, so memory stays bounded whatever the
number of keys.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from ..errors import ConfigError

#: Buckets kept before the full ones are dropped (the ``max_buckets`` default).
MAX_BUCKETS = 10_000


class RateLimiter:
    """At most ``per_minute`` requests a minute per key, in bursts of at most ``burst``.

    ``per_minute=0`` means no limit. ``clock`` returns seconds (monotonic); pass another to
    drive the limiter in tests or simulations. Safe to share between threads.
    """

    def __init__(self, per_minute: float, *, burst: float | None = None,
                 clock: Callable[[], float] = time.monotonic, max_buckets: int = MAX_BUCKETS) -> None:
        if per_minute < 0:
            raise ConfigError(f"rate_limit_per_minute={per_minute} must be 0 (no limit) or more.")
        if burst is not None and burst < 1:
            raise ConfigError(f"A rate-limit burst of {burst} allows no request: use 1 or more.")
        self.per_minute = per_minute
        self.burst = float(burst if burst is not None else max(per_minute, 1.0))
        self._rate = per_minute / 60.0
        self._clock = clock
        self._lock = threading.Lock()
        self._buckets: dict[str, tuple[float, float]] = {}  # key -> (tokens, at)
        self._max_buckets = max_buckets
        self._prune_at = max_buckets

    def check(self, key: str) -> float | None:
        """Take one request from ``key``'s allowance: ``None`` when it may go ahead, else the
        seconds until it may (the request is then not counted)."""
        if not self.per_minute:
            return None
        with self._lock:
            now = self._clock()
            tokens = self._level(key, now)
            if tokens >= 1.0:
                self._buckets[key] = (tokens - 1.0, now)
                if len(self._buckets) > self._prune_at:
                    self._forget_full(now)
                return None
            self._buckets[key] = (tokens, now)
            return (1.0 - tokens) / self._rate

    def __len__(self) -> int:
        """The keys whose bucket is tracked."""
        with self._lock:
            return len(self._buckets)

    def _level(self, key: str, now: float) -> float:
        tokens, at = self._buckets.get(key, (self.burst, now))
        return min(self.burst, tokens + max(0.0, now - at) * self._rate)

    def _forget_full(self, now: float) -> None:
        """Drop the buckets that have refilled: forgetting them changes nothing. The next pruning
        waits until the count doubles, so a flood of distinct keys costs amortised O(1) each."""
        for key in [k for k in self._buckets if self._level(k, now) >= self.burst]:
            del self._buckets[key]
        self._prune_at = max(self._max_buckets, 2 * len(self._buckets))
