"""A reviewer's decisions as clustering constraints (``linkage.review.decisions``).

A must-link (match) is an edge joined first, before pre-links and whatever else the records
say; a cannot-link (non-match) is a conflict between two records, so no chain of pairs ever
puts them in one person. Decisions override the spine's persons held fixed (``anchors``): a
must-link between records of two of the spine's persons makes them one anchored person, and a
person holding both records of a cannot-link is no longer held fixed, so the model decides
its records afresh with the two kept apart.
"""

from dataclasses import dataclass

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa

from linkage.match.anchors import ANCHORS
from linkage.match.components import connected_components

MUST = "must_link"      # rid_l, rid_r: pairs a reviewer called one person
CANNOT = "cannot_link"  # rid_l, rid_r: pairs a reviewer called two persons


@dataclass(frozen=True)
class Decided:
    """The pairs decided, each by the two records' unique ids (record_l, record_r)."""

    must: pd.DataFrame
    cannot: pd.DataFrame


def decided_tables(con: duckdb.DuckDBPyConnection, decided: Decided | None,
                   records: str = "linking_records") -> tuple[str | None, str | None]:
    """The decided pairs as record numbers (``rid``, smaller first) in two tables; their
    names, or None where there is none."""
    names = []
    for table, pairs in ((MUST, None if decided is None else decided.must),
                         (CANNOT, None if decided is None else decided.cannot)):
        if pairs is None or pairs.empty:
            names.append(None)
            continue
        con.register("decided_pairs", pa.table({c: pairs[c].astype(str).tolist()
                                                for c in ("record_l", "record_r")}))
        con.execute(f"""CREATE OR REPLACE TEMP TABLE {table} AS
            SELECT least(l.rid, r.rid) AS rid_l, greatest(l.rid, r.rid) AS rid_r
            FROM decided_pairs d JOIN {records} l ON l.unique_id = d.record_l
            JOIN {records} r ON r.unique_id = d.record_r ORDER BY 1, 2""").fetchall()
        con.unregister("decided_pairs")
        names.append(table)
    return names[0], names[1]


def override_anchors(con: duckdb.DuckDBPyConnection, must: str | None,
                     cannot: str | None) -> None:
    """Make the spine's persons joined by a must-link one anchored person, then stop holding
    fixed any person that holds both records of a cannot-link."""
    if must:
        anchors = con.execute(f"SELECT rid, anchor FROM {ANCHORS} ORDER BY rid").fetchnumpy()
        joined = con.execute(f"""SELECT a.anchor AS l, b.anchor AS r FROM {must} m
            JOIN {ANCHORS} a ON a.rid = m.rid_l JOIN {ANCHORS} b ON b.rid = m.rid_r
            WHERE a.anchor <> b.anchor""").fetchnumpy()
        if len(joined["l"]):
            size = int(anchors["anchor"].max()) + 1
            merged = connected_components(size, joined["l"], joined["r"])
            con.register("merged_anchor", pa.table({
                "rid": anchors["rid"], "anchor": merged[anchors["anchor"].astype(np.int64)]}))
            con.execute(f"CREATE OR REPLACE TEMP TABLE {ANCHORS} AS "
                        "SELECT rid, anchor FROM merged_anchor ORDER BY rid").fetchall()
            con.unregister("merged_anchor")
    if cannot:
        con.execute(f"""DELETE FROM {ANCHORS} WHERE anchor IN (
            SELECT a.anchor FROM {cannot} c JOIN {ANCHORS} a ON a.rid = c.rid_l
            JOIN {ANCHORS} b ON b.rid = c.rid_r WHERE a.anchor = b.anchor)""").fetchall()
