"""Failed authentications are throttled per client: a guesser gets a 429, not unlimited tries at the token.

Per process (several replicas each keep their own count, which only multiplies a tiny allowance); a client
is the peer address the server sees, so behind a reverse proxy the proxy should throttle too.
"""

from __future__ import annotations

import time
from collections import OrderedDict, deque
from collections.abc import Callable

MAX_FAILURES = 10
WINDOW_SECONDS = 60.0
MAX_CLIENTS = 10_000


class AuthThrottle:
    def __init__(
        self,
        max_failures: int = MAX_FAILURES,
        window_seconds: float = WINDOW_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.max_failures = max_failures
        self.window = window_seconds
        self._clock = clock
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()

    def _recent(self, client: str) -> deque[float]:
        failures = self._failures.get(client)
        if failures is None:
            return deque()
        cutoff = self._clock() - self.window
        while failures and failures[0] <= cutoff:
            failures.popleft()
        return failures

    def retry_after(self, client: str) -> float | None:
        """Seconds until `client` may try again, or None when it is not blocked."""
        failures = self._recent(client)
        if len(failures) < self.max_failures:
            return None
        return max(1.0, failures[0] + self.window - self._clock())

    def failed(self, client: str) -> None:
        failures = self._recent(client)
        failures.append(self._clock())
        self._failures[client] = failures
        self._failures.move_to_end(client)
        while len(self._failures) > MAX_CLIENTS:
            self._failures.popitem(last=False)
