"""Retries and adaptive concurrency for an OpenAI-compatible endpoint.

A long build against a rate-limited API meets 429s by the thousand: a fixed two retries would stop
it every few minutes. So a request is retried on what a server says is passing (429, 408, 409,
5xx) and on what the network does (connection refused or reset, a read past the timeout), with
exponential backoff and full jitter, never sooner than the server's ``Retry-After``. A 429 also
halves the number of requests in flight, which grows back by one after as many successes as the
current limit (additive increase, multiplicative decrease: the limit settles under the server's
rate instead of hammering it). 400, 401, 403, 404 and 422 are the request's own fault and are
never retried.
"""

from __future__ import annotations

import collections
import email.utils
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from selfpref import SelfprefError

RETRY_STATUS = {408, 409, 425, 429, 500, 502, 503, 504}
MAX_WAIT = 60.0  # one wait never exceeds a minute unless the server's Retry-After asks for more


@dataclass(frozen=True)
class RetryPolicy:
    """How hard a client tries: ``max_retries`` after the first attempt, each attempt at most
    ``timeout`` seconds, waits from ``backoff`` seconds doubling per attempt (with jitter)."""

    max_retries: int = 8
    timeout: float = 120.0
    backoff: float = 1.0

    def wait(self, attempt: int, retry_after: float | None, rng: random.Random) -> float:
        """Seconds before attempt ``attempt + 1``: full jitter on ``backoff * 2**attempt``,
        at least ``Retry-After``."""
        base = min(MAX_WAIT, self.backoff * 2 ** attempt)
        delay = base * (0.5 + rng.random() / 2)
        return max(delay, retry_after or 0.0)


def retry_after_seconds(value: str | None, now: float | None = None) -> float | None:
    """``Retry-After`` as seconds: a number, or an HTTP date (RFC 9110 allows both)."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError):
        return None
    return max(0.0, when - (time.time() if now is None else now))


class AdaptiveLimit:
    """A semaphore whose size halves on a 429 and grows back by one per ``limit`` successes."""

    def __init__(self, maximum: int) -> None:
        self.maximum = max(1, int(maximum))
        self.limit = self.maximum
        self.in_flight = 0
        self.lowest = self.maximum
        self._streak = 0
        self._cond = threading.Condition()

    def acquire(self) -> None:
        with self._cond:
            while self.in_flight >= self.limit:
                self._cond.wait()
            self.in_flight += 1

    def release(self) -> None:
        with self._cond:
            self.in_flight -= 1
            self._cond.notify_all()

    def throttled(self) -> None:
        with self._cond:
            self.limit = max(1, self.limit // 2)
            self.lowest = min(self.lowest, self.limit)
            self._streak = 0

    def succeeded(self) -> None:
        with self._cond:
            self._streak += 1
            if self._streak >= self.limit and self.limit < self.maximum:
                self.limit += 1
                self._streak = 0
                self._cond.notify_all()


class EndpointRejected(SelfprefError):
    """The server refused the request itself (400, 404, 422...): retrying cannot help."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


class RetryableError(Exception):
    """One failed attempt that may pass: ``kind`` is how the build record counts it."""

    def __init__(self, kind: str, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.kind, self.retry_after = kind, retry_after


class GaveUp(Exception):
    """Every attempt failed: ``kinds`` counts what happened, ``last`` is the last error."""

    def __init__(self, attempts: int, kinds: collections.Counter, last: str) -> None:
        super().__init__(last)
        self.attempts, self.kinds, self.last = attempts, kinds, last


def status_kind(status: int) -> str | None:
    """The retry counter a status goes to, or None when it must not be retried."""
    if status not in RETRY_STATUS:
        return None
    return "5xx" if status >= 500 else str(status)


class Retrier:
    """Runs one request with retries under the adaptive limit; counts retries per kind."""

    def __init__(self, policy: RetryPolicy, max_concurrency: int, *, seed: int = 0,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.policy, self.limit, self.sleep = policy, AdaptiveLimit(max_concurrency), sleep
        self.retries: collections.Counter = collections.Counter()
        self._rng = random.Random(seed)  # jitter only: never enters what a server answers
        self._lock = threading.Lock()

    def run(self, attempt_once: Callable[[], Any]) -> Any:
        """``attempt_once()`` until it returns; it raises RetryableError for a passing failure
        (anything else propagates at once). Raises GaveUp after ``max_retries`` retries."""
        kinds: collections.Counter = collections.Counter()
        for attempt in range(self.policy.max_retries + 1):
            self.limit.acquire()
            try:
                result = attempt_once()
            except RetryableError as exc:
                error = exc
            else:
                self.limit.succeeded()
                return result
            finally:
                self.limit.release()
            kinds[error.kind] += 1
            if error.kind == "429":
                self.limit.throttled()
            if attempt == self.policy.max_retries:
                break
            with self._lock:
                self.retries[error.kind] += 1
                delay = self.policy.wait(attempt, error.retry_after, self._rng)
            self.sleep(delay)
        raise GaveUp(self.policy.max_retries + 1, kinds, str(error))
