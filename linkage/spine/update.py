"""One `linkage link`: open the bundles, link their tokens, and add a spine version."""

import hashlib
import json
from collections.abc import Callable
from pathlib import Path

import numpy as np

from linkage.match.run import train_and_predict
from linkage.pseudonymise.bundle import open_bundles
from linkage.spine.store import (
    RECORD_KEY,
    SpineError,
    assign_keys,
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


def link(spine: Path, bundles: list[Path], private_key=None, model: Path | None = None,
         seed: int | None = None, progress: Progress = lambda _: None) -> dict:
    """Link every bundle into a new version of the spine; returns the version's summary."""
    progress("opening bundles")
    opened = open_bundles(bundles, private_key)
    records_in = sum(bundle.manifest["rows"]["out"] for bundle in opened)
    progress(f"linking {records_in:,} records")
    # DuckDB reads the tokens from the bundles' Parquet files; pandas never holds them all
    result = train_and_predict([bundle.folder / "tokens.parquet" for bundle in opened], model)

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
        inputs = [{"bundle": b.name, "source": b.manifest["source"],
                   "provider": b.manifest["provider"], "periods": b.manifest["periods"],
                   "rows": b.manifest["rows"]["out"],
                   "tokens_sha256": b.manifest["files"]["tokens.parquet"]["sha256"]}
                  for b in opened]
        counts = {
            "records": len(records),
            "persons": int(records.person_key.nunique()),
            "records_linked": int(records.person_key.duplicated(keep=False).sum()),
            "records_unlinked": int((~records.person_key.duplicated(keep=False)).sum()),
            "records_in": int(sum(b.manifest["rows"]["in"] for b in opened)),
            "pairs_scored": result.pairs_scored,
            "key_changes": changes.change.value_counts().to_dict(),
        }
        if counts["records"] != counts["records_in"]:  # nothing may be lost on the way
            raise SpineError(f"{spine}: {counts['records_in']:,} records in the bundles but "
                             f"{counts['records']:,} linked; the spine was not changed")
        write_version(con, records[["person_key", *RECORD_KEY, "link_confidence"]], changes,
                      inputs, result.model, counts)
    finally:
        con.close()
    model_path_for(spine).write_text(json.dumps(result.model, indent=2, sort_keys=True) + "\n")
    return {"spine": str(spine), "version": version, **counts}
