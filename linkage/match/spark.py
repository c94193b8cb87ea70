"""The same model on Splink's Spark backend, for data that outgrows one machine.

Scoring runs on Spark (local mode here; a cluster's session elsewhere); the scored pairs kept
come back to clustering, which is the same as on DuckDB. Bloom filters travel as arrays of
64-bit words, since Spark has no bit-string type; only the Dice SQL differs between the two.
Given a model trained on DuckDB (``--model``), Spark applies exactly its parameters.
"""

import json
import logging
import re
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import sqlglot

from linkage.match.model import dice, match_settings
from linkage.match.run import (
    LinkResult,
    _register,
    _with_confidence,
    clustered,
    duckdb_api,
    fit,
    identifier_patterns,
    kept_pairs_sql,
    model_plan,
    pair_patterns_sql,
    pairs_file,
    saved_model,
    scoring_columns,
)


class SparkMissing(Exception):
    """pyspark or Java is not installed; the message says how to install them."""


class SparkModelError(Exception):
    """A saved model that Spark cannot run; the message says what to do."""


def require_pyspark() -> None:
    """Refuse at once, saying how to install it, when pyspark cannot be imported (before any
    work is done, and before splink's Spark support fails with an error of its own)."""
    try:
        import pyspark.sql  # noqa: F401
    except ImportError:
        raise SparkMissing("the Spark backend needs pyspark: pip install 'linkage[spark]' "
                           "(and Java 17: apt-get install openjdk-17-jre-headless)") from None


def spark_session():
    """A local Spark session sized for this machine (a cluster's session can be used instead)."""
    require_pyspark()
    from pyspark.sql import SparkSession

    scratch = tempfile.mkdtemp(prefix="linkage-spark-")
    return (SparkSession.builder.master("local[2]").appName("linkage")
            .config("spark.ui.enabled", "false")
            .config("spark.sql.shuffle.partitions", "8")
            .config("spark.local.dir", scratch)
            .config("spark.driver.memory", "4g")
            .config("spark.ui.showConsoleProgress", "false")
            .getOrCreate())


def _words(bloom) -> list[int] | None:
    if not isinstance(bloom, bytes | bytearray | memoryview):
        return None
    return np.frombuffer(bloom, dtype=">i8").astype(np.int64).tolist()


def spark_model(model: dict) -> dict:
    """A DuckDB-trained model for Spark: the same parameters, each level's SQL in Spark's
    dialect (Dice on word arrays, for every filter column a level reads; identifiers
    unquoted by sqlglot)."""
    out = json.loads(json.dumps(model))
    for comparison in out.get("comparisons", []):
        for level in comparison["comparison_levels"]:
            condition = level["sql_condition"]
            if condition == "ELSE":
                continue
            if "bit_count(" in condition:
                filters = re.findall(r"bit_count\((\w+)_l & ", condition)
                if not filters or any(dice(f) not in condition for f in filters):
                    raise SparkModelError("this model was saved by an earlier version of "
                                          "linkage, whose name comparisons Spark cannot run: "
                                          "link once without --model to train a new one")
                for column in filters:
                    condition = condition.replace(dice(column), dice(column, "spark"))
                level["sql_condition"] = condition
            else:
                level["sql_condition"] = sqlglot.transpile(condition, read="duckdb",
                                                           write="spark")[0]
    out["sql_dialect"] = "spark"
    return out


def train_and_predict_spark(tokens: list, model_path: Path | dict | None = None,
                            seed: int = 1, kinds: dict[str, str] | None = None,
                            declared=None, previous: pd.DataFrame | None = None,
                            decided=None) -> LinkResult:
    """Score pairs on Spark (training there too unless ``model_path`` is given), then cluster
    on DuckDB exactly as the DuckDB backend does. The model's plan (comparisons, counted
    blocking rules, training rules, counted u) is made on DuckDB, as for the DuckDB backend."""
    require_pyspark()
    from splink import Linker, SparkAPI

    db_api = duckdb_api()
    con = db_api.duckdb_con
    try:
        # records numbered by rid, as on DuckDB
        registered, columns, size, kinds = _register(db_api, tokens, kinds)
        patterns = identifier_patterns(con, kinds)
        frame = _spark_frame(con, columns)
        spark = spark_session()
        spark.sparkContext.setLogLevel("ERROR")
        spark.sparkContext.setCheckpointDir(tempfile.mkdtemp(prefix="linkage-spark-"))
        spark_api = SparkAPI(spark_session=spark, register_udfs_automatically=False)
        records = spark_api.register(spark.createDataFrame(frame))
        if model_path is not None:
            model = spark_model(saved_model(model_path, columns))
            linker = Linker(records, model, log_level=logging.ERROR)
            blocking = []
        else:
            plan = model_plan(con, registered, columns, kinds, size, declared=declared)
            blocking = plan.blocking
            trainer = Linker(records, plan.settings("spark"), log_level=logging.ERROR)
            linker = Linker(records, {**fit(trainer, plan, seed), **scoring_columns()},
                            log_level=logging.ERROR)
        predictions = linker.inference.predict(
            threshold_match_probability=match_settings()["score_floor"])
        name = predictions.physical_name
        edges = spark.sql(f"""
            SELECT rid_l, rid_r, match_probability, match_weight,
                   prelink_l = prelink_r AS prelinked FROM {name}
            WHERE {kept_pairs_sql()}""").toPandas()
        pairs_scored = spark.sql(f"SELECT count(*) AS n FROM {name}").collect()[0]["n"]
        weight_bins = [[int(r["bin"]), int(r["n"])] for r in spark.sql(
            f"SELECT floor(match_weight) AS bin, count(*) AS n FROM {name} "
            "GROUP BY 1 ORDER BY 1").collect()]
        model = linker.misc.save_model_to_json()
        model.pop("linker_uid", None)
        pairs = pairs_file()
        spark.sql(pair_patterns_sql(name, model)).write.parquet(str(pairs.parent / "parts"))
        con.register("spark_edges", edges.sort_values(["rid_l", "rid_r"], ignore_index=True))
        con.execute("CREATE OR REPLACE TABLE cluster_edges AS SELECT * FROM spark_edges"
                    ).fetchall()
        con.unregister("spark_edges")
        clusters = clustered(con, size, previous, decided)
        return LinkResult(_with_confidence(con, clusters), model, int(pairs_scored),
                          weight_bins, blocking, pairs.parent / "parts" / "*.parquet",
                          patterns)
    finally:
        con.close()


def _spark_frame(con, columns: set[str]) -> pd.DataFrame:
    """The records for Spark exactly as DuckDB registered them (rid and derived columns
    included), with the Bloom filters as arrays of 64-bit words."""
    wanted = sorted(columns)
    select = ", ".join(f"CAST({c} AS BLOB) AS {c}" if c.endswith("_bloom") else c
                       for c in wanted)
    table = con.execute(f"SELECT rid, {select} FROM linking_records ORDER BY rid").df()
    for column in [c for c in wanted if c.endswith("_bloom")]:
        table[column] = table[column].map(_words)
    return table
