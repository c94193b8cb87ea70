"""Clustering: components, conflicts found whatever the row order, twins kept apart."""

import duckdb
import numpy as np
import pandas as pd
import pytest

from linkage.match import cluster as cluster_module
from linkage.match.cluster import cluster, connected_components
from linkage.match.run import derived_columns


def bloom(*bits: int) -> bytes:
    out = np.zeros(128, dtype=np.uint8)
    for bit in bits:
        out[bit // 8] |= 1 << (7 - bit % 8)
    return out.tobytes()


JACK, JACKIE, MARY = bloom(1, 2, 3, 4, 5, 6), bloom(1, 2, 3, 4, 5, 6, 7), bloom(50, 60, 70, 80)
SMITH, JONES = bloom(90, 91, 92, 93), bloom(100, 101, 102, 103)


def test_components_are_numbered_by_their_smallest_node():
    left, right = np.array([5, 1, 3, 7]), np.array([3, 2, 6, 6])
    assert connected_components(9, left, right).tolist() == [0, 1, 1, 3, 4, 3, 3, 3, 8]


def run(records: pd.DataFrame, edges: pd.DataFrame) -> list[int]:
    if "surname_bloom" not in records:
        records = records.assign(surname_bloom=None)
    con = duckdb.connect()
    con.register("r", records)
    derived = "".join(f", {sql} AS {name}"  # as linking registers records
                      for name, sql in derived_columns(["forename_bloom",
                                                        "surname_bloom"]).items())
    con.execute(f"CREATE TABLE recs AS SELECT *{derived} FROM (SELECT * REPLACE "
                "(CAST(forename_bloom AS BIT) AS forename_bloom, CAST(surname_bloom AS BIT) "
                "AS surname_bloom) FROM r)").fetchall()
    con.register("e", edges)
    con.execute("CREATE TABLE edges AS SELECT * FROM e").fetchall()
    return cluster(con, "recs", "edges", len(records)).tolist()


def twins(order: list[int]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Twin A (two school records, one forename) and twin B (one record, another forename),
    alike in everything else (one surname); B scores well against both of A's records."""
    records = pd.DataFrame({
        "rid": [0, 1, 2], "source": "school_census", "provider": "DfE",
        "period": [2020, 2020, 2021], "record_id": ["a", "b", "c"],
        "upn": pd.array([None, None, None], dtype="Int64"),
        "former_upn": pd.array([None, None, None], dtype="Int64"),
        "forename_bloom": [MARY, JACK, JACKIE], "surname_bloom": [SMITH, SMITH, SMITH]})
    edges = pd.DataFrame({"rid_l": [1, 0, 0], "rid_r": [2, 1, 2],
                          "match_weight": [30.0, 8.0, 8.0], "prelinked": False})
    return records.iloc[order].reset_index(drop=True), edges


@pytest.mark.parametrize("order", [[0, 1, 2], [2, 1, 0], [1, 0, 2]])
def test_twins_with_different_forenames_stay_apart_in_any_row_order(order):
    records, edges = twins(order)
    assert run(records, edges) == [0, 1, 1]


@pytest.mark.parametrize(("when_same", "expected"), [
    ([], [0, 1, 1]),                        # the default: one birthday is enough for the veto
    (["surname_bloom_digest"], [0, 0, 0]),  # a site's choice: the same surname too
])
def test_the_veto_can_require_the_same_surname(monkeypatch, when_same, expected):
    # Mary's surname differs (swapped with her forename, or changed): with the surname
    # condition she is not taken for a twin
    rules = {**cluster_module.clustering_rules(), "forename_conflict_when_same": when_same}
    monkeypatch.setattr(cluster_module, "clustering_rules", lambda: rules)
    records, edges = twins([0, 1, 2])
    records["surname_bloom"] = [JONES, SMITH, SMITH]
    assert run(records, edges) == expected


def test_the_forename_veto_is_for_childrens_returns_only():
    # in a generic source, a substituted forename on one birthday and surname is as often a
    # clerk's error as a twin: the model's weights decide, not the veto
    records, edges = twins([0, 1, 2])
    records["source"] = "generic"
    assert run(records, edges) == [0, 0, 0]


def test_a_component_without_conflict_stays_whole():
    records, edges = twins([0, 1, 2])
    records["forename_bloom"] = [JACK, JACK, JACKIE]
    assert run(records, edges) == [0, 0, 0]


def test_two_records_of_one_la_return_are_never_one_child():
    records = pd.DataFrame({
        "rid": [0, 1, 2], "source": "cin", "provider": "201", "period": 2024,
        "record_id": ["x", "y", "x"], "upn": pd.array([7, None, None], dtype="Int64"),
        "former_upn": pd.array([None, None, None], dtype="Int64"),
        "forename_bloom": [None, None, None]})
    records.loc[2, "period"] = 2025
    edges = pd.DataFrame({"rid_l": [0, 1], "rid_r": [1, 2], "match_weight": [9.0, 12.0],
                          "prelinked": False})
    assert run(records, edges) == [0, 1, 1]


def test_a_return_that_lists_one_child_twice_under_one_upn_is_one_child():
    records = pd.DataFrame({
        "rid": [0, 1, 2], "source": "cin", "provider": "201", "period": 2024,
        "record_id": ["x", "y", "z"], "upn": pd.array([7, 7, 8], dtype="Int64"),
        "former_upn": pd.array([None, None, None], dtype="Int64"),
        "forename_bloom": [None, None, None]})
    edges = pd.DataFrame({"rid_l": [0, 1], "rid_r": [1, 2], "match_weight": [20.0, 9.0],
                          "prelinked": False})
    assert run(records, edges) == [0, 0, 2]


@pytest.mark.parametrize(("salts", "expected"), [
    ([1, 1, 1], [0, 1, 1]),   # one birthday: Mary and Jack are twins, kept apart
    ([1, 2, 2], [0, 0, 0]),   # filters of different salts are not compared: no conflict
])
def test_forenames_conflict_only_within_one_salt(salts, expected):
    records, edges = twins([0, 1, 2])
    records["dob_salt"] = pd.array(salts, dtype="Int64")
    assert run(records, edges) == expected


def decided_run(records: pd.DataFrame, edges: pd.DataFrame, must: list, cannot: list
                ) -> list[int]:
    """``run`` with a reviewer's must-links and cannot-links (pairs of rids)."""
    con = duckdb.connect()
    con.register("r", records.assign(surname_bloom=None))
    derived = "".join(f", {sql} AS {name}" for name, sql in derived_columns(
        ["forename_bloom", "surname_bloom"]).items())
    con.execute(f"CREATE TABLE recs AS SELECT *{derived} FROM (SELECT * REPLACE "
                "(CAST(forename_bloom AS BIT) AS forename_bloom, CAST(surname_bloom AS BIT) "
                "AS surname_bloom) FROM r)").fetchall()
    con.register("e", edges)
    con.execute("CREATE TABLE edges AS SELECT * FROM e").fetchall()
    names = []
    for table, pairs in (("must", must), ("cannot", cannot)):
        frame = pd.DataFrame(pairs or [(0, 0)], columns=["rid_l", "rid_r"]).head(len(pairs))
        con.register(f"{table}_frame", frame.astype("int64"))
        con.execute(f"CREATE TABLE {table} AS SELECT * FROM {table}_frame").fetchall()
        names.append(table if pairs else None)
    return cluster(con, "recs", "edges", len(records), must=names[0],
                   cannot=names[1]).tolist()


def chain() -> tuple[pd.DataFrame, pd.DataFrame]:
    """Three school records: 0 and 1 agree strongly, 1 and 2 less; 2 has another UPN."""
    records = pd.DataFrame({
        "rid": [0, 1, 2], "source": "school_census", "provider": "DfE",
        "period": [2020, 2021, 2022], "record_id": ["a", "b", "c"],
        "upn": pd.array([7, None, 8], dtype="Int64"),
        "former_upn": pd.array([None, None, None], dtype="Int64"),
        "forename_bloom": [JACK, JACK, JACK]})
    edges = pd.DataFrame({"rid_l": [0, 1], "rid_r": [1, 2], "match_weight": [20.0, 9.0],
                          "prelinked": False})
    return records, edges


def test_a_cannot_link_breaks_a_chain_and_a_must_link_overrides_a_conflict():
    records, edges = chain()
    assert decided_run(records, edges, [], []) == [0, 0, 2]          # two UPNs: kept apart
    # a must-link holds whatever the UPNs say
    assert decided_run(records, edges, [(0, 2)], []) == [0, 0, 0]
    # a cannot-link between 0 and 1 keeps them apart even through 2 (1-2 still joins)
    no_upn = records.assign(upn=pd.array([None, None, None], dtype="Int64"))
    assert decided_run(no_upn, edges, [], []) == [0, 0, 0]
    assert decided_run(no_upn, edges, [], [(0, 1)]) == [0, 1, 1]
    assert decided_run(no_upn, edges, [], [(0, 2)]) == [0, 0, 2]     # the weaker pair gives
    # with no pair scored at all, a must-link alone joins two records
    alone = edges.iloc[:0]
    assert decided_run(records, alone, [(1, 2)], []) == [0, 1, 1]
