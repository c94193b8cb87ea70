"""Connected components of a graph given as two arrays of node numbers, in NumPy only (the
ECM cross-check imports it in an environment without the rest of the package)."""

import numpy as np


def connected_components(size: int, left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """Component of each of ``size`` nodes joined by the edges ``left``-``right``: the
    smallest node number in it (hooking roots to the smaller root, then pointer jumping)."""
    parent = np.arange(size, dtype=np.int64)
    left, right = np.asarray(left, dtype=np.int64), np.asarray(right, dtype=np.int64)
    while True:
        a, b = parent[left], parent[right]
        differ = a != b
        if not differ.any():
            return parent
        left, right = left[differ], right[differ]
        low, high = np.minimum(a[differ], b[differ]), np.maximum(a[differ], b[differ])
        np.minimum.at(parent, high, low)
        while True:
            jumped = parent[parent]
            if np.array_equal(jumped, parent):
                break
            parent = jumped
