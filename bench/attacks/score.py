"""Scoring, kept apart from attacking: only this module reads the world's plaintext and truth.

Each linkage-unit record is mapped back to the plaintext its provider hashed: the same tokens
table made without a key (``tokenise(data, None, schema)``: names as text, dates as ISO text),
joined on the record keys. Today record ids travel in the clear, so the join is on them. When
record ids become keyed pseudonyms, give the scorer the linkage key (``--key``) and
``record_pseudonyms`` computes the same pseudonyms from the plain ids.
"""

from pathlib import Path

import numpy as np
import pandas as pd

from bench.attacks.view import RECORD_KEYS, View
from linkage.pseudonymise.bloom import normalise_name


def plaintext_records(world: Path, key: bytes | None = None) -> pd.DataFrame:
    """The plaintext of every provider's records (the unkeyed tokens table) with
    ``person_id`` from the truth; record ids replaced by their pseudonyms when ``key`` given."""
    from linkage.pipelines.delivery import folder_entries
    from linkage.pseudonymise.bundle import linkage_schema, tokenise

    schema = linkage_schema()
    frames = []
    for entry in folder_entries(world):  # every source, generic ones through their mapping
        table = tokenise(read_entry(entry), None, schema)
        frames.append(table.assign(bundle=entry.bundle))
    plain = pd.concat(frames, ignore_index=True)
    truth = pd.read_parquet(world / "truth" / "records.parquet")
    ids = truth[[*RECORD_KEYS, "person_id"]].astype({"provider": str, "period": "int64"})
    plain = plain.astype({"provider": str, "period": "int64"}).merge(
        ids.drop_duplicates(RECORD_KEYS), on=RECORD_KEYS, how="left")
    if key is not None:
        plain["record_id"] = record_pseudonyms(plain, key)
    return plain


def read_entry(entry):
    """A delivery entry's files read as ``linkage hash`` reads them."""
    from linkage.sources import read_source

    return read_source(entry.source, list(entry.paths), entry.mapping, entry.provider,
                       entry.period)


def record_pseudonyms(plain: pd.DataFrame, key: bytes) -> pd.Series:
    """The record-id pseudonyms the bundles carry (computed with the linkage key: the
    scorer's privilege, never the attacker's)."""
    from linkage.pseudonymise.bundle import record_pseudonyms as pseudonyms

    return pseudonyms(plain.provider, plain.record_id, key)


def aligned_truth(view: View, plain: pd.DataFrame) -> pd.DataFrame:
    """The plaintext row of each view row (same index as ``view.tokens``)."""
    keys = view.tokens[RECORD_KEYS].astype({"provider": str, "period": "int64"})
    joined = keys.merge(plain.drop_duplicates(RECORD_KEYS), on=RECORD_KEYS, how="left")
    joined.index = view.tokens.index
    return joined


def exact_share(guesses: pd.Series, truth: pd.Series) -> dict:
    """Share of records with a true value whose guess equals it exactly."""
    truth = truth.astype(object).where(truth.notna(), None)
    present = truth.map(lambda v: v not in (None, ""))
    hits = (guesses.astype(object).to_numpy() == truth.to_numpy()) & present.to_numpy()
    return {"records": int(present.sum()), "recovered": int(hits.sum()),
            "share": round(float(hits.sum() / max(int(present.sum()), 1)), 4)}


def name_truth(truth: pd.DataFrame, column: str) -> pd.Series:
    """The normalised plaintext name of a Bloom filter column."""
    plain = truth[column.removesuffix("_bloom")] if column.removesuffix("_bloom") in truth \
        else pd.Series(None, index=truth.index)
    return normalise_name(plain.fillna("").astype(str)).replace("", None)


def birth_year_share(guesses: pd.Series, truth: pd.Series) -> dict:
    """Share of records whose guessed date of birth has the right year."""
    return exact_share(guesses.astype(str).str.slice(0, 4).where(guesses.notna(), None),
                       truth.astype(str).str.slice(0, 4).where(truth.notna(), None))


def looked_after(world: Path) -> set[int]:
    """Truth: people with any SSDA903 (looked-after) record."""
    truth = pd.read_parquet(world / "truth" / "records.parquet", columns=["source",
                                                                          "person_id"])
    return set(truth.person_id[truth.source == "ssda903"].astype(int))


def membership_score(flags: pd.Series, pupils: pd.DataFrame, world: Path) -> dict:
    """Precision, share of looked-after pupils flagged, and that share beyond chance (minus
    the share of pupils flagged: what flagging the same number at random would catch)."""
    truth = pd.read_parquet(world / "truth" / "records.parquet")
    ids = truth[[*RECORD_KEYS, "person_id"]].astype({"provider": str, "period": "int64"})
    keyed = pupils[RECORD_KEYS].astype({"provider": str, "period": "int64"}).merge(
        ids, on=RECORD_KEYS, how="left")
    actual = keyed.person_id.isin(looked_after(world)).to_numpy()
    flagged = flags.to_numpy(dtype=bool)
    hits = int((actual & flagged).sum())
    recall = hits / max(int(actual.sum()), 1)
    flagged_share = float(flagged.mean()) if len(flagged) else 0.0
    return {"pupil_records": len(pupils), "looked_after": int(actual.sum()),
            "base_rate": round(float(actual.mean()), 4), "flagged": int(flagged.sum()),
            "precision": round(hits / max(int(flagged.sum()), 1), 4),
            "flagged_share_correct": round(recall, 4),
            "beyond_chance": round(recall - flagged_share, 4)}


def same_record_share(guess_rows: np.ndarray, view_two: View, view_one: View) -> dict:
    """Carry-over: share of key-2 records tied to the key-1 row of the same record (equal
    record keys; with pseudonymised ids both views' ids must first be mapped back)."""
    two = view_two.tokens[RECORD_KEYS].astype({"provider": str, "period": "int64"})
    one = view_one.tokens[RECORD_KEYS].astype({"provider": str, "period": "int64"})
    guessed = guess_rows >= 0
    right = np.zeros(len(two), dtype=bool)
    rows = guess_rows[guessed]
    right[guessed] = (two[guessed].to_numpy() == one.iloc[rows].to_numpy()).all(axis=1)
    return {"records": len(two), "guessed": int(guessed.sum()), "correct": int(right.sum()),
            "share": round(float(right.mean()) if len(right) else 0.0, 4),
            "precision": round(int(right.sum()) / max(int(guessed.sum()), 1), 4)}
