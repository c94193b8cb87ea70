"""One `linkage explain`: why records were linked or left apart, read from the spine alone.

The records are named by their unique id (``source|provider|period|record_id``, the record
key as the linkage unit holds it) or as every record of one person. Each pair among them is
given as the spine's latest version scored it (``scored_pair``): the waterfall of match
weights, whether clustering considered it, and whether the two records are now one person.
No token and no value is read: agreement levels, weights and the records' keys only.
"""

import json
from itertools import combinations
from pathlib import Path

import pandas as pd

from linkage.match.explain import level_table, waterfall
from linkage.match.model import match_settings
from linkage.match.run import UNIQUE_ID_SQL as UNIQUE_ID
from linkage.match.run import kept_pairs_sql
from linkage.sources.schema import RECORD_KEY
from linkage.spine.store import connect, current_version, held_decisions, scored_pairs_kept

MAX_PAIRS = 500  # pairs one explanation gives at most (a person of 32 records has 496)


class ExplainError(Exception):
    """The request cannot be explained from this spine; the message says why."""


def explain(spine: Path, records: list[str], person: str | None = None) -> dict:
    """The explanation of the records given (one record: each pair scored with it; two or
    more: each pair among them) or of every record of ``person``, in the spine's latest
    version."""
    if not records and person is None:
        raise ExplainError("name the records to explain (source|provider|period|record_id), "
                           "or a person with --person")
    con = connect(spine, read_only=True)
    try:
        version = current_version(con)
        if version == 0:
            raise ExplainError(f"{spine}: has no linked version yet")
        if not scored_pairs_kept(con):
            raise ExplainError(f"{spine}: version {version} kept no scored pairs (linked by "
                               "an earlier version of linkage): link again to explain it")
        model = json.loads(con.execute("SELECT model FROM spine_version WHERE version = ?",
                                       [version]).fetchall()[0][0])
        chosen = _chosen(con, version, records, person)
        pairs, others = _scored(con, version, chosen, single=len(chosen) == 1)
        decided = _decided(con, version)
    finally:
        con.close()
    return {"version": version, "threshold_probability": match_settings()["threshold"],
            "records": _described(chosen), "pairs": _explained(chosen, others, pairs, model,
                                                                 decided)}


def _decided(con, version: int) -> dict[frozenset, dict]:
    """The reviewers' decisions in force at the version, by their pair of records."""
    held = con.execute("SELECT count(*) FROM duckdb_tables() WHERE table_name = "
                       "'review_decision'").fetchall()[0][0]
    if not held:  # a spine linked before decisions were kept
        return {}
    return {frozenset((d.record_l, d.record_r)): {"decision": d.decision,
                                                  "decided_in_version": int(d.decided_in_version)}
            for d in held_decisions(con, version).itertuples()}


def _chosen(con, version: int, records: list[str], person: str | None) -> pd.DataFrame:
    """The records asked for, with their number in this version's scoring and person."""
    columns = f"record_number, person_key, {', '.join(RECORD_KEY)}, link_confidence"
    if person is not None:
        found = con.execute(f"SELECT {UNIQUE_ID} AS unique_id, {columns} FROM person_record "
                            "WHERE version = ? AND person_key = ? ORDER BY record_number",
                            [version, person]).df()
        if found.empty:
            raise ExplainError(f"--person: no person of that key in version {version}")
        return found
    asked = pd.DataFrame({"unique_id": records, "position": range(1, len(records) + 1)})
    con.register("asked_records", asked)
    found = con.execute(f"""SELECT a.position, r.* FROM asked_records a LEFT JOIN (
        SELECT {UNIQUE_ID} AS unique_id, {columns} FROM person_record WHERE version = ?) r
        USING (unique_id) ORDER BY a.position""", [version]).df()
    con.unregister("asked_records")
    missing = found[found.person_key.isna()]
    if len(missing):
        position = int(missing.position.iloc[0])
        raise ExplainError(f"record {position} given is not a record of version {version} "
                           "(give source|provider|period|record_id as the spine holds it)")
    if found.unique_id.duplicated().any():
        raise ExplainError("a record is given twice: give each once")
    return found.drop(columns="position").astype({"record_number": int})


def _scored(con, version: int, chosen: pd.DataFrame, single: bool
            ) -> tuple[pd.DataFrame, pd.DataFrame | None]:
    """The scored pairs among the chosen records; one record: every pair with it, and the
    other records of those pairs (None for two records or more)."""
    con.register("chosen_records", chosen[["record_number"]])
    among = ("record_l IN (SELECT record_number FROM chosen_records) OR "
             "record_r IN (SELECT record_number FROM chosen_records)" if single else
             "record_l IN (SELECT record_number FROM chosen_records) AND "
             "record_r IN (SELECT record_number FROM chosen_records)")
    pairs = con.execute(f"""SELECT *, {kept_pairs_sql("prelinked")} AS kept FROM scored_pair
        WHERE {among} ORDER BY record_l, record_r""").df()
    con.unregister("chosen_records")
    if not single:
        return pairs, None
    others = sorted((set(pairs.record_l) | set(pairs.record_r)) - set(chosen.record_number))
    return pairs, _records_numbered(con, version, others)


def _records_numbered(con, version: int, numbers: list[int]) -> pd.DataFrame:
    con.register("numbers", pd.DataFrame({"record_number": numbers}, dtype="int64"))
    found = con.execute(f"""SELECT {UNIQUE_ID} AS unique_id, record_number, person_key,
            {', '.join(RECORD_KEY)}, link_confidence FROM person_record
        WHERE version = ? AND record_number IN (SELECT record_number FROM numbers)
        ORDER BY record_number""", [version]).df()
    con.unregister("numbers")
    return found


def _described(chosen: pd.DataFrame) -> list[dict]:
    return [{"record": r.unique_id, "source": r.source, "provider": r.provider,
             "period": int(r.period), "person_key": r.person_key,
             "link_confidence": float(r.link_confidence)} for r in chosen.itertuples()]


def _explained(chosen: pd.DataFrame, others: pd.DataFrame | None, pairs: pd.DataFrame,
               model: dict, decided: dict[frozenset, dict]) -> list[dict]:
    """Each pair's waterfall and verdict: scored pairs, and (two records or more) the pairs
    among them that were never scored."""
    every = chosen if others is None else pd.concat([chosen, others], ignore_index=True)
    by_number = every.set_index("record_number")
    scored = {(int(p["record_l"]), int(p["record_r"])): p for p in pairs.to_dict("records")}
    levels = level_table(model).set_index(["comparison", "gamma"])
    wanted = (sorted(scored) if others is not None else
              list(combinations(sorted(chosen.record_number.astype(int)), 2)))
    if len(wanted) > MAX_PAIRS:
        raise ExplainError(f"{len(wanted):,} pairs: more than {MAX_PAIRS} to explain at once; "
                           "name fewer records")
    out = []
    for left, right in wanted:
        a, b = by_number.loc[left], by_number.loc[right]
        pair = scored.get((left, right))
        same = a.person_key == b.person_key
        entry = {"record_l": a.unique_id, "record_r": b.unique_id, "same_person": bool(same),
                 "scored": pair is not None}
        if pair is not None:
            entry["kept"] = bool(pair["kept"])
            entry["waterfall"] = waterfall(pair, model, levels)
        decision = decided.get(frozenset((a.unique_id, b.unique_id)))
        if decision is not None:
            entry["review_decision"] = decision
        entry["verdict"] = verdict(entry)
        out.append(entry)
    return out


def verdict(entry: dict) -> str:
    """One sentence on what became of a pair, and why."""
    decision = entry.get("review_decision")
    if decision is not None:
        kept = "one person" if entry["same_person"] else "kept apart"
        return (f"{kept}: a reviewer decided {decision['decision']} in version "
                f"{decision['decided_in_version']}, which holds whatever the evidence says")
    same = entry["same_person"]
    if not entry["scored"]:
        return ("one person through other records: this pair was not scored at a match "
                "probability of 0.1 or more (no blocking rule paired them, or too little "
                "evidence)" if same else
                "not linked: this pair was not scored at a match probability of 0.1 or more "
                "(no blocking rule paired them, or too little evidence)")
    probability = entry["waterfall"]["splink_match_probability"]
    if entry["kept"] and same:
        how = ("a pre-link (one provider's record across periods), held unless its evidence "
               "is strongly against" if not entry["waterfall"]["above_threshold"] else
               "the pair scored at or above the threshold")
        return f"linked: {how} (probability {probability:.4f})"
    if entry["kept"]:
        return ("kept apart although the pair scored enough to join: clustering refused the "
                "join (a conflict with another record of either person, such as two "
                "different UPNs or two records of one return, or the spine's persons held "
                f"fixed) (probability {probability:.4f})")
    if same:
        return (f"one person through other records: this pair alone scored below the "
                f"threshold (probability {probability:.4f})")
    return f"not linked: the pair scored below the threshold (probability {probability:.4f})"
