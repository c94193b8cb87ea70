"""Vectorised helpers for rows grouped in sorted runs."""

import numpy as np


def rank_within(groups: np.ndarray) -> np.ndarray:
    """0, 1, 2 ... within each run of equal, sorted group values."""
    starts = np.r_[0, np.flatnonzero(np.diff(groups)) + 1]
    run_lengths = np.diff(np.r_[starts, len(groups)])
    return np.arange(len(groups)) - np.repeat(starts, run_lengths)


def cumsum_within(groups: np.ndarray, values: np.ndarray) -> np.ndarray:
    total = np.cumsum(values)
    starts = np.r_[0, np.flatnonzero(np.diff(groups)) + 1]
    before = np.r_[0, total][starts]
    run_lengths = np.diff(np.r_[starts, len(groups)])
    return total - np.repeat(before, run_lengths)
