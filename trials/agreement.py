"""Inter-reader agreement on categorical responses: percent agreement and Cohen's kappa.

Plain Python, no Django. Cohen (1960): kappa = (p_o - p_e) / (1 - p_e), where p_o is the observed
proportion of agreement and p_e the agreement expected by chance from each reader's marginal
frequencies. Exact fractions internally; kappa is ``None`` when it is undefined (no pairs, or
p_e = 1: both readers gave one and the same category throughout).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from fractions import Fraction


@dataclass(frozen=True)
class Agreement:
    pairs: int
    agreeing: int
    #: Percent, rounded to 0.1; None without pairs.
    percent: float | None
    #: Rounded to 0.001; None when undefined.
    kappa: float | None


def agreement(pairs: Sequence[tuple[Hashable, Hashable]]) -> Agreement:
    """Percent agreement and Cohen's kappa over ``(reader A, reader B)`` category pairs."""
    n = len(pairs)
    if n == 0:
        return Agreement(0, 0, None, None)
    agreeing = sum(1 for a, b in pairs if a == b)
    observed = Fraction(agreeing, n)
    first, second = Counter(a for a, _ in pairs), Counter(b for _, b in pairs)
    expected = sum((Fraction(first[c], n) * Fraction(second[c], n) for c in first), Fraction(0))
    kappa = None if expected == 1 else round(float((observed - expected) / (1 - expected)), 3)
    return Agreement(n, agreeing, round(float(observed * 100), 1), kappa)
