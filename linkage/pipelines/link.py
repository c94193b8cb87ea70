"""One `linkage link`: open the bundles, link their tokens, and add a spine version."""

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from linkage.atomic import write_atomically
from linkage.families.derive import derive_families
from linkage.match.decided import Decided
from linkage.match.run import (
    UNIQUE_ID_SQL,
    LinkResult,
    column_kinds,
    declarations,
    model_columns,
    remove_pairs,
    threshold_match_weight,
    train_and_predict,
)
from linkage.pipelines.holdings import Holdings, holdings
from linkage.pseudonymise.bundle import open_bundles
from linkage.pseudonymise.roles import LinkageUnitKeys
from linkage.review.decisions import DecisionFile, Resolved, read_decisions, resolve
from linkage.sources.schema import RECORD_KEY
from linkage.spine.lock import spine_lock
from linkage.spine.store import (
    SpineError,
    assign_keys,
    config_fingerprint,
    connect,
    current_records,
    current_version,
    held_decisions,
    held_parts,
    spine_secret,
    write_version,
)

Progress = Callable[[str], None]


def retired_persons(previous: pd.DataFrame, records: pd.DataFrame) -> pd.DataFrame:
    """Key changes for the spine's persons left with no record (their bundles withdrawn or
    replaced): each retired, with the records it had."""
    gone = previous[~previous.person_key.isin(set(records.person_key))]
    counts = gone.groupby("person_key").size()
    return pd.DataFrame({"change": "retire", "person_key": counts.index,
                         "related_key": None, "records": counts.to_numpy()})


def _chosen_model(model: Path | None, adding: bool, spine_model: tuple | None,
                  holding: Holdings) -> Path | dict | None:
    """The model to score with: the one given; for an addition to the spine, the spine's own,
    unless the new bundles bring columns it was not trained on; otherwise none (train)."""
    if model is None and adding and spine_model is not None and not _new_columns(holding):
        return json.loads(spine_model[0])
    return model


def _scored(opened: list, model: Path | dict | None, previous: pd.DataFrame | None,
            backend: str, decided: Decided | None = None,
            spark_master: str | None = None) -> LinkResult:
    """The bundles' linkage parts, decrypted in memory (only the columns the model can use),
    scored and clustered; ``previous`` holds the spine's persons fixed, ``decided`` holds a
    reviewer's decisions. ``spark_master``: the Spark backend's master (None:
    LINKAGE_SPARK_MASTER, else local mode)."""
    kinds = column_kinds([bundle.manifest for bundle in opened])
    declared = declarations([bundle.manifest for bundle in opened])
    wanted = set(model_columns(kinds))
    tokens = [bundle.token_table([c for c in bundle.token_columns() if c in wanted])
              for bundle in opened]
    if backend == "spark":
        from linkage.match.spark import train_and_predict_spark

        return train_and_predict_spark(tokens, model, kinds=kinds, declared=declared,
                                       previous=previous, decided=decided,
                                       master=spark_master)
    return train_and_predict(tokens, model, kinds=kinds, declared=declared, previous=previous,
                             decided=decided, keep_pairs=True)


def _unique_ids(opened: list) -> pd.Series:
    """The unique id of every record of the bundles (as ``run.UNIQUE_ID_SQL`` makes it)."""
    import duckdb
    import pyarrow as pa

    table = pa.concat_tables([b.token_table(RECORD_KEY) for b in opened],
                             promote_options="permissive")
    con = duckdb.connect()
    try:
        con.register("records", table)
        return con.execute(f"SELECT {UNIQUE_ID_SQL} AS unique_id FROM records").df().unique_id
    finally:
        con.close()


def _decisions(spine: Path, files: list[DecisionFile], opened: list) -> Resolved:
    """The review decisions this link applies: those the spine holds and those given."""
    if not spine.exists():
        held, version = pd.DataFrame(), 0
    else:
        con = connect(spine)
        try:
            held, version = held_decisions(con), current_version(con)
        finally:
            con.close()
    if not files and held.empty:
        return Resolved()
    return resolve(files, held, _unique_ids(opened), version)


def _spine_state(spine: Path) -> tuple[list, pd.DataFrame, tuple | None]:
    """The bundles the spine holds, its records' persons and its model (none if new)."""
    if not spine.exists():  # made only once the bundles are known to be good
        return [], pd.DataFrame(columns=["person_key", *RECORD_KEY]), None
    con = connect(spine)
    try:
        return (held_parts(con), current_records(con),
                con.execute("SELECT model FROM spine_version WHERE version = ?",
                            [current_version(con)]).fetchone())
    finally:
        con.close()


def _new_columns(holding: Holdings) -> set[str]:
    """Columns the added bundles carry and the spine's other bundles do not."""
    added = [b.manifest for b in holding.bundles if b.name in holding.added]
    kept = [b.manifest for b in holding.bundles if b.name in holding.kept]
    return set(column_kinds(added)) - set(column_kinds(kept)) if kept else {"*"}


def model_path_for(spine: Path) -> Path:
    """The trained model is saved beside the spine, so a run can be reproduced from it."""
    return spine.with_name(spine.name + ".model.json")


@dataclass
class Change:
    """What the operator asked of the spine beyond adding bundles."""

    replace: bool = False          # a bundle given may replace one the spine holds
    withdraw: list[str] = field(default_factory=list)  # held bundles to leave out
    retrain: bool = False          # train a new model and re-decide every person
    decisions: list[Path] = field(default_factory=list)  # clerical review decisions files


def link(spine: Path, bundles: list[Path], keys: LinkageUnitKeys, model: Path | None = None,
         seed: int | None = None, progress: Progress = lambda _: None,
         wait: float = 0.0, backend: str = "duckdb", change: Change | None = None,
         spark_master: str | None = None) -> dict:
    """Link the bundles given, with those the spine holds, into a new version of the spine;
    returns the version's summary.

    The spine's persons keep their records and keys, and new records join them or make new
    persons, unless ``change.retrain`` relinks everything from scratch (``anchors``); bundles
    leave the spine only when ``change`` says so (``holdings``). The spine is locked for the
    whole run (a second run waits up to ``wait`` seconds, then refuses), and the new version
    is written in one transaction: a run that fails or is killed leaves the previous version
    as it was. ``spark_master`` names the master of ``backend="spark"`` (a cluster's URL;
    None: LINKAGE_SPARK_MASTER, else the process's session or local mode).
    """
    with spine_lock(spine, wait):
        return _link(spine, bundles, keys, model, seed, progress, backend, change or Change(),
                     spark_master)


def _link(spine: Path, bundle_paths: list[Path], keys: LinkageUnitKeys, model: Path | None,
          seed: int | None, progress: Progress, backend: str, change: Change,
          spark_master: str | None = None) -> dict:
    decision_files = [read_decisions(path) for path in change.decisions]  # before any work
    progress("opening bundles")
    given = open_bundles(bundle_paths, keys)
    held, previous, spine_model = _spine_state(spine)
    holding = holdings(held, given, keys, change.replace, change.withdraw)
    opened = holding.bundles
    if not opened:
        raise SpineError(f"{spine}: no bundle to link: give the bundles (folders made by linkage "
                         "hash), or withdraw fewer")
    adding = not change.retrain and not previous.empty
    decisions = _decisions(spine, decision_files, opened)
    chosen = _chosen_model(model, adding, spine_model, holding)
    records_in = sum(bundle.manifest["rows"]["out"] for bundle in opened)
    progress(f"linking {records_in:,} records on {backend}"
             + (f" ({len(holding.added)} bundles added to the spine's)" if adding else ""))
    result = _scored(opened, chosen, previous if adding else None, backend,
                     Decided(decisions.must, decisions.cannot) if decisions else None,
                     spark_master)
    try:
        return _written(spine, result, opened, holding, previous, model, chosen, seed,
                        progress, decisions)
    finally:
        if result.pairs is not None:
            remove_pairs(result.pairs)


def _written(spine: Path, result: LinkResult, opened: list, holding: Holdings,
             previous: pd.DataFrame, model: Path | None, chosen, seed: int | None,
             progress: Progress, decisions: Resolved) -> dict:
    """The scored and clustered records written as the spine's new version."""
    progress("updating the spine")
    con = connect(spine)
    try:
        taken = set(con.execute("SELECT person_key FROM person").df().person_key)
        version = current_version(con) + 1
        secret = spine_secret(con, seed)
        rng = np.random.default_rng(int.from_bytes(
            hashlib.sha256(f"{secret}|{version}".encode()).digest()[:8], "big"))
        clusters = result.clusters[["cluster_id", *RECORD_KEY, "link_confidence",
                                    "record_number"]]
        keys, changes = assign_keys(clusters[["cluster_id", *RECORD_KEY]], previous, rng, taken)
        records = clusters.assign(person_key=clusters.cluster_id.map(keys))
        retired = retired_persons(previous, records)
        if len(retired):
            changes = pd.concat([changes, retired], ignore_index=True)
        progress("deriving family keys")
        families = derive_families(opened, records, secret)
        inputs = [{"bundle": b.name, "source": b.manifest["source"],
                   "provider": b.manifest["provider"], "periods": b.manifest["periods"],
                   "rows": b.manifest["rows"]["out"],
                   "linkage_part_sha256": b.manifest["parts"]["linkage"]["sha256"]}
                  for b in opened]
        counts = {
            "records": len(records),
            "persons": int(records.person_key.nunique()),
            "records_linked": int(records.person_key.duplicated(keep=False).sum()),
            "records_unlinked": int((~records.person_key.duplicated(keep=False)).sum()),
            "records_in": int(sum(b.manifest["rows"]["in"] for b in opened)),
            "pairs_scored": result.pairs_scored,
            "blocking_rules": result.blocking,
            "match_weights": result.weight_bins,
            "threshold_match_weight": threshold_match_weight(),
            "identifier_patterns": result.identifier_patterns,
            "key_changes": changes.change.value_counts().to_dict(),
            "bundles": holding.summary(),
            "model": ("given" if model is not None else
                      "trained" if chosen is None else "spine's"),
            "families": families.counts(),
        }
        if decisions.counts:
            counts["decisions"] = decisions.counts
        if counts["records"] != counts["records_in"]:  # nothing may be lost on the way
            raise SpineError(f"{spine}: {counts['records_in']:,} records in the bundles but "
                             f"{counts['records']:,} linked; the spine was not changed")
        progress(f"writing version {version}")
        write_version(con, records[["person_key", *RECORD_KEY, "link_confidence",
                                    "record_number"]], changes,
                      inputs, result.model, counts, families.tables(),
                      [b.token_table([*RECORD_KEY, "flags"])
                       for b in opened],
                      audit={"command": "link", "inputs": inputs,
                             "config_sha256": config_fingerprint(), "outputs": counts},
                      held=holding.new_parts(), pairs=result.pairs,
                      decisions=decisions.in_force)
    finally:
        con.close()
    # the model is also kept in the version itself; this copy is for --model
    write_atomically(model_path_for(spine),
                     json.dumps(result.model, indent=2, sort_keys=True) + "\n")
    return {"spine": str(spine), "version": version, **counts}
