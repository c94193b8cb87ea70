"""The spine: a DuckDB file of persons with stable keys, their records, and its versions.

Tables (DESIGN.md, data contracts): ``person`` (person_key, created_version),
``person_record`` (person_key, source, provider, record_id, period, link confidence),
``spine_version`` (version, created_at, inputs with checksums, model parameters, counts) and
``key_change`` (merges and splits between versions), ``held_bundle`` (each linked bundle's
signed manifest and linkage part, still sealed to the linkage unit's key, so new bundles can
be linked to the spine without giving the old ones again), and the family keys of each version
(``adopter_household``, ``child_adopter_link``, ``sibling_group``, ``mother_child_link``;
docs/family-keys.md), and the clerical review decisions in force at each version
(``review_decision``: pairs of records by unique id, match or non-match, the decisions
file's sha256, the version the reviewer saw, and whether the version could apply it). A new
version is written in one
transaction: a failure leaves the previous version as it was.
"""

import hashlib
import json
import os
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd

from linkage import __version__
from linkage.sources.schema import RECORD_KEY

SCHEMA = """
CREATE TABLE IF NOT EXISTS spine_meta (name VARCHAR PRIMARY KEY, value VARCHAR);
CREATE TABLE IF NOT EXISTS person (person_key VARCHAR, created_version INTEGER,
                                   retired_version INTEGER);
CREATE TABLE IF NOT EXISTS person_record (version INTEGER, person_key VARCHAR,
    source VARCHAR, provider VARCHAR, record_id VARCHAR, period INTEGER,
    link_confidence DOUBLE);
CREATE TABLE IF NOT EXISTS spine_version (version INTEGER PRIMARY KEY, created_at VARCHAR,
    inputs VARCHAR, model VARCHAR, counts VARCHAR);
CREATE TABLE IF NOT EXISTS key_change (version INTEGER, change VARCHAR, person_key VARCHAR,
    related_key VARCHAR, records INTEGER);
CREATE TABLE IF NOT EXISTS audit_log (ran_at VARCHAR, command VARCHAR, version INTEGER,
    toolkit_version VARCHAR, inputs VARCHAR, config_sha256 VARCHAR, outputs VARCHAR);
CREATE TABLE IF NOT EXISTS record_profile (version INTEGER, source VARCHAR, provider VARCHAR,
    record_id VARCHAR, period INTEGER, flags VARCHAR);
CREATE TABLE IF NOT EXISTS adopter_household (version INTEGER, household_key VARCHAR,
    person_key VARCHAR, adopters INTEGER, sexes VARCHAR, relationship_status VARCHAR);
CREATE TABLE IF NOT EXISTS child_adopter_link (version INTEGER, child_person_key VARCHAR,
    household_key VARCHAR, confidence DOUBLE, evidence VARCHAR);
CREATE TABLE IF NOT EXISTS sibling_group (version INTEGER, sibling_group_key VARCHAR,
    person_key VARCHAR, confidence DOUBLE, evidence VARCHAR, group_size INTEGER,
    recorded_size INTEGER);
CREATE TABLE IF NOT EXISTS held_bundle (linkage_part_sha256 VARCHAR PRIMARY KEY,
    manifest BLOB, signature VARCHAR, linkage_part BLOB);
CREATE TABLE IF NOT EXISTS mother_child_link (version INTEGER, mother_person_key VARCHAR,
    child_person_key VARCHAR, confidence DOUBLE, evidence VARCHAR);
CREATE TABLE IF NOT EXISTS review_decision (version INTEGER, record_l VARCHAR,
    record_r VARCHAR, decision VARCHAR, file_sha256 VARCHAR, decided_in_version INTEGER,
    applied BOOLEAN);
ALTER TABLE person_record ADD COLUMN IF NOT EXISTS record_number BIGINT;
"""
FAMILY_TABLES = ["adopter_household", "child_adopter_link", "sibling_group",
                 "mother_child_link"]


class SpineError(Exception):
    """The spine cannot be used; the message names the file."""


@dataclass(frozen=True)
class HeldPart:
    """A bundle's linkage part as the spine holds it: sealed, with its signed manifest."""

    name: str
    sha256: str
    manifest: bytes
    signature: dict | None
    linkage_part: bytes | None   # None: linked by a version of linkage that kept no parts


@dataclass
class NewVersion:
    version: int
    records: pd.DataFrame        # person_key and RECORD_KEY and link_confidence
    changes: pd.DataFrame        # change, person_key, related_key, records


def connect(path: Path, read_only: bool = False) -> duckdb.DuckDBPyConnection:
    """Open the spine; made if new, unless ``read_only``. Readers (evaluate, report, extract)
    open it read-only, so a spine on a read-only mount, or one they may not write, can be
    read, and several readers can share it."""
    try:
        con = duckdb.connect(str(path), read_only=read_only)
    except duckdb.Error as problem:
        raise SpineError(f"{path}: cannot be opened as a spine ({type(problem).__name__})"
                         ) from None
    if not read_only:
        con.execute(SCHEMA)
        return con
    tables = {row[0] for row in con.execute("SELECT table_name FROM duckdb_tables()").fetchall()}
    if not {"spine_version", "person_record"} <= tables:
        con.close()
        raise SpineError(f"{path}: is not a spine (a DuckDB file made by linkage link)")
    return con


def writable(path: Path) -> bool:
    """Whether this process may change the spine file (not on a read-only mount, nor
    read-only to this user)."""
    return os.access(path, os.W_OK) and os.access(path.parent, os.W_OK)


def current_version(con) -> int:
    return con.execute("SELECT coalesce(max(version), 0) FROM spine_version").fetchone()[0]


def current_records(con) -> pd.DataFrame:
    """Each record's person key in the latest version."""
    version = current_version(con)
    return con.execute(f"SELECT person_key, {', '.join(RECORD_KEY)} FROM person_record "
                       "WHERE version = ?", [version]).df()


DECISION_COLUMNS = ["record_l", "record_r", "decision", "file_sha256", "decided_in_version",
                    "applied"]


def held_decisions(con, version: int | None = None) -> pd.DataFrame:
    """The review decisions in force at a version (the latest by default)."""
    version = current_version(con) if version is None else version
    return con.execute(f"SELECT {', '.join(DECISION_COLUMNS)} FROM review_decision "
                       "WHERE version = ? ORDER BY record_l, record_r", [version]).df()


def version_inputs(con, version: int | None = None) -> list[dict]:
    """The bundles a version (the latest by default) was linked from, as recorded."""
    version = current_version(con) if version is None else version
    row = con.execute("SELECT inputs FROM spine_version WHERE version = ?",
                      [version]).fetchone()
    return json.loads(row[0]) if row else []


def held_parts(con, version: int | None = None) -> list[HeldPart]:
    """The linkage parts of the bundles a version was linked from, sealed as received."""
    held = {row[0]: row[1:] for row in con.execute(
        "SELECT linkage_part_sha256, manifest, signature, linkage_part FROM held_bundle"
    ).fetchall()}
    out = []
    for entry in version_inputs(con, version):
        sha = entry["linkage_part_sha256"]
        manifest, signature, part = held.get(sha, (b"", None, None))
        out.append(HeldPart(entry["bundle"], sha, bytes(manifest),
                            json.loads(signature) if signature else None,
                            None if part is None else bytes(part)))
    return out


def spine_secret(con, seed: int | None) -> str:
    """The spine's own random secret, made once; it seeds the person keys (never identifiers)."""
    row = con.execute("SELECT value FROM spine_meta WHERE name = 'key_secret'").fetchone()
    if row:
        return row[0]
    value = f"seed-{seed}" if seed is not None else secrets.token_hex(32)
    con.execute("INSERT INTO spine_meta VALUES ('key_secret', ?)", [value])
    return value


def assign_keys(clusters: pd.DataFrame, previous: pd.DataFrame, rng: np.random.Generator,
                taken: set[str]) -> tuple[pd.Series, pd.DataFrame]:
    """Stable person keys for ``clusters`` (cluster_id and RECORD_KEY columns).

    A new cluster keeps an old person's key when it holds most of that person's records and
    that person is the largest share of it (majority overlap); each old key goes to at most one
    cluster. Other clusters get new random keys. Returns the key per cluster and the changes
    (merges: a cluster holding records of several old persons; splits: an old person's records
    now in several clusters).
    """
    new_size = clusters.groupby("cluster_id").size()
    if previous.empty:
        used: set[str] = set()
        keys = {cluster: _new_key(rng, taken, used) for cluster in new_size.index}
        return pd.Series(keys, name="person_key"), _changes(pd.DataFrame(
            columns=["cluster_id", "person_key", "shared"]), keys)
    previous = previous.astype({"period": int, "record_id": str})
    clusters = clusters.astype({"period": int, "record_id": str})
    joined = clusters.merge(previous, on=RECORD_KEY, how="left")
    overlap = (joined.dropna(subset=["person_key"])
               .groupby(["cluster_id", "person_key"]).size().rename("shared").reset_index())
    old_size = previous.groupby("person_key").size()
    overlap["old_share"] = overlap.shared / overlap.person_key.map(old_size)
    overlap["new_share"] = overlap.shared / overlap.cluster_id.map(new_size)
    overlap = overlap.sort_values(["shared", "person_key", "cluster_id"],
                                  ascending=[False, True, True])
    keys = {}
    used: set[str] = set()
    for row in overlap[(overlap.old_share > 0.5) | (overlap.new_share > 0.5)].itertuples():
        if row.cluster_id not in keys and row.person_key not in used:
            keys[row.cluster_id] = row.person_key
            used.add(row.person_key)
    for cluster in new_size.index:
        if cluster not in keys:
            keys[cluster] = _new_key(rng, taken, used)
    changes = _changes(overlap, keys)
    return pd.Series(keys, name="person_key"), changes


def _new_key(rng: np.random.Generator, taken: set[str], used: set[str]) -> str:
    """A random key not used before (``used`` grows with each key handed out)."""
    while True:
        key = "P" + rng.bytes(8).hex()
        if key not in taken and key not in used:
            used.add(key)
            return key


def _changes(overlap: pd.DataFrame, keys: dict) -> pd.DataFrame:
    rows = []
    by_cluster = overlap.groupby("cluster_id")
    for cluster, group in by_cluster:
        if len(group) > 1:
            for row in group.itertuples():
                if row.person_key != keys[cluster]:
                    rows.append(("merge", keys[cluster], row.person_key, int(row.shared)))
    for old_key, group in overlap.groupby("person_key"):
        if len(group) > 1:
            for row in group.itertuples():
                if keys[row.cluster_id] != old_key:
                    rows.append(("split", old_key, keys[row.cluster_id], int(row.shared)))
    return pd.DataFrame(rows, columns=["change", "person_key", "related_key", "records"])


def write_version(con, records: pd.DataFrame, changes: pd.DataFrame, inputs: list[dict],
                  model: dict, counts: dict, families: dict[str, pd.DataFrame] | None = None,
                  tokens: list | None = None, audit: dict | None = None,
                  held: list[HeldPart] | None = None, pairs: Path | None = None,
                  decisions: pd.DataFrame | None = None) -> int:
    """Add a version, with its family tables, the profile of each record (from the
    bundles' linkage parts, ``tokens``: Arrow tables), the sealed linkage parts of its
    bundles not held yet (``held``), its scored pairs (``pairs``, a Parquet file of
    agreement patterns) and the review decisions in force (``decisions``:
    DECISION_COLUMNS), in one transaction; returns its number."""
    version = current_version(con) + 1
    known = set(con.execute("SELECT person_key FROM person").df().person_key)
    current = set(records.person_key)
    con.execute("BEGIN TRANSACTION")
    try:
        new_persons = pd.DataFrame({"person_key": sorted(current - known)})
        new_persons["created_version"] = version
        new_persons["retired_version"] = pd.NA
        con.register("new_persons", new_persons)
        con.execute("INSERT INTO person SELECT person_key, created_version, "
                    "CAST(retired_version AS INTEGER) FROM new_persons")
        retired = sorted(known - current)
        if retired:
            con.register("retired", pd.DataFrame({"person_key": retired}))
            con.execute("UPDATE person SET retired_version = ? WHERE retired_version IS NULL "
                        "AND person_key IN (SELECT person_key FROM retired)", [version])
        rows = records.assign(version=version)[
            ["version", "person_key", *RECORD_KEY, "link_confidence",
             *(["record_number"] if "record_number" in records else [])]]
        con.register("new_records", rows)
        # by name: the table's declared column order is not RECORD_KEY's
        columns = ", ".join(rows.columns)
        con.execute(f"INSERT INTO person_record ({columns}) SELECT {columns} FROM new_records")
        con.register("new_changes", changes.assign(version=version)[
            ["version", "change", "person_key", "related_key", "records"]])
        con.execute("INSERT INTO key_change SELECT * FROM new_changes")
        for table, frame in (families or {}).items():
            _insert(con, table, frame.assign(version=version))
        if tokens:
            _insert_profiles(con, version, tokens)
        for part in held or []:
            con.execute("INSERT INTO held_bundle VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING",
                        [part.sha256, part.manifest, json.dumps(part.signature),
                         part.linkage_part])
        _keep_pairs(con, version, pairs)
        if decisions is not None and len(decisions):
            con.register("new_decisions", decisions[DECISION_COLUMNS].astype(
                {"decided_in_version": "Int64", "applied": bool}))
            con.execute(f"INSERT INTO review_decision (version, {', '.join(DECISION_COLUMNS)}) "
                        f"SELECT {int(version)}, {', '.join(DECISION_COLUMNS)} "
                        "FROM new_decisions")
            con.unregister("new_decisions")
        if audit:
            record_audit(con, version=version, **audit)
        con.execute("INSERT INTO spine_version VALUES (?, ?, ?, ?, ?)", [
            version, datetime.now(UTC).isoformat(timespec="seconds"),
            json.dumps(inputs, sort_keys=True), json.dumps(model, sort_keys=True),
            json.dumps(counts, sort_keys=True)])
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    return version


def _keep_pairs(con, version: int, pairs: Path | None) -> None:
    """The version's scored pairs replace the last version's: ``scored_pair`` explains and
    reviews the latest version only, so the spine does not grow with every delivery. Its
    columns follow the version's model (a level column per comparison). A version with no
    pairs (scored on a backend that kept none) leaves no table."""
    con.execute("DROP TABLE IF EXISTS scored_pair")
    if pairs is not None:
        source = str(pairs).replace("'", "''")
        con.execute(f"CREATE TABLE scored_pair AS SELECT {int(version)} AS version, * "
                    f"FROM read_parquet('{source}')")  # written in record order


def scored_pairs_kept(con) -> bool:
    """Whether the spine holds the latest version's scored pairs."""
    return bool(con.execute("SELECT count(*) FROM duckdb_tables() WHERE table_name = "
                            "'scored_pair'").fetchall()[0][0])


def _insert(con, table: str, frame: pd.DataFrame) -> None:
    """Insert ``frame`` into ``table`` by column name."""
    if table not in FAMILY_TABLES:
        raise ValueError(f"not a family table: {table}")
    con.register("new_rows", frame)
    columns = ", ".join(frame.columns)
    con.execute(f"INSERT INTO {table} ({columns}) SELECT {columns} FROM new_rows")
    con.unregister("new_rows")


def config_fingerprint() -> str:
    """SHA-256 of the configuration files a run depends on (linkage schema, family rules,
    release catalogue, disclosure rules)."""
    from linkage.config import config_path

    digest = hashlib.sha256()
    for name in ("linkage_schema.yaml", "families.yaml", "release.yaml", "disclosure.yaml"):
        digest.update(name.encode() + b"\0" + config_path(name).read_bytes())
    return digest.hexdigest()


def record_audit(con, command: str, version: int, inputs, config_sha256: str,
                 outputs) -> None:
    """One line of the spine's audit log: what ran, on what, with which config, making what."""
    con.execute("INSERT INTO audit_log VALUES (?, ?, ?, ?, ?, ?, ?)", [
        datetime.now(UTC).isoformat(timespec="seconds"), command, version, __version__,
        json.dumps(inputs, sort_keys=True, default=str), config_sha256,
        json.dumps(outputs, sort_keys=True, default=str)])


def _insert_profiles(con, version: int, tokens: list) -> None:
    """Each record's validation flags, for the quality report (no token column is read)."""
    import pyarrow as pa

    table = pa.concat_tables([t.select([*RECORD_KEY, "flags"])
                              for t in tokens], promote_options="permissive")
    con.register("new_profiles", table)
    con.execute(f"""INSERT INTO record_profile SELECT {int(version)}, source,
        CAST(provider AS VARCHAR), CAST(record_id AS VARCHAR), CAST(period AS INTEGER), flags
        FROM new_profiles""")
    con.unregister("new_profiles")


def family_tables(con, version: int | None = None) -> dict[str, pd.DataFrame]:
    """The family tables of a version (the latest by default), without the version column."""
    version = current_version(con) if version is None else version
    return {table: con.execute(f"SELECT * EXCLUDE (version) FROM {table} WHERE version = ?",
                               [version]).df() for table in FAMILY_TABLES}
