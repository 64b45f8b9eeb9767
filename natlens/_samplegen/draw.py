"""Random draws on the standard library's generator, so the output is the same everywhere.

Every draw takes its :class:`random.Random` explicitly; the generator gives each concern
its own one, seeded by purpose, so a change in one concern leaves the others' draws alone.
"""

from __future__ import annotations

import math
import random
from itertools import accumulate

__all__ = ["geometric", "lognormal", "poisson", "zipf_cumulative"]


def poisson(rng: random.Random, lam: float) -> int:
    """A Poisson count of mean ``lam`` (a rounded normal above 30).

    Examples
    --------
    >>> poisson(random.Random(1), 0.0), poisson(random.Random(3), 2.0)
    (0, 1)
    """
    if lam <= 0:
        return 0
    if lam > 30:
        return max(0, round(rng.gauss(lam, math.sqrt(lam))))
    limit = math.exp(-lam)
    k, p = 0, rng.random()
    while p > limit:
        k += 1
        p *= rng.random()
    return k


def geometric(rng: random.Random, mean: float) -> int:
    """A geometric count of at least 1 with the given mean (1 when ``mean <= 1``).

    Examples
    --------
    >>> geometric(random.Random(1), 1.0), geometric(random.Random(2), 5.0)
    (1, 15)
    """
    if mean <= 1:
        return 1
    u = 1.0 - rng.random()
    return 1 + int(math.log(u) / math.log(1.0 - 1.0 / mean))


def lognormal(rng: random.Random, median: float, sigma: float) -> int:
    """A log-normal integer of the given median, at least 1 (exactly the median if no spread).

    Examples
    --------
    >>> lognormal(random.Random(1), 76, 0.0), lognormal(random.Random(1), 1000, 0.5)
    (76, 1904)
    """
    if sigma <= 0:
        return round(median)
    return max(1, round(median * math.exp(rng.gauss(0.0, sigma))))


def zipf_cumulative(n: int, skew: float = 1.1) -> list[float]:
    """Cumulative Zipf weights of ``n`` ranks, for :func:`bisect.bisect_right` draws.

    Examples
    --------
    >>> [round(w, 3) for w in zipf_cumulative(3)]
    [1.0, 1.467, 1.765]
    """
    return list(accumulate(1.0 / (i + 1) ** skew for i in range(n)))
