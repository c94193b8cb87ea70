"""One `linkage link`: open the bundles, link their tokens, and add a spine version."""

import hashlib
import json
from collections.abc import Callable
from pathlib import Path

import numpy as np

from linkage.families.derive import derive_families
from linkage.match.run import (
    column_kinds,
    declarations,
    model_columns,
    threshold_match_weight,
    train_and_predict,
)
from linkage.pseudonymise.bundle import open_bundles
from linkage.pseudonymise.roles import LinkageUnitKeys
from linkage.sources.schema import RECORD_KEY
from linkage.spine.lock import spine_lock
from linkage.spine.store import (
    SpineError,
    assign_keys,
    config_fingerprint,
    connect,
    current_records,
    current_version,
    spine_secret,
    write_version,
)

Progress = Callable[[str], None]


def model_path_for(spine: Path) -> Path:
    """The trained model is saved beside the spine, so a run can be reproduced from it."""
    return spine.with_name(spine.name + ".model.json")


def link(spine: Path, bundles: list[Path], keys: LinkageUnitKeys, model: Path | None = None,
         seed: int | None = None, progress: Progress = lambda _: None,
         wait: float = 0.0, backend: str = "duckdb") -> dict:
    """Link every bundle into a new version of the spine; returns the version's summary.

    The spine is locked for the whole run (a second run waits up to ``wait`` seconds, then
    refuses), and the new version is written in one transaction: a run that fails or is
    killed leaves the previous version as it was.
    """
    with spine_lock(spine, wait):
        return _link(spine, bundles, keys, model, seed, progress, backend)


def _link(spine: Path, bundles: list[Path], keys: LinkageUnitKeys, model: Path | None,
          seed: int | None, progress: Progress, backend: str) -> dict:
    progress("opening bundles")
    opened = open_bundles(bundles, keys)
    records_in = sum(bundle.manifest["rows"]["out"] for bundle in opened)
    progress(f"linking {records_in:,} records on {backend}")
    # the linkage parts, decrypted in memory, only the columns the model can use
    kinds = column_kinds([bundle.manifest for bundle in opened])
    declared = declarations([bundle.manifest for bundle in opened])
    wanted = set(model_columns(kinds))
    tokens = [bundle.token_table([c for c in bundle.token_columns() if c in wanted])
              for bundle in opened]
    if backend == "spark":
        from linkage.match.spark import train_and_predict_spark

        result = train_and_predict_spark(tokens, model, kinds=kinds, declared=declared)
    else:
        result = train_and_predict(tokens, model, kinds=kinds, declared=declared)

    progress("updating the spine")
    con = connect(spine)
    try:
        previous = current_records(con)
        taken = set(con.execute("SELECT person_key FROM person").df().person_key)
        version = current_version(con) + 1
        secret = spine_secret(con, seed)
        rng = np.random.default_rng(int.from_bytes(
            hashlib.sha256(f"{secret}|{version}".encode()).digest()[:8], "big"))
        clusters = result.clusters[["cluster_id", *RECORD_KEY, "link_confidence"]]
        keys, changes = assign_keys(clusters[["cluster_id", *RECORD_KEY]], previous, rng, taken)
        records = clusters.assign(person_key=clusters.cluster_id.map(keys))
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
            "key_changes": changes.change.value_counts().to_dict(),
            "families": families.counts(),
        }
        if counts["records"] != counts["records_in"]:  # nothing may be lost on the way
            raise SpineError(f"{spine}: {counts['records_in']:,} records in the bundles but "
                             f"{counts['records']:,} linked; the spine was not changed")
        progress(f"writing version {version}")
        write_version(con, records[["person_key", *RECORD_KEY, "link_confidence"]], changes,
                      inputs, result.model, counts, families.tables(),
                      [b.token_table([*RECORD_KEY, "flags"])
                       for b in opened],
                      audit={"command": "link", "inputs": inputs,
                             "config_sha256": config_fingerprint(), "outputs": counts})
    finally:
        con.close()
    # the model is also kept in the version itself; this copy is for --model
    partial = model_path_for(spine).with_suffix(".json.partial")
    partial.write_text(json.dumps(result.model, indent=2, sort_keys=True) + "\n")
    partial.replace(model_path_for(spine))
    return {"spine": str(spine), "version": version, **counts}
