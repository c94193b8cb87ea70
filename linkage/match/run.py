"""Train the model, score candidate pairs, and cluster records into persons (Splink on DuckDB)."""

import json
import logging
import math
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
from splink import DuckDBAPI, Linker

from linkage.match.cluster import cluster
from linkage.match.model import settings, training_rules

KEY_COLUMNS = ["source", "provider", "period", "record_id"]
MATCH_THRESHOLD = 0.9        # clusters join records whose pair scores at least this
PRELINK_FLOOR = 0.01         # a pre-link holds unless its pair scores below this
SCORE_FLOOR = 0.1            # pairs scored below this are not kept at all


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
    """All bundles' tokens in one table, with a unique id and a pre-link key per record."""
    table = pd.concat(tokens, ignore_index=True)
    table["period"] = table.period.astype(int)
    table["unique_id"] = (table.source + "|" + table.provider.astype(str) + "|"
                          + table.period.astype(str) + "|" + table.record_id.astype(str))
    # the same provider's own id for a record, across its periods
    table["prelink"] = (table.source + "|" + table.provider.astype(str) + "|"
                        + table.record_id.astype(str))
    if table.unique_id.duplicated().any():
        raise ValueError("two bundles hold the same record of the same period")
    return table


def _register(db_api: DuckDBAPI, table: pd.DataFrame):
    """Register the table with Bloom filters cast to DuckDB's BIT type (Dice in SQL)."""
    con = db_api.duckdb_con
    con.register("linking_input", table)
    blooms = [c for c in table.columns if c.endswith("_bloom")]
    replace = ", ".join(f"{c}::BIT AS {c}" for c in blooms)
    select = f"SELECT * REPLACE ({replace}) FROM linking_input" if blooms else (
        "SELECT * FROM linking_input")
    con.execute(f"CREATE OR REPLACE TABLE linking_records AS {select}")
    return db_api.register("linking_records")


def train_and_predict(table: pd.DataFrame, model_path: Path | None = None,
                      seed: int = 1) -> LinkResult:
    """Train a new model (or load ``model_path``), score pairs, and cluster."""
    db_api = DuckDBAPI()
    records = _register(db_api, table)
    columns = set(table.columns)
    if model_path is not None:
        linker = Linker(records, json.loads(model_path.read_text()), log_level=logging.ERROR)
    else:
        linker = Linker(records, settings(columns), log_level=logging.ERROR)
        _train(linker, columns, seed)
    predictions = linker.inference.predict(threshold_match_probability=SCORE_FLOOR)
    # a pre-link (one provider record across periods) holds unless the evidence strongly
    # contradicts it, and it is considered first when clustering
    edges = db_api.duckdb_con.sql(f"""
        SELECT unique_id_l, unique_id_r, match_probability, match_weight,
               prelink_l = prelink_r AS prelinked FROM {predictions.physical_name}
        WHERE match_probability >= {MATCH_THRESHOLD}
           OR (prelink_l = prelink_r AND match_probability >= {PRELINK_FLOOR})""").df()
    pairs_scored = db_api.duckdb_con.sql(
        f"SELECT count(*) FROM {predictions.physical_name}").fetchall()[0][0]
    weight_bins = [[int(b), int(n)] for b, n in db_api.duckdb_con.sql(
        f"SELECT floor(match_weight), count(*) FROM {predictions.physical_name} "
        "GROUP BY 1 ORDER BY 1").fetchall()]
    clusters = pd.DataFrame({"unique_id": table.unique_id,
                             "cluster_id": cluster(table, edges)})
    model = linker.misc.save_model_to_json()
    return LinkResult(_with_confidence(table, clusters, edges), model, pairs_scored,
                      weight_bins)


def _train(linker: Linker, columns: set[str], seed: int) -> None:
    training = linker.training
    deterministic = [rule for rule in ("l.upn = r.upn",
                                       "l.sex_dob = r.sex_dob AND l.postcode = r.postcode")
                     if all(f"l.{c}" not in rule or c in columns
                            for c in ("upn", "sex_dob", "postcode"))]
    training.estimate_probability_two_random_records_match(deterministic, recall=0.7)
    training.estimate_u_using_random_sampling(max_pairs=5e6, seed=seed)
    for rule in training_rules(columns):
        training.estimate_parameters_using_expectation_maximisation(rule)


def _with_confidence(table: pd.DataFrame, clusters: pd.DataFrame,
                     edges: pd.DataFrame) -> pd.DataFrame:
    """Each record's cluster, and its strongest link to another record (1 if alone: no doubt)."""
    best = pd.concat([edges[["unique_id_l", "match_probability"]].set_axis(
                          ["unique_id", "p"], axis=1),
                      edges[["unique_id_r", "match_probability"]].set_axis(
                          ["unique_id", "p"], axis=1)]).groupby("unique_id").p.max()
    out = table[["unique_id", *KEY_COLUMNS]].merge(clusters, on="unique_id")
    out["link_confidence"] = out.unique_id.map(best).fillna(1.0).round(6)
    return out
