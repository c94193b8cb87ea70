"""Bundles: what a provider sends. ``tokens.parquet`` for the linkage unit, ``content.parquet``
for the TRE, and ``manifest.json`` describing both (DESIGN.md, data contracts).

A bundle is written to a temporary folder, checked for leaks, then moved into place: a failed
or leaking run leaves nothing behind.
"""

import hashlib
import json
import multiprocessing
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from linkage import __version__
from linkage.config import load_config
from linkage.pseudonymise.bloom import bloom_filters, normalise_name
from linkage.pseudonymise.events import attributes, event_dates
from linkage.pseudonymise.keys import fingerprint, subkey
from linkage.pseudonymise.tokens import date_part, keyed_tokens, salt_text, transform
from linkage.sources.schema import REJECTING, SourceData

BUNDLE_FORMAT = 1
IDENTIFYING = ["upn", "former_upn", "postcode", "forename", "middle_names", "surname",
               "preferred_surname", "former_surname"]


class BundleError(Exception):
    """A bundle cannot be written or used; the message names the bundle, never a value."""


def linkage_schema() -> dict:
    return load_config("linkage_schema.yaml")


def tokenise(data: SourceData, key: bytes | None, schema: dict, workers: int = 1
             ) -> pd.DataFrame:
    """The tokens table: record keys, keyed tokens, Bloom filters, event tokens, attributes.

    Token columns are independent, so with ``workers`` > 1 they are made in parallel
    processes (forked, so the records are shared, not copied). With ``key`` None the same
    table is made of the plaintext values instead (names as text): the baseline that measures
    what privacy costs the linkage. It never leaves the linkage unit's own measurements.
    """
    records = data.records
    out = records[["source", "provider", "period", "record_id"]].copy()
    out["period"] = out.period.astype("int32")
    names = [name for name, spec in schema["tokens"].items()
             if all(field in records for field in spec["fields"])]
    for name, values in zip(names, _token_columns(names, (data, key, schema), workers),
                            strict=True):
        if values.notna().any():  # a field the source never carries gives no column
            out[name if key else name.removesuffix("_bloom")] = values

    def token(text: pd.Series, family: str) -> pd.Series:
        return keyed_tokens(text, subkey(key, family)) if key else text.replace("", None)

    for event, dates in event_dates(data).items():
        if event not in schema["events"].get(data.kind, []):
            continue
        if event == "mother_child_dob":
            # compared with a baby's own date of birth, so it is a DOB token
            out[event] = token(date_part("date", dates), "dob")
            continue
        out[f"{event}_date"] = token(date_part("date", dates), "event_date")
        out[f"{event}_week"] = token(date_part("iso_week", dates), "event_week")
    for name, values in attributes(data).items():
        out[name] = values.to_numpy()
    return out.reset_index(drop=True)


def _token_column(name: str, job) -> pd.Series:
    data, key, schema = job
    spec = schema["tokens"][name]
    columns = [data.records[field] for field in spec["fields"]]
    if key is None:  # the plaintext baseline
        if spec["transform"] == "bloom":
            return normalise_name(columns[0]).replace("", None)
        return transform(spec["transform"], columns).replace("", None)
    family_key = subkey(key, spec["family"])
    if spec["transform"] == "bloom":
        bloom = schema["bloom"]
        return bloom_filters(columns[0], family_key, bloom["length"], bloom["hashes"],
                             bloom["hardening"], salt_text(spec, data.records, schema))
    return keyed_tokens(transform(spec["transform"], columns), family_key)


_JOB = None  # the job a forked worker inherits: (data, key, schema)


def _forked_token_column(name: str) -> pd.Series:
    return _token_column(name, _JOB)


# below this many records, forking worker processes costs more than it saves
PARALLEL_MIN_RECORDS = 20_000


def _token_columns(names: list[str], job, workers: int) -> list[pd.Series]:
    """Each named token column, in ``workers`` forked processes when more than one and the
    file is large enough to be worth it."""
    global _JOB
    if workers <= 1 or len(names) < 2 or len(job[0].records) < PARALLEL_MIN_RECORDS:
        return [_token_column(name, job) for name in names]
    _JOB = job
    try:
        with multiprocessing.get_context("fork").Pool(workers) as pool:
            return pool.map(_forked_token_column, names, chunksize=1)
    finally:
        _JOB = None


# Columns of readers' content tables that are identifiers: they stay with the provider.
IDENTIFIER_CONTENT = {"upn", "formerupn", "former_upn", "dob", "mc_dob", "expected_dob",
                      "home_post", "pl_post", "postcode", "forename", "surname",
                      "middlenames", "middle_names", "preferredsurname", "formersurname"}


def content_table(data: SourceData) -> pd.DataFrame:
    """Every content table as rows of (table, provider, period, record_id, JSON payload).

    Content is split from identifiers: identifier columns are left out, and of a generic
    source's fields only categories travel (its names, dates and exact ids are identifiers).
    """
    frames = [_as_payload("record", _record_content(data.records))]
    for name, table in sorted(data.content.items()):
        keep = [c for c in table.columns if c.lower() not in IDENTIFIER_CONTENT
                and data.field_kinds.get(c, "category") == "category"]
        frames.append(_as_payload(name, table[keep]))
    return pd.concat(frames, ignore_index=True)


def _record_content(records: pd.DataFrame) -> pd.DataFrame:
    """What a researcher may see of the record itself: month of birth, sex, ethnicity."""
    dob = pd.to_datetime(records.dob, errors="coerce")
    return pd.DataFrame({
        "provider": records.provider, "period": records.period, "record_id": records.record_id,
        "birth_year_month": dob.dt.strftime("%Y-%m").fillna(""),
        "sex": records.sex, "ethnicity": records.ethnicity, "flags": records["flags"],
    })


def _as_payload(name: str, table: pd.DataFrame) -> pd.DataFrame:
    keys = ["provider", "period", "record_id"]
    body = table.drop(columns=[k for k in keys if k in table]).copy()
    for column in body.columns:
        if body[column].dtype == object or "datetime" in str(body[column].dtype):
            body[column] = body[column].map(_jsonable)
    payload = body.to_json(orient="records", lines=True, force_ascii=False)
    lines = payload.splitlines() if len(body) else []
    return pd.DataFrame({"table": name, "provider": table.provider.astype(str).to_numpy(),
                         "period": table.period.astype("int32").to_numpy(),
                         "record_id": table.record_id.astype(str).to_numpy(),
                         "payload": lines})


def _jsonable(value):
    if value is None or (isinstance(value, float) and value != value):
        return None
    if hasattr(value, "isoformat"):
        return None if pd.isna(value) else value.isoformat()[:10]
    return value


def token_statistics(tokens: pd.DataFrame, schema: dict) -> dict:
    """Per token column: distinct values and the share of the most common one."""
    stats = {}
    token_columns = [c for c in tokens.columns if c not in _plain_columns(tokens, schema)]
    for column in token_columns:
        values = tokens[column].dropna()
        if not len(values):
            continue
        counts = values.value_counts()
        stats[column] = {"present": len(values), "distinct": len(counts),
                         "top_share": round(float(counts.iloc[0] / len(values)), 6)}
    return stats


def _plain_columns(tokens: pd.DataFrame, schema: dict) -> set[str]:
    plain = {"source", "provider", "period", "record_id"}
    attrs = schema["attributes"]
    plain |= set(attrs["all"]) | {a for key, names in attrs.items() if key != "all"
                                  for a in names}
    return {c for c in tokens.columns if c in plain}


def find_leaks(data: SourceData, tokens: pa.Table, manifest_text: str) -> list[str]:
    """Names of identifier fields whose plaintext values appear in the tokens or manifest.

    Every text cell of the tokens table and every string in the manifest is compared with
    every distinct identifier value of the input (in Arrow, not row by row).
    """
    records = data.records
    dates = pd.to_datetime(records.dob, errors="coerce").dropna()
    plaintext = {"dob": pa.array(pd.concat([dates.dt.strftime("%Y-%m-%d"),
                                            dates.dt.strftime("%d/%m/%Y")]).unique())}
    for field in IDENTIFYING:
        if field in records:
            values = pc.unique(pa.array(records[field].astype(str), type=pa.string()))
            plaintext[field] = pc.filter(values, pc.not_equal(values, ""))
    cells = [tokens[name] for name in tokens.column_names
             if pa.types.is_string(tokens.schema.field(name).type)
             or pa.types.is_large_string(tokens.schema.field(name).type)]
    cells.append(pa.chunked_array([pa.array(sorted(_strings(json.loads(manifest_text))),
                                            type=pa.string())]))
    return [field for field, values in plaintext.items()
            if len(values) and any(pc.any(pc.is_in(column, value_set=values)).as_py()
                                   for column in cells)]


def _strings(value) -> set[str]:
    """Every key and string value in a JSON document."""
    if isinstance(value, dict):
        return set(value) | {s for item in value.values() for s in _strings(item)}
    if isinstance(value, list):
        return {s for item in value for s in _strings(item)}
    return {value} if isinstance(value, str) else set()


@dataclass
class WrittenBundle:
    path: Path
    manifest: dict


def write_bundle(data: SourceData, key: bytes, out: Path, schema: dict | None = None,
                 workers: int = 1) -> WrittenBundle:
    """Pseudonymise ``data`` with ``key`` into the bundle folder ``out`` (which must not exist)."""
    schema = schema or linkage_schema()
    if out.exists():
        raise BundleError(f"{out}: exists already; a bundle is never overwritten")
    tokens = tokenise(data, key, schema, workers)
    content = content_table(data)
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".bundle-", dir=out.parent))
    try:
        write_parquet(tokens, staging / "tokens.parquet")
        write_parquet(content, staging / "content.parquet")
        manifest = _manifest(data, key, tokens, schema, staging)
        text = json.dumps(manifest, indent=2, sort_keys=True) + "\n"
        leaks = find_leaks(data, pq.read_table(staging / "tokens.parquet"), text)
        if leaks:
            raise BundleError(f"{out}: refused to write: plaintext {', '.join(leaks)} found in "
                              "the tokens or manifest (leak guard)")
        (staging / "manifest.json").write_text(text, encoding="utf-8")
        staging.rename(out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return WrittenBundle(out, manifest)


def write_parquet(frame: pd.DataFrame, path: Path) -> None:
    """Write a frame as zstd Parquet without its index (deterministic bytes)."""
    table = pa.Table.from_pandas(frame, preserve_index=False)
    pq.write_table(table, path, compression="zstd")


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _manifest(data: SourceData, key: bytes, tokens: pd.DataFrame, schema: dict,
              folder: Path) -> dict:
    flags = data.records["flags"]
    rejected = flags.str.split(";").map(lambda codes: bool(REJECTING & set(codes)))
    return {
        "bundle_format": BUNDLE_FORMAT,
        "schema_version": schema["schema_version"],
        "toolkit_version": __version__,
        "source": data.kind,
        "provider": sorted(set(data.records.provider.astype(str))
                           | ({data.provider} if data.provider else set())),
        "periods": sorted(int(p) for p in set(data.records.period)),
        "key_fingerprint": fingerprint(key),
        "rows": {"in": len(data.records), "out": len(tokens),
                 "flagged": int((flags != "").sum()), "rejected": int(rejected.sum())},
        "files": {name: {"sha256": sha256_file(folder / name),
                         "rows": pq.ParquetFile(folder / name).metadata.num_rows}
                  for name in ("tokens.parquet", "content.parquet")},
        "bloom": schema["bloom"],
        "token_fields": token_statistics(tokens, schema),
    }


@dataclass
class OpenedBundle:
    """A bundle as the linkage unit sees it: where its files are, and its manifest."""

    name: str
    folder: Path
    manifest: dict

    def tokens(self) -> pd.DataFrame:
        return pd.read_parquet(self.folder / "tokens.parquet")


def open_bundles(paths: list[Path], private_key=None, workdir: Path | None = None
                 ) -> list[OpenedBundle]:
    """Open bundles (folders, or encrypted files with ``private_key``), check each file's
    checksum, and refuse a set whose key fingerprints differ, naming the bundles."""
    from linkage.pseudonymise.encryption import decrypt_bundle

    opened = []
    for path in paths:
        folder = path
        if path.is_file():
            if private_key is None:
                raise BundleError(f"{path}: is an encrypted bundle; give --decrypt-key")
            base = workdir or Path(tempfile.mkdtemp(prefix="linkage-open-"))
            folder = decrypt_bundle(path, private_key, base / f"{len(opened):04d}")
        elif not path.is_dir():
            raise BundleError(f"{path}: no such bundle")
        manifest = _checked_manifest(path, folder)
        # an empty bundle (an agency with nothing to send this time) holds no record, so two
        # agencies' empty bundles are alike without being one bundle given twice
        twin = next((b.name for b in opened if _identity(b.manifest) == _identity(manifest)
                     and manifest["files"]["tokens.parquet"]["rows"]), None)
        if twin:
            raise BundleError(f"{path}: is the same bundle as {twin}; give each bundle once")
        opened.append(OpenedBundle(str(path), folder, manifest))
    by_fingerprint: dict[str, list[str]] = {}
    for bundle in opened:
        by_fingerprint.setdefault(bundle.manifest["key_fingerprint"], []).append(bundle.name)
    if len(by_fingerprint) > 1:
        groups = "; ".join(f"key {i + 1}: {', '.join(names)}"
                           for i, names in enumerate(by_fingerprint.values()))
        raise BundleError(f"bundles were hashed with different keys and cannot be linked "
                          f"({groups})")
    return opened


def _identity(manifest: dict) -> tuple:
    """What makes two bundles the same: one provider's same tokens."""
    return (manifest["source"], str(manifest["provider"]),
            manifest["files"]["tokens.parquet"]["sha256"])


def _checked_manifest(path: Path, folder: Path) -> dict:
    try:
        manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        raise BundleError(f"{path}: has no readable manifest.json; not a bundle") from None
    for name, facts in manifest.get("files", {}).items():
        if not (folder / name).is_file() or sha256_file(folder / name) != facts["sha256"]:
            raise BundleError(f"{path}: {name} does not match its checksum in the manifest; "
                              "the bundle was changed or damaged")
    return manifest
