"""Adding records to a spine: the records already in it keep their persons.

A link that adds bundles to a spine scores every pair as before, then clusters with the
spine's persons held fixed: each record already in the spine is anchored to its person, the
pairs between records of two different persons are set aside, and each person's records are
chained together as pre-links, so clustering (``cluster.cluster``) joins them first and never
joins two persons. New records join at most one existing person, or make new persons.
A relink from scratch (``linkage link --retrain``) re-decides everything instead.
"""

import duckdb
import pandas as pd

from linkage.sources.schema import RECORD_KEY

ANCHORS = "record_anchor"        # rid, anchor: the spine's person of each record in it
ANCHOR_EDGES = "anchor_edges"    # the chains joining each person's records
CLUSTERING_EDGES = "clustering_edges"


def anchor_records(con: duckdb.DuckDBPyConnection, previous: pd.DataFrame,
                   unique_id_sql: str, records: str = "linking_records") -> int:
    """Number the spine's persons (``previous``: person_key and the record key, one row a
    record) on the registered records; returns how many records are anchored."""
    con.register("previous_records", previous[["person_key", *RECORD_KEY]].astype(
        {"period": int, "record_id": str, "provider": str}))
    con.execute(f"""CREATE OR REPLACE TEMP TABLE {ANCHORS} AS
        SELECT r.rid, dense_rank() OVER (ORDER BY p.person_key) AS anchor
        FROM {records} r JOIN (SELECT person_key, {unique_id_sql} AS unique_id
                               FROM previous_records) p USING (unique_id)""").fetchall()
    con.unregister("previous_records")
    return con.execute(f"SELECT count(*) FROM {ANCHORS}").fetchall()[0][0]


def anchored_edges(con: duckdb.DuckDBPyConnection, edges: str = "cluster_edges") -> str:
    """Set aside the kept pairs joining two of the spine's persons, and chain each person's
    records to its first; returns the name of the edges clustering reads."""
    con.execute(f"""DELETE FROM {edges} e USING {ANCHORS} a, {ANCHORS} b
        WHERE a.rid = e.rid_l AND b.rid = e.rid_r AND a.anchor <> b.anchor""").fetchall()
    con.execute(f"""CREATE OR REPLACE TEMP TABLE {ANCHOR_EDGES} AS
        SELECT f.rid AS rid_l, a.rid AS rid_r, 1.0 AS match_probability,
               1e6 AS match_weight, true AS prelinked
        FROM {ANCHORS} a JOIN (SELECT anchor, min(rid) AS rid FROM {ANCHORS} GROUP BY anchor) f
        USING (anchor) WHERE a.rid <> f.rid""").fetchall()
    con.execute(f"""CREATE OR REPLACE TEMP VIEW {CLUSTERING_EDGES} AS
        SELECT rid_l, rid_r, match_weight, prelinked FROM {edges} UNION ALL
        SELECT rid_l, rid_r, match_weight, prelinked FROM {ANCHOR_EDGES}""").fetchall()
    return CLUSTERING_EDGES
