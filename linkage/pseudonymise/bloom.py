"""Keyed Bloom filters of name bigrams, so that name similarity (Dice) survives hashing.

Each distinct bigram is hashed once with the name subkey into ``hashes`` bit positions (double
hashing on the HMAC); each distinct name sets the bits of its bigrams. The filters are built as
NumPy bit arrays for all distinct names at once, never one bigram at a time in Python.

Hardening ``balanced`` appends the filter's complement and shuffles the bits with a keyed
permutation: every filter then has the same number of bits set, which hides name length.
"""

import hashlib
import hmac
import re

import numpy as np
import pandas as pd

PAD = "_"


def normalise_name(names: pd.Series) -> pd.Series:
    """Upper case letters only, single spaces; accents and punctuation dropped."""
    text = names.fillna("").astype(str).str.normalize("NFKD").str.encode(
        "ascii", errors="ignore").str.decode("ascii").str.upper()
    return text.str.replace(r"[^A-Z ]+", "", regex=True).str.replace(r"\s+", " ",
                                                                      regex=True).str.strip()


def bigrams(name: str) -> list[str]:
    padded = PAD + re.sub(" ", PAD, name) + PAD
    return [padded[i:i + 2] for i in range(len(padded) - 1)]


def _positions(key: bytes, grams: list[str], length: int, hashes: int) -> np.ndarray:
    """Bit positions (len(grams) x hashes) of each bigram."""
    out = np.empty((len(grams), hashes), dtype=np.int64)
    steps = np.arange(hashes, dtype=np.uint64)
    for row, gram in enumerate(grams):
        digest = hmac.digest(key, gram.encode(), hashlib.sha256)
        first = np.uint64(int.from_bytes(digest[:8], "big"))
        second = np.uint64(int.from_bytes(digest[8:16], "big") | 1)
        with np.errstate(over="ignore"):
            out[row] = ((first + steps * second) % np.uint64(length)).astype(np.int64)
    return out


def bloom_filters(names: pd.Series, key: bytes, length: int, hashes: int,
                  hardening: str = "none") -> pd.Series:
    """One filter (bytes) per name; None where the name is empty."""
    if length % 8:
        raise ValueError("Bloom filter length must be a multiple of 8")
    raw_codes, raw_uniques = pd.factorize(names.fillna("").astype(object), sort=False)
    normal = normalise_name(pd.Series(raw_uniques, dtype=object))
    name_codes, uniques = pd.factorize(normal, sort=False)
    codes = name_codes[raw_codes]
    gram_lists = [bigrams(name) if name else [] for name in uniques]
    vocabulary = sorted({gram for grams in gram_lists for gram in grams})
    index = {gram: i for i, gram in enumerate(vocabulary)}
    positions = _positions(key, vocabulary, length, hashes)

    bits = np.zeros((len(uniques), length), dtype=bool)
    name_of = np.repeat(np.arange(len(uniques)), [len(g) for g in gram_lists])
    gram_ids = np.array([index[g] for grams in gram_lists for g in grams], dtype=np.int64)
    if len(gram_ids):
        rows = np.repeat(name_of, hashes)
        bits[rows, positions[gram_ids].ravel()] = True
    if hardening == "balanced":
        bits = _balanced(bits, key)
    elif hardening != "none":
        raise ValueError(f"unknown Bloom filter hardening {hardening!r}")
    packed = np.packbits(bits, axis=1)
    filters = np.array([row.tobytes() for row in packed], dtype=object)
    empty = np.array([name == "" for name in uniques], dtype=bool)
    filters[empty] = None
    return pd.Series(filters[codes], index=names.index, dtype=object)


def _balanced(bits: np.ndarray, key: bytes) -> np.ndarray:
    """Filter and complement, bits shuffled by a permutation seeded from the key."""
    doubled = np.concatenate([bits, ~bits], axis=1)
    seed = int.from_bytes(hmac.digest(key, b"balanced-permutation", hashlib.sha256)[:8], "big")
    order = np.random.default_rng(seed).permutation(doubled.shape[1])
    return doubled[:, order]


def dice(a: bytes, b: bytes) -> float:
    """Dice coefficient of two filters (for tests and diagnostics; linkage does this in SQL)."""
    x = np.unpackbits(np.frombuffer(a, dtype=np.uint8))
    y = np.unpackbits(np.frombuffer(b, dtype=np.uint8))
    total = x.sum() + y.sum()
    return float(2 * (x & y).sum() / total) if total else 0.0
