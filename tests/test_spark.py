"""`linkage link --backend spark`: the same model on Splink's Spark backend gives the same
persons as on DuckDB (pyspark in local mode; `pip install '.[spark]'` and Java 17)."""

import json

import duckdb
import pytest
from typer.testing import CliRunner

from linkage.cli import app
from synthetic.world import build_world, load_config, write_world
from tests.conftest import hash_world
from tests.output import said

runner = CliRunner()


@pytest.fixture(scope="module")
def small_bundles(tmp_path_factory, linkage_key):
    root = tmp_path_factory.mktemp("spark_world")
    write_world(build_world(1500, 4, load_config()), root / "world")
    return hash_world(root / "world", root / "bundles", linkage_key)


def persons(spine) -> set[frozenset]:
    con = duckdb.connect(str(spine), read_only=True)
    rows = con.execute("SELECT person_key, source, provider, record_id, period FROM "
                       "person_record WHERE version = (SELECT max(version) FROM "
                       "spine_version)").fetchall()
    con.close()
    groups: dict[str, set] = {}
    for key, *record in rows:
        groups.setdefault(key, set()).add(tuple(record))
    return {frozenset(records) for records in groups.values()}


def link(spine, bundles, *extra) -> dict:
    result = runner.invoke(app, ["link", "--spine", str(spine), "--seed", "1", "--json",
                                 *extra, *map(str, bundles)])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_spark_and_duckdb_give_identical_persons(small_bundles, tmp_path):
    on_duckdb = link(tmp_path / "duckdb.duckdb", small_bundles)
    model = tmp_path / "duckdb.duckdb.model.json"
    on_spark = link(tmp_path / "spark.duckdb", small_bundles, "--backend", "spark",
                    "--model", str(model))
    assert on_spark["pairs_scored"] == on_duckdb["pairs_scored"]
    assert on_spark["persons"] == on_duckdb["persons"]
    assert persons(tmp_path / "spark.duckdb") == persons(tmp_path / "duckdb.duckdb")
    assert on_spark["families"] == on_duckdb["families"]
    # and the same agreement patterns, so explain and review read the same on either
    assert patterns(tmp_path / "spark.duckdb") == patterns(tmp_path / "duckdb.duckdb")


def patterns(spine) -> list[tuple]:
    """Each scored pair's records and levels (weights to 6 places: the backends' sums may
    differ in their last bits)."""
    con = duckdb.connect(str(spine), read_only=True)
    columns = [c for (c,) in con.execute("SELECT column_name FROM duckdb_columns() WHERE "
                                         "table_name = 'scored_pair'").fetchall()]
    levels = ", ".join(c for c in columns if c.startswith("gamma_"))
    rows = con.execute(f"SELECT r.source, r.provider, r.period, r.record_id, s.source, "
                       f"s.provider, s.period, s.record_id, round(match_weight, 6), "
                       f"prelinked, {levels} FROM scored_pair p "
                       "JOIN person_record r ON r.record_number = p.record_l "
                       "JOIN person_record s ON s.record_number = p.record_r "
                       "ORDER BY ALL").fetchall()
    con.close()
    assert rows
    return rows


def test_an_unknown_backend_is_refused(small_bundles, tmp_path):
    result = runner.invoke(app, ["link", "--spine", str(tmp_path / "s.duckdb"), "--backend",
                                 "oracle", *map(str, small_bundles)])
    assert result.exit_code == 1 and "not a backend" in said(result)


def test_a_model_saved_by_an_earlier_version_is_refused_with_what_to_do():
    from linkage.match.spark import SparkModelError, spark_model

    recount = ("bit_count(forename_bloom_l & forename_bloom_r) * 2.0 / "
               "(bit_count(forename_bloom_l) + bit_count(forename_bloom_r)) >= 0.9")
    earlier = {"comparisons": [{"output_column_name": "forename",
                                "comparison_levels": [{"sql_condition": recount}]}]}
    with pytest.raises(SparkModelError, match="without --model"):
        spark_model(earlier)
