"""Train the model, score candidate pairs, and cluster records into persons (Splink on DuckDB)."""

import json
import logging
import math
import os
import re
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
from splink import DuckDBAPI, Linker

from linkage.match.cluster import cluster
from linkage.match.model import (
    ADOPTION_SEX_DOB,
    EVENT_DATES,
    LA_SOURCES,
    NAME_LEVELS,
    RETAINED,
    bits_column,
    digest_column,
    name_salt,
    settings,
    training_rules,
)

KEY_COLUMNS = ["source", "provider", "period", "record_id"]
MATCH_THRESHOLD = 0.9        # clusters join records whose pair scores at least this
PRELINK_FLOOR = 0.01         # a pre-link holds unless its pair scores below this
SCORE_FLOOR = 0.1            # pairs scored below this are not kept at all
U_SAMPLE_PAIRS = 5e6         # random pairs that estimate the u probabilities
EM_SAMPLE_PAIRS = 2e6        # pairs per training rule beyond which EM trains on a sample
DEFAULT_MEMORY_LIMIT = "6GB"  # DuckDB's share; the rest of a run needs about 1 GB more


@dataclass
class LinkResult:
    clusters: pd.DataFrame      # unique_id, cluster_id, KEY_COLUMNS, link_confidence
    model: dict                 # the trained model, as Splink's JSON settings
    pairs_scored: int
    weight_bins: list = field(default_factory=list)  # [whole match weight, pairs] kept


def threshold_match_weight() -> float:
    """MATCH_THRESHOLD as a match weight: log2 of the odds it stands for."""
    return round(math.log2(MATCH_THRESHOLD / (1 - MATCH_THRESHOLD)), 3)


def linking_table(tokens: list[pd.DataFrame]) -> pd.DataFrame:
    """All bundles' tokens in one pandas table (the plaintext baseline and small runs);
    ``train_and_predict`` also reads the bundles' Parquet files directly."""
    table = pd.concat(tokens, ignore_index=True)
    table["period"] = table.period.astype(int)
    return table


# one id per record, and the same provider's own id for a record across its periods (an LA's
# 903 and CIN returns come from one case system, so its id for a child pre-links both)
UNIQUE_ID_SQL = ("source || '|' || provider || '|' || CAST(period AS VARCHAR) || '|' || "
                 "record_id")
PRELINK_SQL = (f"CASE WHEN source IN {LA_SOURCES} THEN 'la' ELSE source END || '|' || "
               "provider || '|' || record_id")
# the columns the model and clustering can use; the rest of a bundle stays on disk
MODEL_COLUMNS = ["source", "provider", "period", "record_id", "upn", "former_upn", "dob",
                 "dob_swapped", "dob_salt", "sex_dob",
                 "postcode", "postcode_sector", "forename_bloom", "surname_bloom", "forename",
                 "surname", *EVENT_DATES]


class OrderedDuckDBAPI(DuckDBAPI):
    """Splink's DuckDB backend, with the sums of expectation maximisation taken in one order.

    EM iterates over a small table of agreement patterns and their counts. A parallel GROUP
    BY stores that table in a different row order each run, and parallel sums over it add in
    a different order, so the trained m probabilities would differ in their last bits. Here
    the table is stored sorted and each iteration's sums run on one thread (a few thousand
    rows: no cost), so the same inputs train the same model, bit for bit.
    """

    def _sql_to_splink_dataframe(self, sql: str, templated_name: str, physical_name: str):
        if templated_name == "__splink__agreement_pattern_counts":
            sql = f"SELECT * FROM ({sql}) ORDER BY ALL"
        if templated_name != "__splink__m_u_counts":
            return super()._sql_to_splink_dataframe(sql, templated_name, physical_name)
        con = self.duckdb_con
        threads = con.execute("SELECT current_setting('threads')").fetchall()[0][0]
        con.execute("SET threads = 1").fetchall()
        try:
            return super()._sql_to_splink_dataframe(sql, templated_name, physical_name)
        finally:
            con.execute(f"SET threads = {int(threads)}").fetchall()


def duckdb_api(memory_limit: str | None = None, threads: int | None = None) -> DuckDBAPI:
    """A DuckDB connection for one run: memory capped (work beyond it spills to a temporary
    folder) and threads set, from the arguments or LINKAGE_MEMORY_LIMIT / LINKAGE_THREADS."""
    con = duckdb.connect()
    memory_limit = memory_limit or os.environ.get("LINKAGE_MEMORY_LIMIT", DEFAULT_MEMORY_LIMIT)
    con.execute(f"SET memory_limit = '{_checked_size(memory_limit)}'")
    threads = threads or int(os.environ.get("LINKAGE_THREADS", "0")) or None
    if threads:
        con.execute(f"SET threads = {int(threads)}")
    _remove_stale_spill_folders()
    con.execute(f"SET temp_directory = '{tempfile.gettempdir()}/{SPILL_PREFIX}{os.getpid()}'")
    return OrderedDuckDBAPI(connection=con)


SPILL_PREFIX = "linkage-duckdb-"


def _remove_stale_spill_folders() -> None:
    """DuckDB spills work beyond its memory limit to a folder it removes when it closes; a
    killed run leaves its folder behind, holding decrypted tokens. Each run removes those of
    runs no longer alive."""
    for folder in Path(tempfile.gettempdir()).glob(f"{SPILL_PREFIX}*"):
        pid = folder.name.removeprefix(SPILL_PREFIX)
        if pid.isdigit() and not _alive(int(pid)):
            shutil.rmtree(folder, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _checked_size(size: str) -> str:
    if not re.fullmatch(r"\s*\d+(\.\d+)?\s*[KMGT]i?B\s*", size, flags=re.IGNORECASE):
        raise ValueError(f"memory limit {size!r} is not a size such as 6GB")
    return size.strip()


def _register(db_api: DuckDBAPI, tokens: pd.DataFrame | list[pa.Table]):
    """The records in DuckDB, in unique-id order with their row number ``rid``, a pre-link
    key, Bloom filters cast to DuckDB's BIT type (Dice in SQL) and ``derived_columns``.
    ``tokens`` is one table (the plaintext baseline) or the bundles' linkage parts as Arrow
    tables, decrypted in memory: nothing decrypted is written to disk. Only the columns the
    model can use are kept."""
    con = db_api.duckdb_con
    if isinstance(tokens, pd.DataFrame):
        table = pa.Table.from_pandas(tokens, preserve_index=False)
    else:
        table = pa.concat_tables([t.select([c for c in t.column_names if c in MODEL_COLUMNS])
                                  for t in tokens], promote_options="permissive")
    con.register("linking_input", table)
    present = [row[0] for row in con.execute("DESCRIBE SELECT * FROM linking_input").fetchall()]
    wanted = [c for c in MODEL_COLUMNS if c in present]
    select = ", ".join(f"CAST({c} AS BIT) AS {c}" if c.endswith("_bloom") else
                       ("CAST(period AS INTEGER) AS period" if c == "period" else c)
                       for c in wanted)
    derived = derived_columns(wanted)
    extra = "".join(f", {sql} AS {name}" for name, sql in derived.items())
    con.execute(f"""CREATE OR REPLACE TABLE linking_records AS
        SELECT row_number() OVER (ORDER BY unique_id) - 1 AS rid, *
        FROM (SELECT *{extra}
              FROM (SELECT {select}, {UNIQUE_ID_SQL} AS unique_id, {PRELINK_SQL} AS prelink
                    FROM linking_input))
        ORDER BY rid""").fetchall()
    con.unregister("linking_input")
    del table
    size, repeated = con.execute("SELECT count(*), count(*) - count(DISTINCT unique_id) "
                                 "FROM linking_records").fetchall()[0]
    if repeated:
        raise ValueError("two bundles hold the same record of the same period")
    return (db_api.register("linking_records"),
            set(wanted) | set(derived) | {"unique_id", "prelink"}, size)


def derived_columns(columns: list[str]) -> dict[str, str]:
    """Columns computed once per record so that the model's SQL, run once per pair, is cheap:
    each Bloom filter's set-bit count and digest, and the date of birth of adoption records
    (which block on it with every other source, one side at a time)."""
    derived = {}
    for column in (c for c in columns if c.endswith("_bloom")):
        derived[bits_column(column)] = f"CAST(bit_count({column}) AS SMALLINT)"
        derived[digest_column(column)] = (  # 63 bits, to be signed; NULL stays NULL
            f"CASE WHEN {column} IS NOT NULL THEN CAST(hash({column}) >> 1 AS BIGINT) END")
    if "sex_dob" in columns:
        derived[ADOPTION_SEX_DOB] = "CASE WHEN source LIKE 'asg%' THEN sex_dob END"
    return derived


def train_and_predict(tokens: pd.DataFrame | list[pa.Table], model_path: Path | None = None,
                      seed: int = 1, db_api: DuckDBAPI | None = None) -> LinkResult:
    """Train a new model (or load ``model_path``), score pairs, and cluster.

    ``tokens`` is a table of records or the bundles' linkage parts. The same inputs
    give the same result: records are numbered in unique-id order and ties are broken by it.
    """
    own = db_api is None
    db_api = db_api or duckdb_api()
    try:
        return _train_and_predict(db_api, tokens, model_path, seed)
    finally:
        if own:  # DuckDB's memory goes back before the spine is written
            db_api.duckdb_con.close()


def _train_and_predict(db_api: DuckDBAPI, tokens: pd.DataFrame | list[pa.Table],
                       model_path: Path | None, seed: int) -> LinkResult:
    con = db_api.duckdb_con
    records, columns, size = _register(db_api, tokens)
    if model_path is not None:
        model = json.loads(model_path.read_text())
        retained = model.get("additional_columns_to_retain", [])
        model["additional_columns_to_retain"] = retained + [c for c in RETAINED
                                                            if c not in retained]
        linker = Linker(records, model, log_level=logging.ERROR)
    else:
        linker = Linker(records, settings(columns, counted_u=counted_u(con, columns)),
                        log_level=logging.ERROR)
        _train(linker, columns, seed)
    predictions = linker.inference.predict(threshold_match_probability=SCORE_FLOOR)
    # a pre-link (one provider record across periods) holds unless the evidence strongly
    # contradicts it, and it is considered first when clustering
    con.execute(f"""CREATE OR REPLACE TABLE cluster_edges AS
        SELECT rid_l, rid_r, match_probability, match_weight,
               prelink_l = prelink_r AS prelinked FROM {predictions.physical_name}
        WHERE match_probability >= {MATCH_THRESHOLD}
           OR (prelink_l = prelink_r AND match_probability >= {PRELINK_FLOOR})""").fetchall()
    pairs_scored = con.execute(
        f"SELECT count(*) FROM {predictions.physical_name}").fetchall()[0][0]
    weight_bins = [[int(b), int(n)] for b, n in con.execute(
        f"SELECT floor(match_weight), count(*) FROM {predictions.physical_name} "
        "GROUP BY 1 ORDER BY 1").fetchall()]
    model = linker.misc.save_model_to_json()
    model.pop("linker_uid", None)  # a random name for Splink's cached tables, not the model
    predictions.drop_table_from_database_and_remove_from_cache()
    linker.table_management.delete_tables_created_by_splink_from_db()
    clusters = cluster(con, "linking_records", "cluster_edges", size)
    return LinkResult(_with_confidence(con, clusters), model, pairs_scored, weight_bins)


def counted_u(con, columns: set[str], table: str = "linking_records") -> dict:
    """The u of rare agreement levels, counted over all pairs of records, not sampled; and
    of salted names' levels, counted on pairs of different persons (``_salted_name_u``).

    A same-LA child id, or a care event date, agrees in so few random pairs that the 5
    million sampled pairs hold none at 1,000,000 people; Splink then falls back to a default
    u (about 1e-3), which gave the same-LA child id 4 bits of evidence instead of 18 and
    left an LA's CIN and 903 records of a child unlinked. Both levels are equality on a key,
    so the pairs in them are counted by grouping (as u, over the pairs not in the null level).
    Like random sampling, the count includes true matches (a child's records across years), so
    u is slightly overstated and the evidence understated: the safe direction.
    """
    out = {}
    same_id = _same_la_id_u(con, table)
    if same_id is not None:
        out["la_record_id"] = same_id
    present = [c for c in EVENT_DATES if c in columns]
    care = _same_event_u(con, table, present) if present else None
    if care is not None:
        out["care_events"] = care
    for column in (c for c in ("forename_bloom", "surname_bloom") if c in columns):
        if name_salt(column, columns) and {"sex_dob", "upn"} <= columns:
            name_u = _salted_name_u(con, table, column)
            if name_u is not None:
                out[column] = name_u
    return out


NAME_U_RECORDS = 200_000  # records sampled (by a hash of rid) for the u of salted names
NAME_U_MIN_PAIRS = 1_000


def _salted_name_u(con, table: str, column: str) -> tuple[float, float] | None:
    """The u of a salted name's two agreement levels, counted on pairs of different persons.

    Salted filters compare only within one salt (one birthday), and random pairs that share
    a birthday are largely one person's records: Splink's random sampling put the u of an
    exact forename at 0.19, not about 0.006, and the names lost most of their weight. Names
    of different persons do not depend on their birthday, so u is counted on pairs of one
    sex and date of birth whose UPNs differ (different children), with a sample of records
    at scale. None when there are too few such pairs.
    """
    n = con.execute(f"SELECT count(*) FROM {table} WHERE {column} IS NOT NULL").fetchall()[0][0]
    every = max(1, math.ceil(n / NAME_U_RECORDS))
    bits, digest = bits_column(column), digest_column(column)
    dice_sql = f"bit_count(l.{column} & r.{column}) * 2.0 / (l.{bits} + r.{bits})"
    former = ("AND coalesce(l.upn <> r.former_upn, true) AND coalesce(l.former_upn <> r.upn, "
              "true)" if "former_upn" in _columns(con, table) else "")
    pairs, top, middle = con.execute(f"""
        WITH s AS (SELECT * FROM {table} WHERE {column} IS NOT NULL AND upn IS NOT NULL
                   AND sex_dob IS NOT NULL AND hash(rid) % {every} = 0),
        p AS (SELECT l.{digest} = r.{digest} OR {dice_sql} >= {NAME_LEVELS[0]} AS top,
                     {dice_sql} >= {NAME_LEVELS[1]} AS middle
              FROM s l JOIN s r ON l.sex_dob = r.sex_dob AND l.rid < r.rid
              WHERE l.upn <> r.upn {former})
        SELECT count(*), count(*) FILTER (WHERE top),
               count(*) FILTER (WHERE middle AND NOT top) FROM p""").fetchall()[0]
    if pairs < NAME_U_MIN_PAIRS:
        return None
    return max(top, 1) / pairs, max(middle, 1) / pairs


def _columns(con, table: str) -> set[str]:
    return {row[0] for row in con.execute(f"DESCRIBE {table}").fetchall()}


def _same_la_id_u(con, table: str) -> float | None:
    n = con.execute(f"SELECT count(record_id) FROM {table}").fetchall()[0][0]
    if n < 2:
        return None
    same = con.execute(f"""SELECT coalesce(sum(c * (c - 1) // 2), 0) FROM (
        SELECT count(*) AS c FROM {table} WHERE source IN {LA_SOURCES}
        AND record_id IS NOT NULL GROUP BY provider, record_id)""").fetchall()[0][0]
    return max(same, 1) / (n * (n - 1) / 2)


def _same_event_u(con, table: str, present: list[str]) -> float | None:
    # pairs compared: some date present on both sides (records grouped by which they have)
    has = " + ".join(f"({c} IS NOT NULL)::INTEGER * {2 ** i}" for i, c in enumerate(present))
    compared = con.execute(f"""WITH p AS (SELECT {has} AS k, count(*) AS c FROM {table}
                                          GROUP BY 1)
        SELECT coalesce(sum(CASE WHEN x.k = y.k THEN x.c * (x.c - 1) // 2
                                 ELSE x.c * y.c END), 0)
        FROM p x JOIN p y ON x.k <= y.k AND (x.k & y.k) <> 0""").fetchall()[0][0]
    if not compared:
        return None
    agree = con.execute("SELECT count(*) FROM (" + " UNION ".join(
        f"SELECT x.rid, y.rid FROM {table} x JOIN {table} y ON x.{c} = y.{c} "
        "AND x.rid < y.rid" for c in present) + ")").fetchall()[0][0]
    return max(agree, 1) / compared


def _train(linker: Linker, columns: set[str], seed: int) -> None:
    training = linker.training
    deterministic = [rule for rule in ("l.upn = r.upn",
                                       "l.sex_dob = r.sex_dob AND l.postcode = r.postcode")
                     if all(f"l.{c}" not in rule or c in columns
                            for c in ("upn", "sex_dob", "postcode"))]
    training.estimate_probability_two_random_records_match(deterministic, recall=0.7)
    training.estimate_u_using_random_sampling(max_pairs=U_SAMPLE_PAIRS, seed=seed)
    for rule in training_rules(columns):
        # iterate on agreement-pattern counts: fast, and summed in one order (OrderedDuckDBAPI);
        # at national scale a sample of records (chosen by a hash of their ids, so the same
        # each run) gives nearly the same m probabilities for a fraction of the work
        training.estimate_parameters_using_expectation_maximisation(
            rule, estimate_without_term_frequencies=True, max_pairs=EM_SAMPLE_PAIRS)


def _with_confidence(con, clusters: np.ndarray) -> pd.DataFrame:
    """Each record's cluster, and its strongest link to another record (1 if alone: no doubt)."""
    con.register("record_cluster", pa.table({"rid": np.arange(len(clusters), dtype=np.int64),
                                             "cluster_id": clusters}))
    out = con.execute(f"""
        WITH best AS (SELECT rid, max(p) AS p FROM (
            SELECT rid_l AS rid, match_probability AS p FROM cluster_edges UNION ALL
            SELECT rid_r AS rid, match_probability AS p FROM cluster_edges) GROUP BY rid)
        SELECT r.unique_id, c.cluster_id, {", ".join(f"r.{k}" for k in KEY_COLUMNS)},
               round(coalesce(best.p, 1.0), 6) AS link_confidence
        FROM linking_records r JOIN record_cluster c USING (rid) LEFT JOIN best USING (rid)
        ORDER BY r.rid""").df()
    con.unregister("record_cluster")
    return out
