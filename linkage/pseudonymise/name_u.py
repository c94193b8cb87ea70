"""How often two different persons' names agree, measured by the provider on plaintext.

A salted name filter compares only within one birthday, and the linkage unit's random pairs
that share a birthday are mostly one person's records: it cannot tell from them how often
two different persons' names agree (the u probabilities), and a data set without UPNs gives
it no other way. The provider can: for random pairs of its records (nearly all different
persons), the share whose names are equal, and whose bigram Dice reaches each of the model's
levels. Three shares per name field travel in the manifest; they describe the population's
names, not any person.
"""

import numpy as np
import pandas as pd

from linkage.pseudonymise.bloom import bigrams, normalise_name

SAMPLE_PAIRS = 50_000   # random pairs per name field
MIN_NAMES = 50          # fewer names than this say nothing reliable
SEED = 20240331         # fixed: the same records give the same shares


def name_agreement(names: pd.Series, levels: list[float]) -> dict | None:
    """For random pairs of the records' names: the share equal, and the shares (not equal)
    whose bigram Dice reaches each of ``levels`` but not the one before; None if too few."""
    normal = normalise_name(names)
    normal = normal[normal != ""]
    if len(normal) < MIN_NAMES:
        return None
    codes, uniques = pd.factorize(normal, sort=True)
    rng = np.random.default_rng(SEED)
    left = rng.integers(0, len(codes), SAMPLE_PAIRS)
    right = rng.integers(0, len(codes), SAMPLE_PAIRS)
    keep = left != right
    a, b = codes[left[keep]], codes[right[keep]]
    sets = [frozenset(bigrams(name)) for name in uniques]  # per distinct name, not per row
    # each distinct pair of names is scored once
    pairs, inverse = np.unique(np.stack([a, b], axis=1), axis=0, return_inverse=True)
    scores = np.array([_dice(sets[x], sets[y]) for x, y in pairs])[inverse.ravel()]
    equal = a == b
    shares = [float(equal.mean())]
    above = equal.copy()
    for level in levels:
        reached = ~above & (scores >= level)
        shares.append(float(reached.mean()))
        above |= reached
    return {"pairs": int(keep.sum()), "shares": [round(s, 8) for s in shares]}


def _dice(x: frozenset, y: frozenset) -> float:
    return 2.0 * len(x & y) / (len(x) + len(y)) if x or y else 1.0
