"""The same model on Splink's Spark backend, for data that outgrows one machine.

Scoring runs on Spark (local mode by default; a cluster's master with ``--spark-master``, sized
by configs/spark.yaml); the scored pairs kept come back to clustering, which is the same as on
DuckDB. Bloom filters travel as arrays of 64-bit words, since Spark has no bit-string type;
only the Dice SQL differs between the two.
Given a model trained on DuckDB (``--model``), Spark applies exactly its parameters.
"""

import json
import logging
import os
import re
import shutil
import socket
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import sqlglot

from linkage.config import load_config
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
    remove_pairs,
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


MASTER_ENV = "LINKAGE_SPARK_MASTER"
# what a master URL may look like (Spark's own forms); anything else is a typing mistake
_MASTER_FORMS = re.compile(r"local(\[(\d+|\*)\])?|spark://\S+|yarn|k8s://\S+")


class SparkClusterError(Exception):
    """A Spark master that cannot be used (malformed, unreachable, no executor joins, or the
    executors' output not where the driver reads it); the message says what to check."""


def master_in_force(given: str | None = None) -> str | None:
    """The master a run uses: ``given`` (``--spark-master``), else ``LINKAGE_SPARK_MASTER``,
    else None (local mode, or the session this process already has)."""
    master = given or os.environ.get(MASTER_ENV) or None
    if master is not None and not _MASTER_FORMS.fullmatch(master):
        raise SparkClusterError(f"{master}: not a Spark master URL (local[N], spark://HOST:PORT, "
                                "yarn or k8s://HOST:PORT)")
    return master


def check_reachable(master: str, timeout: float = 10.0) -> None:
    """For a standalone master (``spark://host:port``, several for a master with standbys),
    refuse at once when none of its addresses answers, rather than letting Spark retry for
    minutes and fail with a Java trace."""
    if not master.startswith("spark://"):
        return
    addresses = master.removeprefix("spark://").split(",")
    for address in addresses:
        host, _, port = address.rpartition(":")
        if not host or not port.isdigit():
            raise SparkClusterError(f"{master}: a standalone master is spark://HOST:PORT")
        try:
            socket.create_connection((host, int(port)), timeout=timeout).close()
            return
        except OSError:
            continue
    raise SparkClusterError(f"cannot reach the Spark master {master} (is it running, and is "
                            "this machine allowed to connect?)")


def spark_settings() -> dict:
    """configs/spark.yaml, validated."""
    return load_config("spark.yaml")


def spark_session(master: str | None = None, scratch: Path | None = None):
    """A Spark session for one run, and whether this run made it (and so must stop it).
    ``scratch`` is the driver's spark.local.dir (a cluster's executors use their workers').

    With no master named, a session this process already has is used as it is (a job on a
    managed cluster: the platform made it); otherwise local mode, sized by configs/spark.yaml.
    A named master gets a session sized by the file's ``cluster`` settings, whose executors run
    this virtualenv's Python (unless PYSPARK_PYTHON names another, e.g. a packed
    environment's)."""
    require_pyspark()
    from pyspark.sql import SparkSession

    settings = spark_settings()
    active = SparkSession.getActiveSession()
    if active is not None:
        running = active.sparkContext.master
        if master is None or master == running:
            return active, False
        raise SparkClusterError(f"this process already has a Spark session on {running}; "
                                f"a run on {master} needs a process of its own")
    builder = (SparkSession.builder.appName("linkage")
               .config("spark.ui.enabled", "false")
               .config("spark.ui.showConsoleProgress", "false")
               .config("spark.sql.shuffle.partitions", str(settings["shuffle_partitions"])))
    if scratch is not None:
        # pyspark writes the records it hands to Spark to a file here while sending them
        builder = builder.config("spark.local.dir", str(scratch))
    if master is None or master.startswith("local"):
        local = settings["local"]
        builder = (builder.master(master or f"local[{local['cores']}]")
                   .config("spark.driver.memory", local["driver_memory"]))
        return builder.getOrCreate(), True
    check_reachable(master)
    cluster = settings["cluster"]
    builder = (builder.master(master)
               .config("spark.driver.memory", cluster["driver_memory"])
               .config("spark.executor.cores", str(cluster["executor_cores"]))
               .config("spark.executor.memory", cluster["executor_memory"])
               .config("spark.cores.max", str(cluster["max_cores"])))
    if os.environ.get("SPARK_LOCAL_IP"):
        # the address executors call the driver back on, even when this process's JVM was
        # started before the variable was set
        builder = (builder.config("spark.driver.host", os.environ["SPARK_LOCAL_IP"])
                   .config("spark.driver.bindAddress", os.environ["SPARK_LOCAL_IP"]))
    if not os.environ.get("PYSPARK_PYTHON"):
        # executors start their own Python workers: they must run this Python, with its
        # pyspark and numpy, not whatever python3 the workers' PATH finds. pyspark names
        # them from this variable when the context starts (spark.pyspark.python is read
        # only by spark-submit)
        os.environ["PYSPARK_PYTHON"] = sys.executable
    try:
        spark = builder.getOrCreate()
    except Exception as problem:  # py4j's errors carry a Java trace; the first line suffices
        raise SparkClusterError(f"could not start a Spark session on {master}: "
                                f"{str(problem).strip().splitlines()[0]}") from None
    if master.startswith("spark://"):
        _wait_for_an_executor(spark, master, cluster["executor_wait_seconds"])
    return spark, True


def _wait_for_an_executor(spark, master: str, seconds: float) -> None:
    """A standalone master accepts an application even when no worker can host its executors,
    and the first job then waits for ever: give up after ``seconds`` with what to check."""
    deadline = time.monotonic() + seconds
    # the driver counts itself among the block managers; executors are the others
    while spark.sparkContext._jsc.sc().getExecutorMemoryStatus().size() < 2:
        if time.monotonic() > deadline:
            spark.stop()
            raise SparkClusterError(
                f"no executor joined the run on {master} within {seconds:g} s: check that its "
                "workers are alive and offer executor_cores and executor_memory "
                "(configs/spark.yaml)")
        time.sleep(0.5)


def shared_folder(master: str | None) -> Path | None:
    """Where executors write what the driver reads (scored pairs, checkpoints): the cluster's
    ``shared_folder`` (configs/spark.yaml), or None for this machine's temporary folder."""
    folder = spark_settings()["cluster"]["shared_folder"]
    if master is None or master.startswith("local") or folder is None:
        return None
    path = Path(folder)
    if not path.is_dir():
        raise SparkClusterError(f"{folder}: the cluster's shared_folder (configs/spark.yaml) "
                                "is not a folder on this machine")
    return path


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
                            decided=None, master: str | None = None) -> LinkResult:
    """Score pairs on Spark (training there too unless ``model_path`` is given), then cluster
    on DuckDB exactly as the DuckDB backend does. The model's plan (comparisons, counted
    blocking rules, training rules, counted u) is made on DuckDB, as for the DuckDB backend.
    ``master`` names a cluster's Spark master (else ``LINKAGE_SPARK_MASTER``, else local)."""
    require_pyspark()
    from splink import Linker, SparkAPI

    master = master_in_force(master)
    shared = shared_folder(master)
    db_api = duckdb_api()
    con = db_api.duckdb_con
    spark, made_here, pairs = None, False, None
    # Splink writes its intermediate tables (tokens included) as Parquet here: the executors
    # write and read them, so on a cluster of several machines it must be shared storage
    checkpoints = tempfile.mkdtemp(prefix="linkage-spark-checkpoints-", dir=shared)
    scratch = Path(tempfile.mkdtemp(prefix="linkage-spark-"))
    try:
        # records numbered by rid, as on DuckDB
        registered, columns, size, kinds = _register(db_api, tokens, kinds)
        patterns = identifier_patterns(con, kinds)
        frame = _spark_frame(con, columns)
        spark, made_here = spark_session(master, scratch)
        spark.sparkContext.setLogLevel("ERROR")
        spark.sparkContext.setCheckpointDir(checkpoints)
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
        pairs = pairs_file(shared)
        # the executors write these parts; DuckDB reads them here on the driver
        parts = pairs.parent / "parts"
        spark.sql(pair_patterns_sql(name, model)).write.parquet(str(parts))
        _check_parts_arrived(con, parts, int(pairs_scored))
        con.register("spark_edges", edges.sort_values(["rid_l", "rid_r"], ignore_index=True))
        con.execute("CREATE OR REPLACE TABLE cluster_edges AS SELECT * FROM spark_edges"
                    ).fetchall()
        con.unregister("spark_edges")
        clusters = clustered(con, size, previous, decided)
        return LinkResult(_with_confidence(con, clusters), model, int(pairs_scored),
                          weight_bins, blocking, parts / "*.parquet", patterns)
    except BaseException:
        if pairs is not None:
            remove_pairs(pairs)
        raise
    finally:
        con.close()
        if made_here:
            spark.stop()
        # Splink's intermediate tables hold the decrypted tokens: gone with the run
        shutil.rmtree(checkpoints, ignore_errors=True)
        shutil.rmtree(scratch, ignore_errors=True)


def _check_parts_arrived(con, parts: Path, pairs_scored: int) -> None:
    """Every scored pair must be in the parts the driver reads: on a cluster whose executors
    do not share the driver's folder they write to their own disks and the spine would
    silently lose its agreement patterns."""
    found = 0
    if any(parts.glob("*.parquet")):
        found = con.execute(f"SELECT count(*) FROM read_parquet('{parts}/*.parquet')"
                            ).fetchall()[0][0]
    if found != pairs_scored:
        raise SparkClusterError(
            f"the executors wrote {pairs_scored:,} scored pairs but {found:,} reached {parts}: "
            "on a cluster of several machines set shared_folder in configs/spark.yaml to a "
            "folder every machine sees at the same path")


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
