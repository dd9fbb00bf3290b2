"""How long a vendor client waits on its own before handing a delivery back to the durable queue.

One backoff formula for the whole product: the pipeline's (`ledgerbridge.pipeline.backoff.Backoff`, full
jitter, never sooner than `Retry-After`). A client retries only briefly (a dropped connection, one 5xx, a 429
that says "in a second"); anything longer is the pipeline's job, where the wait holds no worker.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from ledgerbridge.pipeline.backoff import Backoff


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 3  # sends of one logical request, the first included
    wait_initial: float = 0.2  # the backoff ceiling after the first failure (doubles each time)
    wait_max: float = 2.0  # no computed backoff is longer
    longest_wait: float = 5.0  # a vendor's Retry-After above this raises instead (RetryLater to the pipeline)
    timeout: float = 20.0  # seconds of retrying, all attempts together
    time_scale: float = 1.0  # > 1 for a time-scaled sandbox: the vendor's waits shrink by as much
    rng: random.Random = field(default_factory=random.Random, compare=False)

    def backoff(self) -> Backoff:
        return Backoff(self.wait_initial, self.wait_max, self.rng)

    def vendor_wait(self, retry_after: float) -> float:
        """Real seconds for a wait the vendor asked for."""
        return retry_after / self.time_scale


NO_RETRIES = RetryPolicy(attempts=1)
