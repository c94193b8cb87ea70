"""Carry-over between keys: does rotating the linkage key protect records already decoded?

The same world hashed under key 1 and key 2. The attacker has decoded key 1's encodings (or
the key leaked) and now holds key 2's. Every key-2 record tied to its key-1 record is
re-identified at once. Ways to tie them, tried in order, the first confirmed by the plain
attributes used (as in ``membership``):

1. record ids, if they travel in the clear (they do not depend on the key);
2. file order within each bundle, if rows are not shuffled;
3. key-independent fingerprints refined over the token graph (colour refinement, as in the
   graph-matching attacks of Culnane, Rubinstein and Teague, "Vulnerabilities in the use of
   similarity tables in combination with pseudonymisation to preserve data privacy in the
   UK Office for National Statistics' privacy-preserving record linkage", 2017, and
   Vidanage et al., "A graph matching attack on privacy-preserving record linkage", CIKM
   2020): a record starts with its plain attributes and each token's and filter's
   frequency (not its bit count: collisions of bit positions differ between
   keys); a token then takes the multiset of its records' colours, and a
   record its tokens' colours. Records whose final colour is unique on both sides match;
   a colour shared by k records on both sides is matched in file order (right by chance
   1/k when rows are shuffled).
"""

from dataclasses import dataclass

import numpy as np
import pandas as pd

from bench.attacks.view import RECORD_KEYS, View

CONFIRM = 0.9
ROUNDS = 3
MASK = np.uint64(0xFFFFFFFFFFFFFFFF)


@dataclass
class CarryOver:
    """Per key-2 record: the key-1 row it is tied to (-1 where none), and how."""

    rows: np.ndarray
    method: str
    unique_share: float


def carry_over_attack(one: View, two: View) -> CarryOver:
    """Tie each record of view ``two`` (key 2) to a record of view ``one`` (key 1)."""
    method, rows = "", np.full(len(two.tokens), -1)
    for method, tie in TIES.items():  # noqa: B007 (the method used is reported)
        rows = tie(one, two)
        if _confirmed(one, two, rows):
            break
    # whatever tied them, how many records the fingerprints alone single out for certain
    return CarryOver(rows, method, _unique_colour_share(one, two))


def tie_by_record_id(one: View, two: View) -> np.ndarray:
    """Key-1 row per key-2 row on the record keys (-1 where none)."""
    return _tie_on(one, two, RECORD_KEYS)


def tie_by_file_order(one: View, two: View) -> np.ndarray:
    """Key-1 row per key-2 row on bundle and position in the file."""
    return _tie_on(one, two, ["bundle", "row"])


def _tie_on(one: View, two: View, keys: list[str]) -> np.ndarray:
    if not all(k in one.tokens and k in two.tokens for k in keys):
        return np.full(len(two.tokens), -1)
    right = one.tokens[keys].astype(str).assign(one_row=np.arange(len(one.tokens)))
    right = right.drop_duplicates(keys, keep=False)
    joined = two.tokens[keys].astype(str).merge(right, on=keys, how="left")
    return joined.one_row.fillna(-1).astype(int).to_numpy()


def _confirmed(one: View, two: View, rows: np.ndarray) -> bool:
    """A tie is right if the plain attributes of tied records agree nearly always."""
    found = rows >= 0
    if found.mean() < 0.5:
        return False
    plain = [c for c in two.plain_columns() if c in one.tokens]
    if not plain:
        return False
    theirs = one.tokens[plain].iloc[rows[found]].astype(str).to_numpy()
    ours = two.tokens[plain].iloc[np.flatnonzero(found)].astype(str).to_numpy()
    return bool((theirs == ours).all(axis=1).mean() >= CONFIRM)


def _mix(values: np.ndarray) -> np.ndarray:
    """splitmix64 finaliser: a well-spread 64-bit hash of 64-bit integers."""
    z = values.astype(np.uint64)
    with np.errstate(over="ignore"):
        z = (z + np.uint64(0x9E3779B97F4A7C15)) & MASK
        z = ((z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)) & MASK
        z = ((z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)) & MASK
    return z ^ (z >> np.uint64(31))


def _combine(colour: np.ndarray, value: np.ndarray) -> np.ndarray:
    with np.errstate(over="ignore"):
        return _mix(colour ^ _mix(value.astype(np.uint64)))


def _text_hash(values: pd.Series) -> np.ndarray:
    return pd.util.hash_array(values.astype(str).to_numpy(dtype=object)).astype(np.uint64)


def colours(view: View, rounds: int = ROUNDS) -> np.ndarray:
    """Key-independent colour of every record after ``rounds`` of refinement."""
    tokens = view.tokens
    encoded = sorted(view.token_columns() + view.bloom_columns())  # bundle order must not
    # matter
    colour = _text_hash(tokens["source"]) if "source" in tokens else np.zeros(len(tokens),
                                                                             np.uint64)
    for column in sorted(view.plain_columns()):
        colour = _combine(colour, _text_hash(tokens[column]))
    codes = {c: pd.factorize(tokens[c])[0] for c in encoded}
    for column in encoded:  # how many records carry each token: the same under any key
        frequency = np.bincount(codes[column] + 1)[codes[column] + 1]
        colour = _combine(colour, np.where(codes[column] >= 0, frequency, 0))
    for _ in range(rounds):
        refined = colour
        for column in encoded:
            refined = _combine(refined, _token_colour(codes[column], colour))
        colour = refined
    return colour


def _token_colour(codes: np.ndarray, colour: np.ndarray) -> np.ndarray:
    """Each record's token's colour: the multiset of its records' colours (a sum of their
    hashes, which ignores order), 0 where the record has no token."""
    present = codes >= 0
    total = np.zeros(int(codes.max()) + 1 if present.any() else 1, dtype=np.uint64)
    np.add.at(total, codes[present], _mix(colour[present]))
    return np.where(present, total[np.maximum(codes, 0)], np.uint64(0))


def tie_by_colours(one: View, two: View) -> np.ndarray:
    """Key-1 row per key-2 row: equal colours, matched in file order within a colour."""
    left = pd.DataFrame({"colour": colours(one), "one_row": np.arange(len(one.tokens))})
    right = pd.DataFrame({"colour": colours(two), "two_row": np.arange(len(two.tokens))})
    left["nth"] = left.groupby("colour").cumcount()
    right["nth"] = right.groupby("colour").cumcount()
    joined = right.merge(left, on=["colour", "nth"], how="left").sort_values("two_row")
    return joined.one_row.fillna(-1).astype(int).to_numpy()


def _unique_colour_share(one: View, two: View) -> float:
    """Share of key-2 records whose colour is unique on both sides (certain matches)."""
    a, b = pd.Series(colours(one)), pd.Series(colours(two))
    once_a = a.map(a.value_counts()) == 1
    once_b = b.map(b.value_counts()) == 1
    return round(float((once_b & b.isin(a[once_a])).mean()), 4)


TIES = {"record id": tie_by_record_id, "file order": tie_by_file_order,
        "graph fingerprints": tie_by_colours}
