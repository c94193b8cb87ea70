"""Bit-position recovery on name Bloom filters, then decoding every filter to a public name.

After Christen, Ranbaduge, Vatsalan and Schnell, "Precise and fast cryptanalysis for Bloom
filter based privacy-preserving record linkage" (IEEE TKDE 2019) and Christen, Schnell,
Vatsalan and Ranbaduge (PAKDD 2017, pattern-mining based cryptanalysis): bit positions that
are set together in exactly the filters whose names hold a bigram belong to that bigram.

1. Undo ``balanced`` hardening when every filter has half its bits set: the complement's
   positions are those set in more than half of the filters (names set few bits), so keeping
   the sparse half gives the plain filter back, in a permuted order that does not matter.
2. Seed pairs by frequency alignment (most common filter <-> most common public name, per
   column kind and sex), pooling every name column: they share one subkey.
3. For each bigram, keep the ``hashes`` positions set most often in filters whose seed name
   holds the bigram and least often in the others (a frequent-pattern score).
4. Decode every distinct filter to the public name whose predicted filter is closest (Dice),
   then re-learn positions from confident decodings and decode again.

Run separately per group of filters that share a salt token, when one exists.
"""

import numpy as np
import pandas as pd

from bench.attacks.frequency import grouping_columns
from bench.attacks.knowledge import Knowledge
from bench.attacks.view import View
from linkage.pseudonymise.bloom import bigrams

SEEDS_PER_CLASS = 10      # top-ranked filters per length class trusted as seeds
MIN_SUPPORT = 2           # seed pairs a bigram needs before its positions are learned
CONFIDENT_DICE = 0.7      # decodings trusted when re-learning
SEED_SHARE = 0.5          # first round: a bigram's positions set in half its seeds (some wrong)
REFINEMENTS = 2
MIN_GROUP_FILTERS = 50    # a salt group with fewer distinct filters is not attacked


def pattern_mining_attack(view: View, knowledge: Knowledge, seed: int = 0
                          ) -> dict[str, pd.Series]:
    """Per Bloom filter column: the decoded name of every row (None where not attacked)."""
    columns = view.bloom_columns()
    occurrences = _occurrences(view, columns)
    out = {c: pd.Series(None, index=view.tokens.index, dtype=object) for c in columns}
    if not len(occurrences):
        return out
    hashes = _bloom_hashes(view)
    for _, group in occurrences.groupby("salt", sort=True):
        decoded = _attack_group(group, knowledge, hashes, seed)
        for column, rows in decoded.groupby("column"):
            out[column].loc[rows.index] = rows.guess.to_numpy()
    return out


def _bloom_hashes(view: View) -> int:
    """Bit positions per bigram: public (each manifest's ``bloom``), 15 if not stated."""
    for manifest in view.manifests:
        if "bloom" in manifest and "hashes" in manifest["bloom"]:
            return int(manifest["bloom"]["hashes"])
    return 15


def _occurrences(view: View, columns: list[str]) -> pd.DataFrame:
    """One row per (record, filter column) with a filter: its bytes, person, sex and salt."""
    tokens = view.tokens
    people = view.person_keys()
    people = people.where(people.notna(), "r" + tokens.index.astype(str))
    frames = []
    for column in columns:
        present = tokens[column].notna()
        sex = _sex_column(view, column)
        salt = _salt_column(view, column)
        frames.append(pd.DataFrame({
            "column": column, "filter": tokens.loc[present, column],
            "person": people[present],
            "sex": tokens.loc[present, sex].astype(str) if sex else "",
            "salt": tokens.loc[present, salt].astype(str) if salt else ""}))
    return pd.concat(frames) if frames else pd.DataFrame()


def _sex_column(view: View, column: str) -> str | None:
    groups = [g for g in grouping_columns(view, column) if g in view.plain_columns()]
    return groups[0] if groups else None


def _salt_column(view: View, column: str) -> str | None:
    salts = [g for g in grouping_columns(view, column) if "salt" in g.lower()]
    return salts[0] if salts else None


def _attack_group(occurrences: pd.DataFrame, knowledge: Knowledge, hashes: int, seed: int
                  ) -> pd.DataFrame:
    """Decode the filters of one salt group; returns ``occurrences`` with a ``guess``."""
    codes, distinct = pd.factorize(occurrences["filter"])
    if len(distinct) < MIN_GROUP_FILTERS:
        return occurrences.assign(guess=None)
    bits = unhardened(filter_bits(distinct))
    candidates = _candidates(knowledge)
    classes = bigram_count_estimate(bits, hashes)
    seeds = _seed_pairs(occurrences.assign(code=codes, length=classes[codes]), knowledge,
                        seed)
    kinds = _filter_kinds(occurrences.assign(code=codes), len(distinct))
    weights = np.sqrt(np.bincount(codes, minlength=len(distinct)))
    positions = np.zeros((len(candidates.vocabulary), bits.shape[1]), dtype=bool)
    pair_codes, pair_names = seeds.code.to_numpy(), seeds.name.to_numpy()
    min_support, min_share = MIN_SUPPORT, SEED_SHARE
    for _ in range(REFINEMENTS + 1):
        learned = learn_positions(bits[pair_codes], pair_names, candidates.vocabulary,
                                  hashes, weights[pair_codes], min_support, min_share)
        # a bigram without enough pairs this round keeps what it learned before
        renewed = learned.any(axis=1)
        positions[renewed] = learned[renewed]
        best, dice = decode(bits, positions, candidates, kinds)
        sure = np.flatnonzero(dice >= CONFIDENT_DICE)
        # later rounds trust confident decodings alone: they correct wrong seeds, and a
        # bigram one confident name holds can be learned from it
        pair_codes, pair_names = sure, candidates.names[best[sure]]
        min_support, min_share = 1, 0.8
    return occurrences.assign(guess=candidates.names[best][codes])


def filter_bits(filters: pd.Index | np.ndarray) -> np.ndarray:
    """Filters (bytes of equal length) as a bool matrix, one row per filter."""
    width = len(filters[0])
    raw = np.frombuffer(b"".join(filters), dtype=np.uint8).reshape(len(filters), width)
    return np.unpackbits(raw, axis=1).astype(bool)


def unhardened(bits: np.ndarray) -> np.ndarray:
    """Undo ``balanced`` hardening (filter + complement, permuted): when every filter has
    exactly half its bits set, keep the positions set in fewer than half of the filters,
    which are the plain filter's (names set few bits; their complements set many)."""
    counts = bits.sum(axis=1)
    if not (counts == bits.shape[1] // 2).all():
        return bits
    return bits[:, bits.mean(axis=0) < 0.5]


class _Candidates:
    """Public names, their bigrams as a matrix, and whether each is a forename or surname."""

    def __init__(self, knowledge: Knowledge):
        forenames = knowledge.forenames["all"].index.to_numpy(dtype=object)
        surnames = knowledge.surnames.index.to_numpy(dtype=object)
        self.names = np.concatenate([forenames, surnames])
        self.is_surname = np.r_[np.zeros(len(forenames), bool), np.ones(len(surnames), bool)]
        grams = [sorted(set(bigrams(name))) for name in self.names]
        self.vocabulary = np.array(sorted({g for gs in grams for g in gs}), dtype=object)
        self.gram_matrix = bigram_matrix(self.names, self.vocabulary)


def _candidates(knowledge: Knowledge) -> _Candidates:
    return _Candidates(knowledge)


def bigram_matrix(names: np.ndarray, vocabulary: np.ndarray) -> np.ndarray:
    """Names x vocabulary: whether each name holds each bigram."""
    index = {g: i for i, g in enumerate(vocabulary)}
    matrix = np.zeros((len(names), len(vocabulary)), dtype=bool)
    rows = [(r, index[g]) for r, name in enumerate(names) for g in bigrams(name) if g in index]
    if rows:
        r, c = np.array(rows).T
        matrix[r, c] = True
    return matrix


def bigram_count_estimate(bits: np.ndarray, hashes: int) -> np.ndarray:
    """Distinct bigrams each filter most likely holds: the count whose expected number of
    set bits, L (1 - (1 - 1/L)^(hashes b)), is nearest the filter's."""
    length = bits.shape[1]
    counts = np.arange(0, 40)
    expected = length * (1 - (1 - 1 / length) ** (hashes * counts))
    observed = bits.sum(axis=1)
    return counts[np.abs(observed[:, None] - expected[None, :]).argmin(axis=1)]


def _seed_pairs(occurrences: pd.DataFrame, knowledge: Knowledge, seed: int) -> pd.DataFrame:
    """(filter code, public name, people) by frequency rank within each column kind, sex
    and number of bigrams (a filter's bit count gives it away): far fewer rivals per rank."""
    occurrences = occurrences.assign(kind=occurrences.column)  # each column its own ranking
    occurrences.loc[occurrences.kind.str.contains("surname"), "sex"] = ""
    keys = ["kind", "sex", "length"]
    counts = occurrences.drop_duplicates([*keys, "code", "person"]).groupby(
        [*keys, "code"]).size().rename("people").reset_index()
    counts["tie"] = np.random.default_rng(seed).random(len(counts))
    counts = counts.sort_values([*keys, "people", "tie"],
                                ascending=[True, True, True, False, True])
    counts["rank"] = counts.groupby(keys).cumcount()
    frames = []
    for (kind, sex, length), group in counts.groupby(keys):
        public = knowledge.names_for(kind, sex if sex in ("F", "M") else None)
        lengths = np.array([len(set(bigrams(name))) for name in public.index])
        names = public.index.to_numpy(dtype=object)[lengths == length]
        group = group[group["rank"] < min(len(names), SEEDS_PER_CLASS)]
        frames.append(group.assign(name=names[group["rank"]]))
    return pd.concat(frames, ignore_index=True)


def learn_positions(bits: np.ndarray, names: np.ndarray, vocabulary: np.ndarray,
                    hashes: int, weights: np.ndarray, min_support: int = MIN_SUPPORT,
                    min_share: float = 0.8) -> np.ndarray:
    """Vocabulary x positions: the ``hashes`` positions of each bigram with enough support,
    those most often set when a name holds the bigram and least often when it does not."""
    holds = bigram_matrix(names, vocabulary).astype(np.float32) * weights[:, None]
    lacks = (~bigram_matrix(names, vocabulary)).astype(np.float32) * weights[:, None]
    set_bits = bits.astype(np.float32)
    with_share = (holds.T @ set_bits) / np.maximum(holds.sum(axis=0), 1e-9)[:, None]
    without_share = (lacks.T @ set_bits) / np.maximum(lacks.sum(axis=0), 1e-9)[:, None]
    score = with_share - without_share
    # a bigram's positions are set whenever it is there (``min_share`` allows for wrong pairs)
    score[with_share < min_share] = -np.inf
    support = bigram_matrix(names, vocabulary).sum(axis=0)
    top = np.argsort(-score, axis=1, kind="stable")[:, :hashes]
    positions = np.zeros((len(vocabulary), bits.shape[1]), dtype=bool)
    rows = np.repeat(np.arange(len(vocabulary)), hashes)
    positions[rows, top.ravel()] = np.isfinite(np.take_along_axis(score, top, 1)).ravel()
    positions[support < min_support] = False
    return positions


def _filter_kinds(occurrences: pd.DataFrame, size: int) -> np.ndarray:
    """Whether each distinct filter is mostly seen in a surname column."""
    surname = occurrences.column.str.contains("surname").to_numpy()
    votes = np.bincount(occurrences.code, weights=surname, minlength=size)
    return votes / np.maximum(np.bincount(occurrences.code, minlength=size), 1) > 0.5


def decode(bits: np.ndarray, positions: np.ndarray, candidates: _Candidates,
           is_surname: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Best public name (index) of each filter and its Dice similarity: each candidate's
    predicted filter is the union of its learned bigrams' positions."""
    predicted = (candidates.gram_matrix.astype(np.float32) @ positions.astype(np.float32)) > 0
    observed = bits.astype(np.float32)
    overlap = observed @ predicted.T.astype(np.float32)
    sizes = observed.sum(axis=1)[:, None] + predicted.sum(axis=1)[None, :]
    dice = 2 * overlap / np.maximum(sizes, 1)
    # a surname column's filter is decoded among surnames, a forename's among forenames
    wrong_kind = is_surname[:, None] != candidates.is_surname[None, :]
    dice[wrong_kind] = -1
    best = dice.argmax(axis=1)
    return best, dice[np.arange(len(best)), best]
