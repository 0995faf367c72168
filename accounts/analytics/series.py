"""The profit distribution of closed trades (the other series are read from the running state: `report`)."""

from __future__ import annotations

import numpy as np

from .tables import DISTRIBUTION_BINS, money


def distribution(profit: np.ndarray) -> list:
    if not len(profit):
        return []
    lo, hi = int(profit.min()), int(profit.max())
    if lo == hi:
        return [{"from": money(lo), "to": money(hi), "count": int(len(profit))}]
    edges = np.linspace(lo, hi, DISTRIBUTION_BINS + 1)
    counts, _ = np.histogram(profit, bins=edges)
    return [
        {"from": money(edges[i]), "to": money(edges[i + 1]), "count": int(counts[i])} for i in range(DISTRIBUTION_BINS)
    ]
