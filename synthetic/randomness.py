"""Seeded random streams: one independent stream per part of the world.

Each part draws from its own stream, so a change to how one part draws does not shift the others.
"""

import zlib

import numpy as np


def stream(seed: int, part: str) -> np.random.Generator:
    """A generator for one named part of the world, fixed by the seed."""
    return np.random.default_rng([seed, zlib.crc32(part.encode())])


def weighted_choice(rng: np.random.Generator, weights: dict, size: int) -> np.ndarray:
    """Draw ``size`` keys of ``weights`` with probability proportional to the values."""
    keys = np.array(list(weights.keys()))
    p = np.array(list(weights.values()), dtype=float)
    return keys[rng.choice(len(keys), size=size, p=p / p.sum())]


def zipf_weights(n: int, exponent: float) -> np.ndarray:
    """Zipf-like weights for ``n`` ranked items, so that common names are common."""
    w = 1.0 / np.arange(1, n + 1) ** exponent
    return w / w.sum()
