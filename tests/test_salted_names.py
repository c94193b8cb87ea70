"""Salted name filters in the model: names of different salts are missing evidence, and the
u of a salted name is counted on pairs of different persons."""

import duckdb
import pandas as pd
import pytest

from linkage.match import run
from linkage.match.model import comparisons, match_settings, usable
from linkage.match.run import _register, counted_u, duckdb_api

COLUMNS = {"dob", "dob_salt", "sex_dob", "forename_bloom", "forename_bloom_bits",
           "forename_bloom_digest", "surname_bloom", "surname_bloom_bits",
           "surname_bloom_digest"}


def level_of(forename_l: str, forename_r: str, salt_l: int, salt_r: int) -> int:
    """The forename comparison level (0 null, 1 top) that two records fall in."""
    comparison = next(c for c in comparisons(COLUMNS)
                      if c.get_comparison("duckdb").output_column_name == "forename")
    levels = comparison.get_comparison("duckdb").comparison_levels
    con = duckdb.connect()
    bits = {"JACK": "1111000000", "MARY": "0000001111"}
    con.execute(f"""CREATE TABLE p AS SELECT
        '{bits[forename_l]}'::BIT AS forename_bloom_l, '{bits[forename_r]}'::BIT
        AS forename_bloom_r, 4 AS forename_bloom_bits_l, 4 AS forename_bloom_bits_r,
        hash('{forename_l}{salt_l}') AS forename_bloom_digest_l,
        hash('{forename_r}{salt_r}') AS forename_bloom_digest_r,
        {salt_l} AS dob_salt_l, {salt_r} AS dob_salt_r""").fetchall()
    for number, level in enumerate(levels):
        if level.sql_condition == "ELSE" or con.execute(
                f"SELECT {level.sql_condition} FROM p").fetchall()[0][0]:
            return number
    raise AssertionError("no level")


def test_names_of_different_salts_are_the_null_level():
    assert level_of("JACK", "JACK", 1, 1) == 1
    assert level_of("JACK", "MARY", 1, 1) == 3  # one salt, different names: disagreement
    assert level_of("JACK", "JACK", 1, 2) == 0  # different salts: missing, not disagreement
    assert level_of("JACK", "MARY", 1, 2) == 0


def test_salted_names_block_on_their_digest_alone():
    rules = usable(match_settings()["blocking"], COLUMNS)
    assert "l.forename_bloom_digest = r.forename_bloom_digest" in rules
    assert not any("dob_year" in rule or "month_day" in rule for rule in rules)


def test_the_u_of_a_salted_name_counts_different_persons_only(monkeypatch):
    # four children born on one day: two records of child 1, and three others, one of
    # whom shares child 1's forename; pairs of one child (one UPN) are not counted
    jack, mary = b"\xf0" + bytes(127), b"\x0f" + bytes(127)
    table = pd.DataFrame({
        "source": "school_census", "provider": "DfE", "period": [2020, 2021, 2020, 2020, 2020],
        "record_id": ["a", "b", "c", "d", "e"],
        "upn": pd.array([1, 1, 2, 3, 4], dtype="Int64"),
        "sex_dob": pd.array([9, 9, 9, 9, 9], dtype="Int64"),
        "dob_salt": pd.array([5, 5, 5, 5, 5], dtype="Int64"),
        "forename_bloom": [jack, jack, jack, mary, mary]})
    monkeypatch.setattr(run, "NAME_U_MIN_PAIRS", 1)
    api = duckdb_api(threads=1)
    _, columns, _, _ = _register(api, table)
    top, middle = counted_u(api.duckdb_con, columns)["forename"]
    # 10 pairs less child 1's own pair; Jack agrees with Jack twice, Mary with Mary once
    assert top == pytest.approx(3 / 9)
    assert middle == pytest.approx(1 / 9)  # none: counted as one, never zero
