"""Rare agreement levels: their u is counted over all pairs, and an LA's 903 and CIN records
with one child id are pre-linked."""

import pandas as pd
import pytest

from linkage.match.run import _register, counted_u, duckdb_api


def test_rare_levels_are_counted_not_sampled():
    day = pd.Timestamp("2020-01-02")
    table = pd.DataFrame({
        "source": ["cin", "ssda903", "ssda903", "school_census", "asg_children"],
        "provider": ["201", "201", "201", "DfE", "RAA01"],
        "period": [2024, 2024, 2025, 2024, 2025],
        "record_id": ["c1", "c1", "c1", "c1", "a1"],
        "entered_care_date": [None, day, day, None, day],
        "matched_date": [None, None, day, None, None]})
    api = duckdb_api(threads=1)
    _, columns, _, _ = _register(api, table)
    u = counted_u(api.duckdb_con, columns)
    # 10 pairs; the LA's three c1 records make 3 (the school census c1 is another id space)
    assert u["la_record_id"] == pytest.approx(3 / 10)
    # three records carry a date, so 3 pairs are compared, and all of them share one
    assert u["care_events"] == pytest.approx(3 / 3)
    prelinks = api.duckdb_con.execute(
        "SELECT source, prelink FROM linking_records ORDER BY rid").fetchall()
    la = {p for s, p in prelinks if s in ("cin", "ssda903")}
    assert len(la) == 1 and la != {p for s, p in prelinks if s == "school_census"}
