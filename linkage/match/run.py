"""Train the model, score candidate pairs, and cluster records into persons (Splink on DuckDB).

The model, its blocking and its training come from the linkage schema and the columns the
bundles hold (``model``, ``rules``); this module registers the records, counts the u that
sampling cannot estimate, trains, scores and clusters.
"""

import contextlib
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
from splink.internals.exceptions import EMTrainingException

from linkage.match.anchors import ANCHORS, anchor_records, anchored_edges
from linkage.match.cluster import cluster
from linkage.match.decided import Decided, decided_tables, override_anchors
from linkage.match.explain import gamma_sql, tf_comparisons
from linkage.match.model import (
    ADOPTION_SEX_DOB,
    BLOOM_SUFFIX,
    EVENT_DATES,
    LA_SOURCES,
    RETAINED,
    bits_column,
    comparison_specs,
    digest_column,
    linkage_schema,
    match_settings,
    name_levels,
    name_salt,
    settings,
)
from linkage.match.rules import ModelError, blocking_rules, training_rules
from linkage.quality.profile import presence_patterns
from linkage.sources.schema import RECORD_KEY

DEFAULT_MEMORY_LIMIT = "6GB"  # DuckDB's share; the rest of a run needs about 1 GB more
# the kinds of bundle column the model can read; the rest of a bundle stays in its part
MODEL_KINDS = {"record", "token", "bloom"}


def match_threshold() -> float:
    return float(match_settings()["threshold"])


@dataclass
class LinkResult:
    clusters: pd.DataFrame      # unique_id, cluster_id, RECORD_KEY, link_confidence
    model: dict                 # the trained model, as Splink's JSON settings
    pairs_scored: int
    weight_bins: list = field(default_factory=list)  # [whole match weight, pairs] kept
    blocking: list = field(default_factory=list)     # each rule used and the pairs it made
    pairs: Path | None = None   # every pair scored, as its agreement pattern (``pair_patterns``)
    # per source, records by which model columns they hold (``quality.profile``)
    identifier_patterns: list = field(default_factory=list)


def threshold_match_weight() -> float:
    """The match threshold as a match weight: log2 of the odds it stands for."""
    threshold = match_threshold()
    return round(math.log2(threshold / (1 - threshold)), 3)


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


def model_columns(kinds: dict[str, str]) -> list[str]:
    """The bundle columns the model and clustering can read: the record key, the tokens, the
    name filters and the care-event dates (family keys read the other event tokens)."""
    return [c for c, kind in kinds.items()
            if kind in MODEL_KINDS or (kind == "event" and c in EVENT_DATES)]


@dataclass
class Declared:
    """What the providers' manifests declare about the columns, beside their kinds: how often
    two records' names agree (``declared_name_agreement``), and which columns describe one
    thing together (``groups``: an address's street, town and postcode), compared as one."""

    name_agreement: dict = field(default_factory=dict)
    groups: dict = field(default_factory=dict)


def declarations(manifests: list[dict]) -> Declared:
    """The declarations of a set of bundles (the first bundle to name a column's group wins)."""
    groups: dict[str, str] = {}
    for manifest in manifests:
        for column, group in manifest.get("token_groups", {}).items():
            if groups.setdefault(column, group) != group:
                raise ModelError(f"bundles put {column} in different groups ({groups[column]}, "
                                 f"{group}): give their providers one mapping")
    return Declared(declared_name_agreement(manifests), groups)


def declared_name_agreement(manifests: list[dict]) -> dict[str, list[float]]:
    """Each name filter column's agreement shares (equal, then each Dice level) as the
    providers measured them on their plaintext, averaged over bundles by pairs sampled."""
    totals: dict[str, tuple[float, np.ndarray]] = {}
    for manifest in manifests:
        for column, measured in manifest.get("name_agreement", {}).items():
            pairs, shares = measured["pairs"], np.array(measured["shares"], dtype=float)
            before = totals.get(column, (0, np.zeros_like(shares)))
            totals[column] = (before[0] + pairs, before[1] + pairs * shares)
    return {c: (total / pairs).tolist() for c, (pairs, total) in totals.items() if pairs}


def column_kinds(manifests: list[dict]) -> dict[str, str]:
    """Each column's kind as the bundles' manifests declare it (the first declaration)."""
    kinds: dict[str, str] = {}
    for manifest in manifests:
        for column, kind in manifest["token_kinds"].items():
            if kinds.setdefault(column, kind) != kind:
                raise ModelError(f"bundles declare {column} as both {kinds[column]} and {kind}: "
                                 "hash them with one schema and one mapping")
    return kinds


def plaintext_kinds(columns: list[str]) -> dict[str, str]:
    """Kinds for the plaintext baseline's columns, which have no manifest: the schema's."""
    schema = linkage_schema()
    out = {c: "record" for c in RECORD_KEY}
    for column in columns:
        spec = schema["tokens"].get(column) or schema["tokens"].get(f"{column}{BLOOM_SUFFIX}")
        if spec:
            out[column] = "bloom" if spec["transform"] == "bloom" else "token"
        elif column in EVENT_DATES:
            out[column] = "event"
    return {c: k for c, k in out.items() if c in columns}


@contextlib.contextmanager
def one_thread(con: duckdb.DuckDBPyConnection):
    """DuckDB on one thread for a while: a parallel GROUP BY yields its rows, and parallel
    sums add, in a different order each run, so EM's m probabilities would differ in their
    last bits; on one thread the same inputs train the same model, bit for bit."""
    threads = con.execute("SELECT current_setting('threads')").fetchall()[0][0]
    con.execute("SET threads = 1").fetchall()
    try:
        yield
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
    return DuckDBAPI(connection=con)


SPILL_PREFIX = "linkage-duckdb-"
PAIRS_PREFIX = "linkage-pairs-"


def _remove_stale_spill_folders() -> None:
    """DuckDB spills work beyond its memory limit to a folder it removes when it closes; a
    killed run leaves its folder behind, holding decrypted tokens (and its scored pairs'
    folder, ``pairs_file``). Each run removes those of runs no longer alive."""
    temporary = Path(tempfile.gettempdir())
    for prefix in (SPILL_PREFIX, PAIRS_PREFIX):
        for folder in temporary.glob(f"{prefix}*"):
            pid = folder.name.removeprefix(prefix).split("-")[0]
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


def _register(db_api: DuckDBAPI, tokens: pd.DataFrame | list[pa.Table],
              kinds: dict[str, str] | None = None):
    """The records in DuckDB, in unique-id order with their row number ``rid``, a pre-link
    key, Bloom filters cast to DuckDB's BIT type (Dice in SQL) and ``derived_columns``.
    ``tokens`` is one table (the plaintext baseline) or the bundles' linkage parts as Arrow
    tables, decrypted in memory: nothing decrypted is written to disk. Only the columns the
    model can use (by their ``kinds``, from the manifests) are kept. Returns the registered
    table, its columns, its size and the kinds of the columns kept."""
    con = db_api.duckdb_con
    if isinstance(tokens, pd.DataFrame):
        kinds = kinds or plaintext_kinds(list(tokens.columns))
        wanted = model_columns(kinds)
        table = pa.Table.from_pandas(tokens[[c for c in tokens.columns if c in wanted]],
                                     preserve_index=False)
    else:
        kinds = kinds or {}
        wanted = model_columns(kinds)
        table = pa.concat_tables([t.select([c for c in t.column_names if c in wanted])
                                  for t in tokens], promote_options="permissive")
    con.register("linking_input", table)
    wanted = _carried(con, "linking_input", wanted, kinds)
    select = ", ".join(f"CAST({c} AS BIT) AS {c}" if c.endswith(BLOOM_SUFFIX) else
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
        raise ModelError(f"{repeated:,} records are given twice (one provider's record of one "
                         "period in two bundles, or one bundle given twice): give each once")
    kept = {c: kinds[c] for c in wanted if c in kinds}
    return (db_api.register("linking_records"),
            set(wanted) | set(derived) | {"unique_id", "prelink"}, size, kept)


def _carried(con: duckdb.DuckDBPyConnection, table: str, wanted: list[str],
             kinds: dict[str, str]) -> list[str]:
    """The wanted columns that can be evidence: a column every bundle leaves empty (an agency
    with nothing to send), or a token no two records share (a candidate number that only one
    file carries), never agrees, and no comparison is built on it."""
    present = [row[0] for row in con.execute(f"DESCRIBE SELECT * FROM {table}").fetchall()]
    columns = [c for c in wanted if c in present]
    counts = con.execute("SELECT " + ", ".join(
        f"count({c}), count(DISTINCT {c})" if kinds.get(c) == "token" else f"count({c}), 0"
        for c in columns) + f" FROM {table}").fetchall()[0]
    # a schema token is compared across its family (a former UPN with another record's
    # UPN), so only a generic field's own token is judged by its own repeats
    schema_tokens = set(linkage_schema()["tokens"])
    kept = []
    for i, column in enumerate(columns):
        held, distinct = counts[2 * i], counts[2 * i + 1]
        repeats = (kinds.get(column) != "token" or column in schema_tokens
                   or distinct < held)
        if column in RECORD_KEY or (held and repeats):
            kept.append(column)
    return kept


def derived_columns(columns: list[str]) -> dict[str, str]:
    """Columns computed once per record so that the model's SQL, run once per pair, is cheap:
    each Bloom filter's set-bit count and digest, and the date of birth of adoption records
    (which block on it with every other source, one side at a time). The plaintext baseline's
    names get the digest a salted filter would have: of the salt and the name."""
    derived = {}
    for column in (c for c in columns if c.endswith(BLOOM_SUFFIX)):
        derived[bits_column(column)] = f"CAST(bit_count({column}) AS SMALLINT)"
        derived[digest_column(column)] = (  # 63 bits, to be signed; NULL stays NULL
            f"CASE WHEN {column} IS NOT NULL THEN CAST(hash({column}) >> 1 AS BIGINT) END")
    for name in ("forename", "surname"):
        salt = name_salt(f"{name}{BLOOM_SUFFIX}", set(columns))
        if name in columns and salt:
            derived[digest_column(f"{name}{BLOOM_SUFFIX}")] = (
                f"CASE WHEN {name} IS NOT NULL AND {salt} IS NOT NULL "
                f"THEN CAST(hash({salt} || '|' || {name}) >> 1 AS BIGINT) END")
    if "sex_dob" in columns:
        derived[ADOPTION_SEX_DOB] = "CASE WHEN source LIKE 'asg%' THEN sex_dob END"
    return derived


def train_and_predict(tokens: pd.DataFrame | list[pa.Table],
                      model_path: Path | dict | None = None,
                      seed: int = 1, db_api: DuckDBAPI | None = None,
                      kinds: dict[str, str] | None = None,
                      declared: Declared | None = None,
                      previous: pd.DataFrame | None = None,
                      decided: Decided | None = None, keep_pairs: bool = False) -> LinkResult:
    """Train a new model (or use a saved one, ``model_path``: a file or the model itself),
    score pairs, and cluster; with ``keep_pairs``, the scored pairs' agreement patterns are
    left in a file (``LinkResult.pairs``) the caller removes (``remove_pairs``).

    ``tokens`` is a table of records (the plaintext baseline) or the bundles' linkage parts,
    whose columns' ``kinds`` the manifests declare (``column_kinds``). ``previous`` (person_key
    and the record key) holds the spine's persons fixed (``anchors``); ``decided`` holds a
    reviewer's must-links and cannot-links (``linkage.match.decided``). The same inputs
    give the same result: records are numbered in unique-id order and ties are broken by it.
    """
    own = db_api is None
    db_api = db_api or duckdb_api()
    try:
        return _train_and_predict(db_api, tokens, kinds, model_path, seed, declared, previous,
                                  decided, keep_pairs)
    finally:
        if own:  # DuckDB's memory goes back before the spine is written
            db_api.duckdb_con.close()


def _train_and_predict(db_api: DuckDBAPI, tokens: pd.DataFrame | list[pa.Table],
                       kinds: dict[str, str] | None, model_path: Path | dict | None,
                       seed: int, declared: Declared | None = None,
                       previous: pd.DataFrame | None = None,
                       decided: Decided | None = None, keep_pairs: bool = False) -> LinkResult:
    con = db_api.duckdb_con
    records, columns, size, kinds = _register(db_api, tokens, kinds)
    patterns = identifier_patterns(con, kinds)
    if model_path is not None:
        linker = Linker(records, saved_model(model_path, columns), log_level=logging.ERROR)
        blocking = []
    else:
        plan = model_plan(con, records, columns, kinds, size, declared=declared)
        blocking = plan.blocking
        trainer = Linker(records, plan.settings("duckdb"), log_level=logging.ERROR)
        linker = Linker(records, {**fit(trainer, plan, seed, con), **scoring_columns()},
                        log_level=logging.ERROR)
    predictions = linker.inference.predict(
        threshold_match_probability=match_settings()["score_floor"])
    model = linker.misc.save_model_to_json()
    model.pop("linker_uid", None)
    pairs = pairs_file() if keep_pairs else None
    try:
        if pairs is not None:
            con.execute(f"COPY ({pair_patterns_sql(predictions.physical_name, model)}) TO "
                        f"'{pairs}' (FORMAT parquet)").fetchall()
        return _clustered_result(con, linker, predictions, size, previous, decided,
                                 LinkResult(pd.DataFrame(), model, 0, [], blocking, pairs,
                                            patterns))
    except BaseException:
        if pairs is not None:
            remove_pairs(pairs)
        raise


def _clustered_result(con, linker: Linker, predictions, size: int,
                      previous: pd.DataFrame | None, decided: Decided | None,
                      result: LinkResult) -> LinkResult:
    """The scored pairs kept, counted and clustered: ``result`` completed."""
    con.execute(f"""CREATE OR REPLACE TABLE cluster_edges AS
        SELECT rid_l, rid_r, match_probability, match_weight,
               prelink_l = prelink_r AS prelinked FROM {predictions.physical_name}
        WHERE {kept_pairs_sql()}""").fetchall()
    pairs_scored = con.execute(
        f"SELECT count(*) FROM {predictions.physical_name}").fetchall()[0][0]
    weight_bins = [[int(b), int(n)] for b, n in con.execute(
        f"SELECT floor(match_weight), count(*) FROM {predictions.physical_name} "
        "GROUP BY 1 ORDER BY 1").fetchall()]
    predictions.drop_table_from_database_and_remove_from_cache()
    linker.table_management.delete_tables_created_by_splink_from_db()
    clusters = clustered(con, size, previous, decided)
    result.clusters, result.pairs_scored = _with_confidence(con, clusters), pairs_scored
    result.weight_bins = weight_bins
    return result


def remove_pairs(pairs: Path) -> None:
    """Remove a run's scored-pairs folder (made by ``pairs_file``) with all it holds."""
    folder = next((p for p in (pairs, *pairs.parents) if p.name.startswith(PAIRS_PREFIX)),
                  None)
    if folder is not None:
        shutil.rmtree(folder, ignore_errors=True)


def identifier_patterns(con: duckdb.DuckDBPyConnection, kinds: dict[str, str]) -> list[dict]:
    """Per source, the registered records by which tokens, name filters and care-event dates
    they hold (the report's completeness and unlinkables), counted in DuckDB."""
    return presence_patterns(con, "linking_records", [
        c for c, kind in kinds.items() if kind in ("token", "bloom", "event")])


def pairs_file(folder: Path | None = None) -> Path:
    """A new file for a run's scored pairs, until the spine takes them in, in a new folder
    under ``folder`` (by default the temporary folder). It holds record numbers and agreement
    levels only, no token, but is removed as soon as it is read."""
    # named by the process, so a run killed before the spine took them in has its folder
    # removed by the next run (``_remove_stale_spill_folders``)
    made = tempfile.mkdtemp(prefix=f"{PAIRS_PREFIX}{os.getpid()}-", dir=folder)
    return Path(made) / "scored_pairs.parquet"


def pair_patterns_sql(predictions: str, model: dict) -> str:
    """Each scored pair as the spine keeps it (``scored_pair``): its two records' numbers,
    Splink's match weight and probability, whether it is a pre-link, and per comparison the
    level it fell in (gamma, read back from the weight Splink gave it) and, where term
    frequencies adjust it, the adjustment in bits. The same SQL runs on DuckDB and Spark."""
    columns = ["rid_l AS record_l", "rid_r AS record_r", "match_weight", "match_probability",
               "prelink_l = prelink_r AS prelinked"]
    for name in (c["output_column_name"] for c in model["comparisons"]):
        columns.append(f"{gamma_sql(model, name, f'mw_{name}')} AS gamma_{name}")
    columns += [f"CAST(mw_tf_adj_{name} AS DOUBLE) AS tf_{name}"
                for name in tf_comparisons(model)]
    return f"SELECT {', '.join(columns)} FROM {predictions} ORDER BY rid_l, rid_r"


def clustered(con: duckdb.DuckDBPyConnection, size: int,
              previous: pd.DataFrame | None = None, decided: Decided | None = None
              ) -> np.ndarray:
    """Cluster the kept pairs (``cluster_edges``) of the registered records, with the
    spine's persons held fixed when ``previous`` gives them (``anchors``), and a reviewer's
    decisions as constraints that override them (``decided``)."""
    must, cannot = decided_tables(con, decided)
    if previous is None or previous.empty or not anchor_records(con, previous, UNIQUE_ID_SQL):
        return cluster(con, "linking_records", "cluster_edges", size, must=must, cannot=cannot)
    override_anchors(con, must, cannot)
    return cluster(con, "linking_records", anchored_edges(con), size, ANCHORS, must, cannot)


def kept_pairs_sql(prelinked: str = "prelink_l = prelink_r") -> str:
    """The scored pairs clustering considers: those at or above the threshold, and pre-links
    (one provider record across periods: ``prelinked``), which hold unless the evidence
    strongly contradicts them and are considered first."""
    match = match_settings()
    return (f"match_probability >= {match['threshold']} OR ({prelinked} AND "
            f"match_probability >= {match['prelink_floor']})")


def saved_model(model_path: Path | dict, columns: set[str] | None = None) -> dict:
    """A model saved by an earlier run (a file, or the model a spine version holds), with the
    columns each scored pair must keep; refused if it reads a column these records do not
    have (it was trained on other fields)."""
    model = json.loads(model_path.read_text()) if isinstance(model_path, Path) else model_path
    missing = sorted(model_columns_read(model) - columns) if columns is not None else []
    if missing:
        where, fix = ((f"{model_path}: the model", "link without --model to train one")
                      if isinstance(model_path, Path) else
                      ("the spine's model", "link with --retrain to train a new one"))
        raise ModelError(f"{where} compares {', '.join(missing)}, which these bundles do not "
                         f"carry; {fix}")
    retained = model.get("additional_columns_to_retain", [])
    return {**model, **scoring_columns(), "additional_columns_to_retain": retained + [
        c for c in RETAINED if c not in retained]}


def model_columns_read(model: dict) -> set[str]:
    """The record columns a saved model's comparisons and blocking rules read."""
    sql = [level["sql_condition"] for comparison in model.get("comparisons", [])
           for level in comparison["comparison_levels"]]
    sql += [rule["blocking_rule"] if isinstance(rule, dict) else rule
            for rule in model.get("blocking_rules_to_generate_predictions", [])]
    read = set()
    for text in sql:
        read |= set(re.findall(r'"?([a-z][a-z0-9_]*)_[lr]"?\b', text))
        read |= set(re.findall(r"\b[lr]\.\"?([a-z][a-z0-9_]*)", text))
    return read


def scoring_columns() -> dict:
    """What scoring keeps beside each pair, whatever the model says."""
    # the intermediate columns are each comparison's level and term-frequency adjustment:
    # the pair's agreement pattern, which the spine keeps so that a link can be explained
    return {"additional_columns_to_retain": RETAINED,
            "retain_intermediate_calculation_columns": True, "retain_matching_columns": False}


@dataclass
class ModelPlan:
    """What the columns present make of the schema: comparisons, blocking rules (each with
    the pairs it makes), the prior's and EM's rules, and the u counted rather than sampled."""

    columns: set[str]
    kinds: dict[str, str]
    sources: set[str]
    groups: dict[str, str]
    blocking: list[dict]
    training: dict
    counted_u: dict

    def settings(self, dialect: str):
        return settings(self.columns, self.kinds, [r["rule"] for r in self.blocking], dialect,
                        self.counted_u, self.sources, self.groups)


def model_plan(con: duckdb.DuckDBPyConnection, records, columns: set[str],
               kinds: dict[str, str], size: int, table: str = "linking_records",
               declared: Declared | None = None) -> ModelPlan:
    """The model for the registered records (``_register``): the same for DuckDB and Spark."""
    declared = declared or Declared()
    sources = {row[0] for row in con.execute(f"SELECT DISTINCT source FROM {table}").fetchall()}
    groups = {c: g for c, g in declared.groups.items() if c in columns}
    return ModelPlan(columns, kinds, sources, groups,
                     blocking_rules(records, columns, kinds, size),
                     training_rules(con, table, records, columns, kinds, size, groups),
                     counted_u(con, columns, table, declared.name_agreement))


def counted_u(con, columns: set[str], table: str = "linking_records",
              declared: dict[str, list[float]] | None = None) -> dict:
    """The u of rare agreement levels, counted over all pairs of records, not sampled; and
    of salted names' levels, counted on pairs of different persons (``_salted_name_u``), or
    where no UPN tells persons apart, as the providers ``declared`` them (measured on their
    plaintext names: ``declared_name_agreement``).

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
    for name, column, tf in _salted_names(columns):
        name_u = _salted_name_u(con, table, column) if {"sex_dob", "upn"} <= columns else None
        if name_u is None and (declared or {}).get(column):
            name_u = (*(max(share, 1e-6) for share in declared[column]), 1e-6)
        if name_u is not None:  # with tf, equal filters are a level of their own
            exact, top, middle, one = name_u
            # without, they join the first Dice level (each floor of one pair counted once)
            out[name] = (exact, top, middle) if tf else (exact + top - one, middle)
    return out


def _salted_names(columns: set[str]) -> list[tuple[str, str, bool]]:
    """Each name comparison on a salted Bloom filter: its name, column and whether equal
    filters are a level of their own (term-frequency adjusted)."""
    out = []
    for name, spec in comparison_specs(columns, {c: "bloom" for c in columns
                                                 if c.endswith(BLOOM_SUFFIX)}).items():
        level = next((lv for lv in spec.get("levels", []) if "name" in lv), None)
        column = level and level["name"]
        if column in columns and name_salt(column, columns):
            out.append((name, column, bool(level.get("tf"))))
    return out


NAME_U_RECORDS = 200_000  # records sampled (by a hash of rid) for the u of salted names
NAME_U_MIN_PAIRS = 1_000


def _salted_name_u(con, table: str, column: str
                   ) -> tuple[float, float, float, float] | None:
    """The u of a salted name's agreement levels (equal filters; Dice at least the first
    threshold, not equal; at least the second), counted on pairs of different persons, and
    the u of one pair.

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
    levels = name_levels()
    pairs, exact, top, middle = con.execute(f"""
        WITH s AS (SELECT * FROM {table} WHERE {column} IS NOT NULL AND upn IS NOT NULL
                   AND sex_dob IS NOT NULL AND hash(rid) % {every} = 0),
        p AS (SELECT l.{digest} = r.{digest} AS exact, {dice_sql} >= {levels[0]} AS top,
                     {dice_sql} >= {levels[1]} AS middle
              FROM s l JOIN s r ON l.sex_dob = r.sex_dob AND l.rid < r.rid
              WHERE l.upn <> r.upn {former})
        SELECT count(*), count(*) FILTER (WHERE exact),
               count(*) FILTER (WHERE top AND NOT exact),
               count(*) FILTER (WHERE middle AND NOT top AND NOT exact) FROM p""").fetchall()[0]
    if pairs < NAME_U_MIN_PAIRS:
        return None
    # a level no pair reached is counted as one pair, never zero
    return max(exact, 1) / pairs, max(top, 1) / pairs, max(middle, 1) / pairs, 1 / pairs


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


def fit(linker: Linker, plan: ModelPlan, seed: int,
        con: duckdb.DuckDBPyConnection | None = None) -> dict:
    """Estimate the prior from the plan's near-certain rules, u by random sampling (bar the
    counted u), and m by EM over each of the plan's training rules; refuse a model whose
    comparisons were not all trained. ``con``, a DuckDB connection, makes EM deterministic.
    Returns the trained model as Splink's settings, ready for a linker to score with."""
    training, settings_ = linker.training, match_settings()["training"]
    training.estimate_probability_two_random_records_match(
        plan.training["prior"], recall=settings_["prior_recall"])
    if not linker.misc.save_model_to_json()["probability_two_random_records_match"]:
        raise ModelError("no two of these records agree on the rules that estimate how many "
                         "pairs are one person (a file in which each person appears once): "
                         "the model cannot be trained on them alone; link them with records "
                         "they share persons with, or give --model")
    training.estimate_u_using_random_sampling(max_pairs=settings_["u_sample_pairs"], seed=seed)
    with one_thread(con) if con is not None else contextlib.nullcontext():
        for rule in plan.training["em"]:
            # at national scale a sample of records (chosen by a hash of their ids, so the
            # same each run) gives nearly the same m probabilities for a fraction of the work
            try:
                training.estimate_parameters_using_expectation_maximisation(
                    rule, estimate_without_term_frequencies=True,
                    max_pairs=settings_["em_sample_pairs"])
            except (ValueError, EMTrainingException) as problem:
                # EM drove a level's m to exactly 0 on this rule's pairs (Splink refuses to
                # keep it), or the rule found no pairs at all (too few records): the rule
                # teaches nothing usable; what no other rule trains is refused below
                if isinstance(problem, ValueError) and "m_probability" not in str(problem):
                    raise
                plan.training.setdefault("failed", []).append(rule)
    model = linker.misc.save_model_to_json()
    model.pop("linker_uid", None)  # a random name for Splink's cached tables, not the model
    untrained = untrained_comparisons(model)
    if untrained:
        raise ModelError(f"the comparison(s) {', '.join(untrained)} could not be trained on "
                         "these records (no pairs found to learn from); map more identifying "
                         "fields or link more records")
    return model


UNOBSERVED_M = 1e-6  # Splink's own m for a level that training never saw


def untrained_comparisons(model: dict) -> list[str]:
    """Comparisons none of whose agreement levels Splink could estimate an m for. A level
    that no training pair reached (a swapped date of birth in a small file), in a comparison
    whose other levels were trained, is given Splink's m for a level not observed."""
    out = []
    for comparison in model["comparisons"]:
        levels = [lv for lv in comparison["comparison_levels"] if not lv.get("is_null_level")]
        if all(lv.get("m_probability") is None for lv in levels[:-1]):
            out.append(comparison["output_column_name"])
            continue
        for level in levels:  # (EM can also drive an m to exactly 0: the same)
            if not level.get("m_probability"):
                level["m_probability"] = UNOBSERVED_M
    return out


def _with_confidence(con, clusters: np.ndarray) -> pd.DataFrame:
    """Each record's cluster, and its strongest link to another record (1 if alone: no doubt)."""
    con.register("record_cluster", pa.table({"rid": np.arange(len(clusters), dtype=np.int64),
                                             "cluster_id": clusters}))
    out = con.execute(f"""
        WITH best AS (SELECT rid, max(p) AS p FROM (
            SELECT rid_l AS rid, match_probability AS p FROM cluster_edges UNION ALL
            SELECT rid_r AS rid, match_probability AS p FROM cluster_edges) GROUP BY rid)
        SELECT r.unique_id, c.cluster_id, r.rid AS record_number,
               {", ".join(f"r.{k}" for k in RECORD_KEY)},
               round(coalesce(best.p, 1.0), 6) AS link_confidence
        FROM linking_records r JOIN record_cluster c USING (rid) LEFT JOIN best USING (rid)
        ORDER BY r.rid""").df()
    con.unregister("record_cluster")
    return out
