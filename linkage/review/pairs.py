"""The pairs a clerical review offers, read from the spine alone (the linkage unit's role:
no key is needed, and no token is read).

Two kinds: pairs whose match weight is near the threshold (closest first), and persons whose
records disagree: a scored pair inside one person that falls in the else level of a
comparison the review names (two dates of birth, two UPNs), or a record with no scored pair
at or above the threshold to the rest of its person (joined by a pre-link or an earlier
version). Each pair comes with its agreement pattern (``explain.waterfall``), whether it is in
one person now, and each record's context: source, provider, period, its person's records by
source and its family memberships. Pairs the spine holds a decision on are left out (they are
applied at every link). Records are named by unique id only in the hidden reference a
decisions file needs.
"""

import hashlib
import json
import math
from dataclasses import dataclass

import pandas as pd

from linkage.config import load_config
from linkage.match.explain import level_table, waterfall
from linkage.match.run import UNIQUE_ID_SQL, threshold_match_weight
from linkage.spine.store import SpineError, current_version, scored_pairs_kept

NEAR, DISAGREE = "near the threshold", "a person whose records disagree"


def review_settings() -> dict:
    """configs/review.yaml: the window around the threshold, the limit, and the comparisons
    whose disagreement inside one person is worth a look."""
    return load_config("review.yaml")


@dataclass
class ReviewPairs:
    """What the review page shows, and its fingerprint."""

    version: int
    threshold_weight: float
    within: float
    pairs: list[dict]            # each: kind, reason, pattern, records, in_one_person
    found: dict                  # pairs near the threshold and persons found (before limit)

    @property
    def pairs_sha256(self) -> str:
        """SHA-256 of the pairs offered, in order (kind and the two unique ids): a decisions
        file says which page it was made on."""
        listed = [[p["kind"], p["record_l"], p["record_r"]] for p in self.pairs]
        return hashlib.sha256(json.dumps(listed).encode()).hexdigest()


def review_pairs(con, spine: str, within: float, limit: int) -> ReviewPairs:
    """The pairs to review in the spine's latest version (``con`` open read-only)."""
    version = current_version(con)
    if not version or not scored_pairs_kept(con) or con.execute(
            "SELECT count(*) FROM scored_pair WHERE version <> ?", [version]).fetchone()[0]:
        raise SpineError(f"{spine}: holds no scored pairs of its latest version; link it with "
                         "this version of linkage (linkage link --spine SPINE) and review again")
    model = json.loads(con.execute("SELECT model FROM spine_version WHERE version = ?",
                                   [version]).fetchone()[0])
    threshold = threshold_match_weight()
    _records_table(con, version)
    decided = _decided_table(con, version)
    near = _near_threshold(con, threshold, within)
    disagree = _disagreeing(con, model, threshold, near)
    chosen = pd.concat([near.head(limit).assign(kind=NEAR),
                        disagree.head(limit).assign(kind=DISAGREE)], ignore_index=True)
    context = _context(con, version, chosen)
    levels = level_table(model).set_index(["comparison", "gamma"])  # once for every pair
    pairs = [_pair(row, model, levels, context) for row in chosen.to_dict("records")]
    return ReviewPairs(version, threshold, within, pairs,
                       {"near_threshold": len(near), "persons_disagreeing": len(disagree),
                        "already_decided": decided})


def _records_table(con, version: int) -> None:
    """Each record of the version by record number, with its person as a small number: the
    joins over every scored pair (ten million at national scale) stay on integers; unique
    ids are looked up for the pairs shown only (``_context``)."""
    con.execute(f"""CREATE OR REPLACE TEMP TABLE review_records AS
        SELECT record_number, CAST(dense_rank() OVER (ORDER BY person_key) AS INTEGER) AS person
        FROM person_record WHERE version = {int(version)}""").fetchall()


# scored pairs with whether their records are one person, less those the spine holds a
# decision on
PAIR_SQL = """SELECT p.*, l.person = r.person AS in_one_person, l.person AS person_l
    FROM scored_pair p JOIN review_records l ON l.record_number = p.record_l
    JOIN review_records r ON r.record_number = p.record_r
    ANTI JOIN review_decided d ON d.record_l = p.record_l AND d.record_r = p.record_r"""


def _decided_table(con, version: int) -> int:
    """The pairs the spine holds a decision on, by record number (a spine linked before
    reviews had none); returns how many of them are scored pairs, which the page leaves
    out: decided once, they are applied at every link and need no second look."""
    has = con.execute("SELECT count(*) FROM duckdb_tables() WHERE table_name = "
                      "'review_decision'").fetchone()[0]
    decided = (f"SELECT record_l, record_r FROM review_decision WHERE version = {int(version)}"
               " AND applied" if has else
               "SELECT NULL::VARCHAR AS record_l, NULL::VARCHAR AS record_r WHERE false")
    con.execute(f"""CREATE OR REPLACE TEMP TABLE review_decided AS
        WITH numbered AS (SELECT record_number, {UNIQUE_ID_SQL} AS unique_id
                          FROM person_record WHERE version = {int(version)}
                          AND {UNIQUE_ID_SQL} IN (SELECT record_l FROM ({decided}) UNION
                                                  SELECT record_r FROM ({decided})))
        SELECT least(l.record_number, r.record_number) AS record_l,
               greatest(l.record_number, r.record_number) AS record_r
        FROM ({decided}) d JOIN numbered l ON l.unique_id = d.record_l
        JOIN numbered r ON r.unique_id = d.record_r""").fetchall()
    return con.execute("""SELECT count(*) FROM scored_pair p SEMI JOIN review_decided d
        ON d.record_l = p.record_l AND d.record_r = p.record_r""").fetchone()[0]


def _near_threshold(con, threshold: float, within: float) -> pd.DataFrame:
    """Pairs within ``within`` bits of the threshold, closest first (ties: record order)."""
    return con.execute(f"""{PAIR_SQL}
        WHERE abs(p.match_weight - ?) <= ?
        ORDER BY abs(p.match_weight - ?), p.record_l, p.record_r""",
                       [threshold, within, threshold]).df().assign(reason="")


def _disagreeing(con, model: dict, threshold: float, near: pd.DataFrame) -> pd.DataFrame:
    """One pair per person whose records disagree (its weakest such pair), weakest first;
    a pair sharing a record with a pair near the threshold is left out (shown there)."""
    compared = {c["output_column_name"] for c in model["comparisons"]}
    named = [c for c in review_settings()["disagreeing_comparisons"] if c in compared]
    differ = " OR ".join(f"p.gamma_{c} = 0" for c in named) or "false"
    reasons = " ".join(f"WHEN p.gamma_{c} = 0 THEN '{c.replace('_', ' ')} differs inside "
                       "one person'" for c in named)
    frame = con.execute(f"""
        WITH inside AS ({PAIR_SQL} WHERE l.person = r.person),
        lonely AS (  -- records with no pair at or above the threshold inside their person
            SELECT rid FROM (SELECT record_l AS rid, match_weight FROM inside UNION ALL
                             SELECT record_r, match_weight FROM inside)
            GROUP BY rid HAVING max(match_weight) < {threshold!r}),
        flagged AS (
            SELECT p.*, CASE {reasons} ELSE 'a record with no pair above the threshold to '
                   || 'the rest of its person' END AS reason
            FROM inside p
            WHERE ({differ}) OR p.record_l IN (SELECT rid FROM lonely)
               OR p.record_r IN (SELECT rid FROM lonely))
        SELECT * EXCLUDE (person_l, pick) FROM (
            SELECT *, row_number() OVER (PARTITION BY person_l
                ORDER BY match_weight, record_l, record_r) AS pick FROM flagged)
        WHERE pick = 1 ORDER BY match_weight, record_l, record_r""").df()
    shown = set(near.record_l) | set(near.record_r)
    return frame[~(frame.record_l.isin(shown) | frame.record_r.isin(shown))].reset_index(
        drop=True)


def _context(con, version: int, chosen: pd.DataFrame) -> pd.DataFrame:
    """Each chosen record's context, by record number: source, provider, period, its
    person's records and sources, and the family tables' memberships (counts only)."""
    numbers = pd.DataFrame({"record_number": pd.unique(
        pd.concat([chosen.record_l, chosen.record_r]) if len(chosen) else pd.Series([]))})
    con.register("chosen_records", numbers.astype({"record_number": "int64"}))
    v = int(version)
    frame = con.execute(f"""
        WITH shown AS (SELECT record_number, {UNIQUE_ID_SQL} AS unique_id, person_key,
                              source, provider, period FROM person_record
                       WHERE version = {v} AND record_number IN (
                           SELECT record_number FROM chosen_records)),
        persons AS (SELECT person_key, sum(n) AS records,
                           string_agg(source || ' ' || n, ', ' ORDER BY source) AS sources
                    FROM (SELECT person_key, source, count(*) AS n FROM person_record
                          WHERE version = {v} AND person_key IN (
                              SELECT person_key FROM shown) GROUP BY 1, 2) GROUP BY 1),
        siblings AS (SELECT person_key, max(group_size) AS size FROM sibling_group
                     WHERE version = {v} GROUP BY 1),
        adopters AS (SELECT person_key, max(adopters) AS adopters FROM adopter_household
                     WHERE version = {v} GROUP BY 1),
        placed AS (SELECT child_person_key AS person_key, count(*) AS households
                   FROM child_adopter_link WHERE version = {v} GROUP BY 1),
        children AS (SELECT mother_person_key AS person_key, count(*) AS children
                     FROM mother_child_link WHERE version = {v} GROUP BY 1),
        mothers AS (SELECT child_person_key AS person_key, count(*) AS mothers
                    FROM mother_child_link WHERE version = {v} GROUP BY 1)
        SELECT r.record_number, r.unique_id, r.source, r.provider, r.period, p.records,
               p.sources,
               s.size AS sibling_group_size, a.adopters AS household_adopters,
               coalesce(pl.households, 0) AS adopter_households_linked,
               coalesce(c.children, 0) AS children_linked,
               coalesce(m.mothers, 0) AS mothers_linked
        FROM shown r JOIN persons p USING (person_key) LEFT JOIN siblings s USING (person_key)
        LEFT JOIN adopters a USING (person_key) LEFT JOIN placed pl USING (person_key)
        LEFT JOIN children c USING (person_key) LEFT JOIN mothers m USING (person_key)
        ORDER BY r.record_number""").df()
    con.unregister("chosen_records")
    return frame.set_index("record_number")


def _pair(row: dict, model: dict, levels: pd.DataFrame, context: pd.DataFrame) -> dict:
    """One pair as the page shows it: no token, no key, no record id on show."""
    steps = waterfall(row, model, levels)
    for step in steps["comparisons"]:
        step["comparison"] = step["comparison"].replace("_", " ")
        if step["gamma"] == -1:  # the model's label for it is the SQL of a missing value
            step["level"] = "missing on a record: no evidence"
    return {"kind": row["kind"], "reason": row["reason"],
            "record_l": context.unique_id[int(row["record_l"])],
            "record_r": context.unique_id[int(row["record_r"])],
            "in_one_person": bool(row["in_one_person"]), "pattern": steps,
            "records": [_record(context.loc[int(row[side])]) for side in ("record_l",
                                                                           "record_r")]}


def _record(facts: pd.Series) -> dict:
    family = []
    if _present(facts.sibling_group_size):
        family.append(f"in a sibling group of {int(facts.sibling_group_size)}")
    if _present(facts.household_adopters):
        family.append(f"an adopter in a household of {int(facts.household_adopters)}")
    if facts.adopter_households_linked:
        family.append(f"linked to {int(facts.adopter_households_linked)} adopter household(s)")
    if facts.children_linked:
        family.append(f"mother of {int(facts.children_linked)} linked child(ren)")
    if facts.mothers_linked:
        family.append("linked to a mother")
    return {"source": facts.source, "provider": facts.provider, "period": int(facts.period),
            "person_records": int(facts.records), "person_sources": facts.sources,
            "family": family or ["no family link"]}


def _present(value) -> bool:
    return value is not None and not (isinstance(value, float) and math.isnan(value)) \
        and value is not pd.NA
