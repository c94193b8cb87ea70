"""Bundles: what a provider sends (docs/privacy.md, what a bundle holds).

A bundle is a folder of four files:

- ``linkage.part``: the tokens table (record pseudonyms, keyed tokens, name encodings, event
  tokens and the few attributes matching needs), sealed to the linkage unit's public key;
- ``content.part``: the typed payload for the data custodian (record pseudonyms and content
  columns, no identifier), sealed to the custodian's public key;
- ``manifest.json``: source, provider, periods, row counts, schema version, each token
  column's kind, the key fingerprint and both parts' checksums and recipients;
- ``manifest.sig``: the provider's Ed25519 signature of the manifest, which covers the parts
  through their checksums.

A bundle is written to a temporary folder, checked for leaks, then moved into place: a failed
or leaking run leaves nothing behind. Opening a part decrypts it in memory: nothing decrypted is
ever written to disk.
"""

import dataclasses
import hashlib
import hmac
import io
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
from linkage.pseudonymise.encryption import (
    EncryptionError,
    open_sealed,
    recipient_id,
    seal,
)
from linkage.pseudonymise.events import attributes, event_dates
from linkage.pseudonymise.keys import fingerprint, subkey
from linkage.pseudonymise.manifest import check_manifest
from linkage.pseudonymise.name_u import name_agreement
from linkage.pseudonymise.roles import LinkageUnitKeys, ProviderKeys
from linkage.pseudonymise.signing import SignatureError, sign
from linkage.pseudonymise.tokens import date_part, keyed_tokens, salt_text, transform
from linkage.sources.provider_codes import provider_codes
from linkage.sources.schema import RECORD_KEY, REJECTING, SourceData

BUNDLE_FORMAT = 2
PART_FILES = {"linkage": "linkage.part", "content": "content.part"}
MANIFEST, SIGNATURE = "manifest.json", "manifest.sig"
IDENTIFYING = ["upn", "former_upn", "postcode", "forename", "middle_names", "surname",
               "preferred_surname", "former_surname"]
PSEUDONYM_BYTES = 12  # 96 bits: no two of a provider's ids share one


class BundleError(Exception):
    """A bundle cannot be written or used; the message names the bundle, never a value."""


def linkage_schema() -> dict:
    return load_config("linkage_schema.yaml")


def record_pseudonyms(provider: pd.Series, record_id: pd.Series, key: bytes) -> pd.Series:
    """The linkage unit's name for each record: a keyed pseudonym of the provider's own id.

    Equal (provider, id) pairs get equal pseudonyms, so an LA's 903 and CIN records of one
    child id, and a record across periods, still pre-link; the id itself, and the row it came
    from, stay with the provider. The provider code is taken in its one spelling
    (``provider_codes``), so a truth file or script that writes ``DfE`` names DFE's records.
    """
    label = provider_codes(provider) + "|" + record_id.astype(str)
    codes, uniques = pd.factorize(label, sort=False)
    record_key = subkey(key, "record_id")
    names = [hmac.digest(record_key, value.encode(), hashlib.sha256)[:PSEUDONYM_BYTES].hex()
             for value in uniques]
    return pd.Series(pd.array(names, dtype=object)[codes], index=record_id.index, dtype=object)


def tokenise(data: SourceData, key: bytes | None, schema: dict, workers: int = 1
             ) -> pd.DataFrame:
    """The tokens table: record keys, keyed tokens, Bloom filters, event tokens, attributes.

    Token columns are independent, so with ``workers`` > 1 they are made in parallel
    processes (forked, so the records are shared, not copied). With ``key`` None the same
    table is made of the plaintext values instead (names as text, the provider's own ids):
    the baseline that measures what privacy costs the linkage. It never leaves the linkage
    unit's own measurements. With a key, rows are sorted by record pseudonym, so their order
    says nothing about the provider's file.
    """
    records = data.records
    out = records[RECORD_KEY].copy()
    out["period"] = out.period.astype("int32")
    specs = token_specs(data, schema)
    names = list(specs)
    for name, values in zip(names, _token_columns(names, (data, key, schema, specs), workers),
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
    wanted = attribute_names(schema, data.kind)
    for name, values in attributes(data).items():
        if name in wanted:
            out[name] = values.to_numpy()
    if key is None:
        return out.reset_index(drop=True)
    out["record_id"] = record_pseudonyms(records.provider, records.record_id, key)
    return out.sort_values(RECORD_KEY, kind="stable").reset_index(drop=True)


def token_specs(data: SourceData, schema: dict) -> dict[str, dict]:
    """The tokens this source's records make: the schema's, for the canonical fields they
    hold, and one per mapped field of a generic source that no canonical field takes (an id
    number, a suburb), made by its kind's ``field_kinds`` entry, in a family of its own."""
    records = data.records
    specs = {name: spec for name, spec in schema["tokens"].items()
             if all(field in records for field in spec["fields"])}
    for field, kind in data.token_fields.items():
        rule = schema["field_kinds"][kind]
        specs[f"{field}{rule['suffix']}"] = {"fields": [field], "family": f"field:{field}",
                                            **rule}
    for name, spec in specs.items():  # a grouped field's own token (not its variants)
        field = spec["fields"][0]
        if field in data.field_groups and name in (field, f"{field}_bloom",
                                                   f"{field}{spec.get('suffix', '')}"):
            specs[name] = {**spec, "group": data.field_groups[field]}
    return specs


def attribute_names(schema: dict, kind: str) -> set[str]:
    """The plain attributes the schema lets reach the linkage unit for a source."""
    attrs = schema["attributes"]
    return set(attrs.get("all", [])) | set(attrs.get(kind, []))


def _token_column(name: str, job) -> pd.Series:
    data, key, schema, specs = job
    spec = specs[name]
    columns = [data.records[field] for field in spec["fields"]]
    if key is None:  # the plaintext baseline
        if spec["transform"] == "bloom":
            return normalise_name(columns[0], spec.get("digits", False)).replace("", None)
        return transform(spec["transform"], columns).replace("", None)
    family_key = subkey(key, spec["family"])
    if spec["transform"] == "bloom":
        bloom = schema["bloom"]
        return bloom_filters(columns[0], family_key, bloom["length"], bloom["hashes"],
                             bloom["hardening"], salt_text(spec, data.records, schema),
                             spec.get("digits", False))
    return keyed_tokens(transform(spec["transform"], columns), family_key)


_JOB = None  # the job a forked worker inherits: (data, key, schema, token specs)


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


def content_table(data: SourceData, key: bytes) -> pd.DataFrame:
    """Every content table as rows of (table, provider, period, record pseudonym, JSON payload).

    Content is split from identifiers: identifier columns are left out, and of a generic
    source's fields only categories travel (its names, dates and exact ids are identifiers).
    Records are named by the same pseudonyms as in the linkage part, so the custodian joins
    content to the spine without seeing the provider's ids.
    """
    records = data.records
    pseudonym_of = _pseudonym_map([records, *data.content.values()], key)
    frames = [_as_payload("record", _record_content(records), pseudonym_of)]
    for name, table in sorted(data.content.items()):
        keep = [c for c in table.columns if c.lower() not in IDENTIFIER_CONTENT
                and data.field_kinds.get(c, "category") == "category"]
        frames.append(_as_payload(name, table[keep], pseudonym_of))
    content = pd.concat(frames, ignore_index=True)
    return content.sort_values(["table", "provider", "period", "record_id"],
                               kind="stable").reset_index(drop=True)


def _pseudonym_map(tables: list[pd.DataFrame], key: bytes) -> pd.Series:
    """Each "provider|record id" of the tables -> its pseudonym, each computed once."""
    ids = pd.concat([t[["provider", "record_id"]].astype(str) for t in tables]
                    ).drop_duplicates(ignore_index=True)
    return pd.Series(record_pseudonyms(ids.provider, ids.record_id, key).to_numpy(),
                     index=ids.provider + "|" + ids.record_id)


def _record_content(records: pd.DataFrame) -> pd.DataFrame:
    """What a researcher may see of the record itself: month of birth, sex, ethnicity."""
    dob = pd.to_datetime(records.dob, errors="coerce")
    return pd.DataFrame({
        "provider": records.provider, "period": records.period, "record_id": records.record_id,
        "birth_year_month": dob.dt.strftime("%Y-%m").fillna(""),
        "sex": records.sex, "ethnicity": records.ethnicity, "flags": records["flags"],
    })


def _as_payload(name: str, table: pd.DataFrame, pseudonym_of: pd.Series) -> pd.DataFrame:
    keys = ["provider", "period", "record_id"]
    body = table.drop(columns=[k for k in keys if k in table]).copy()
    for column in body.columns:
        if body[column].dtype == object or "datetime" in str(body[column].dtype):
            body[column] = body[column].map(_jsonable)
    if len(body.columns):
        payload = body.to_json(orient="records", lines=True, force_ascii=False)
        lines = payload.splitlines() if len(body) else []
    else:  # nothing but identifiers: the record is there, with an empty payload
        lines = ["{}"] * len(body)
    provider = table.provider.astype(str)
    return pd.DataFrame({"table": name, "provider": provider.to_numpy(),
                         "period": table.period.astype("int32").to_numpy(),
                         "record_id": (provider + "|" + table.record_id.astype(str)).map(
                             pseudonym_of).to_numpy(),
                         "payload": lines})


def _jsonable(value):
    if value is None or (isinstance(value, float) and value != value):
        return None
    if hasattr(value, "isoformat"):
        return None if pd.isna(value) else value.isoformat()[:10]
    return value


def token_statistics(tokens: pd.DataFrame, schema: dict, specs: dict | None = None) -> dict:
    """Per token column: how many records carry it, distinct values, the top value's share."""
    stats = {}
    for column, kind in token_kinds(tokens, schema, specs).items():
        if kind in ("record", "attribute"):
            continue
        values = tokens[column].dropna()
        if not len(values):
            continue
        counts = values.value_counts()
        stats[column] = {"present": len(values), "distinct": len(counts),
                         "top_share": round(float(counts.iloc[0] / len(values)), 6)}
    return stats


def token_kinds(tokens: pd.DataFrame, schema: dict, specs: dict | None = None
                ) -> dict[str, str]:
    """Each column's kind, as the manifest declares it: record (the record key), token
    (a keyed token compared by equality), bloom (a name encoding compared by Dice), event (an
    event-date token) or attribute (a plain value matching needs)."""
    plain = {a for names in schema["attributes"].values() for a in names}
    kinds = {}
    specs = specs or schema["tokens"]
    for column in tokens.columns:
        spec = specs.get(column, {})
        if column in RECORD_KEY:
            kinds[column] = "record"
        elif spec.get("transform") == "bloom":
            kinds[column] = "bloom"
        elif column in plain:
            kinds[column] = "attribute"
        elif spec:
            kinds[column] = "token"
        else:
            kinds[column] = "event"
    return kinds


# Kinds of a generic source's fields whose plaintext the leak guard looks for. A category is
# content, not an identifier. A sex code is one of a handful of values (M, F, 1, 2, U) that
# adopters' records carry as a plain attribute and that identifies no one alone; it reaches the
# linkage unit only inside keyed tokens (sex_dob), so looking for it would refuse every file.
LEAK_KINDS = {"exact", "date", "name", "text", "postcode"}
NAME_FIELDS = {"forename", "middle_names", "surname", "preferred_surname", "former_surname"}
# Plain cells (the provider code, attributes such as flags, LA codes, sex and counts, and the
# manifest's data-derived values) legitimately hold short codes: a value matches there only
# from this many characters, so a one-letter name or an id of "1" is no leak by coincidence.
PLAIN_MATCH_CHARS = 4
# The manifest's top-level entries whose string values the toolkit writes itself, never from
# the data (versions, the source kind, file names, checksums, key fingerprints, the Bloom
# settings, each column's kind): a forename "token" or "bloom" is no leak.
OWN_MANIFEST_ENTRIES = frozenset({"bundle_format", "schema_version", "toolkit_version",
                                  "source", "key_fingerprint", "parts", "bloom",
                                  "token_kinds", "field_kinds"})


def find_leaks(data: SourceData, tokens: pa.Table, manifest_text: str) -> list[str]:
    """Where the plaintext of an identifier appears in the tokens or manifest: one entry per
    leak, naming the identifier field and the tokens column (or the manifest), never a value.

    The identifiers are the canonical ones (UPNs, names, DOB, postcode), every field of a
    generic source's mapping of kind exact, date, name or postcode (whatever its name), and the
    provider's own record ids. Each is compared, case-insensitively and in Arrow (not row by
    row), as its distinct values: text as read, names also as the Bloom encoder normalises
    them, dates as YYYY-MM-DD and DD/MM/YYYY.

    The rule, strict where no plaintext belongs and tolerant only of coincidence:

    - a cell that should hold no plaintext at all (the record pseudonyms, and every text
      column the manifest does not declare a plain attribute, such as a column slipped in by
      mistake) leaks on any equal value, however short;
    - plain cells (the provider code, the attributes matching needs, and the manifest's
      string values other than those the toolkit writes itself) hold short codes by design,
      so there a value leaks only from ``PLAIN_MATCH_CHARS`` characters: a child named
      ``Al`` is no leak because an LA code or a flag is ``AL``; a whole column of names
      leaked is still caught by its longer names;
    - the source kind and the manifest's own entries (``OWN_MANIFEST_ENTRIES``) and keys are
      the toolkit's own words, not data, and are not compared.
    """
    manifest = json.loads(manifest_text)
    kinds = manifest.get("token_kinds", {})
    plain = {"provider"} | {column for column, kind in kinds.items() if kind == "attribute"}
    places = []  # (where, lower-cased cells, whether they are plain cells)
    for name in tokens.column_names:
        kind = tokens.schema.field(name).type
        if name == "source" or not (pa.types.is_string(kind) or pa.types.is_large_string(kind)):
            continue
        places.append((f"tokens column {name}", pc.utf8_lower(tokens[name]), name in plain))
    manifest_values = sorted(value.lower() for value in _strings(manifest, OWN_MANIFEST_ENTRIES))
    places.append(("the manifest", pa.array(manifest_values, type=pa.string()), True))
    leaks = []
    for field, values in _plaintext(data).items():
        long = pc.filter(values, pc.greater_equal(pc.utf8_length(values), PLAIN_MATCH_CHARS))
        for where, cells, is_plain in places:
            wanted = long if is_plain else values
            if len(wanted) and len(cells) and pc.any(pc.is_in(cells, value_set=wanted)).as_py():
                leaks.append(f"{field} in {where}")
    return leaks


def _plaintext(data: SourceData) -> dict[str, pa.Array]:
    """Each identifier field's distinct plaintext values, lower-cased (see ``find_leaks``)."""
    records = data.records
    found: dict[str, list[pd.Series]] = {"dob": [_date_texts(records.dob)]}
    for field in IDENTIFYING:
        if field in records:
            found[field] = [records[field]]
    fields = data.content.get("fields", pd.DataFrame())
    for name, kind in data.field_kinds.items():
        if kind in LEAK_KINDS and name in fields:
            values = _date_texts(fields[name]) if kind == "date" else fields[name]
            found.setdefault(name, []).append(values)  # a canonical field's both forms
    found["record_id"] = [records.record_id]
    plaintext = {}
    for field, parts in found.items():
        values = pd.Series(pd.concat(parts, ignore_index=True).dropna().astype(str).unique())
        if field in NAME_FIELDS or data.field_kinds.get(field) == "name":
            values = pd.concat([values, normalise_name(values)], ignore_index=True)
        values = values.str.strip().str.lower()
        plaintext[field] = pa.array(values[values != ""].unique(), type=pa.string())
    return plaintext


def _date_texts(dates: pd.Series) -> pd.Series:
    """A date column as the texts a date leaks as: YYYY-MM-DD and DD/MM/YYYY."""
    dates = pd.to_datetime(dates, errors="coerce").dropna()
    return pd.concat([dates.dt.strftime("%Y-%m-%d"), dates.dt.strftime("%d/%m/%Y")])


def _strings(value, own: frozenset[str] = frozenset()) -> set[str]:
    """Every string value in a JSON document (keys are our own field names, not data),
    leaving out the top-level entries named in ``own`` (values the toolkit writes itself)."""
    if isinstance(value, dict):
        return {s for key, item in value.items() if key not in own for s in _strings(item)}
    if isinstance(value, list):
        return {s for item in value for s in _strings(item)}
    return {value} if isinstance(value, str) else set()


@dataclass
class WrittenBundle:
    path: Path
    manifest: dict


def write_bundle(data: SourceData, keys: ProviderKeys, out: Path, schema: dict | None = None,
                 workers: int = 1) -> WrittenBundle:
    """Pseudonymise ``data`` into the bundle folder ``out`` (which must not exist): the
    linkage part sealed to the linkage unit, the content part to the custodian, and the
    manifest signed with the provider's signing key."""
    schema = schema or linkage_schema()
    if out.exists():
        raise BundleError(f"{out}: exists already; a bundle is never overwritten")
    tokens = tokenise(data, keys.linkage_key, schema, workers)
    token_bytes = parquet_bytes(tokens)
    content_bytes = parquet_bytes(content_table(data, keys.linkage_key))
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".bundle-", dir=out.parent))
    try:
        parts = {}
        for part, plaintext, recipient in (("linkage", token_bytes, keys.unit_public),
                                           ("content", content_bytes, keys.custodian_public)):
            sealed = seal(plaintext, recipient, part, keys.linkage_key)
            (staging / PART_FILES[part]).write_bytes(sealed)
            parts[part] = {"file": PART_FILES[part], "sha256": hashlib.sha256(sealed).hexdigest(),
                           "rows": pq.ParquetFile(io.BytesIO(plaintext)).metadata.num_rows,
                           "recipient": recipient_id(recipient)}
        manifest = _manifest(data, keys.linkage_key, tokens, schema, parts)
        text = json.dumps(manifest, indent=2, sort_keys=True) + "\n"
        leaks = find_leaks(data, pq.read_table(io.BytesIO(token_bytes)), text)
        if leaks:
            raise BundleError(f"{out}: refused to write: plaintext {'; '.join(leaks)} "
                              "(leak guard)")
        (staging / MANIFEST).write_text(text, encoding="utf-8")
        signature = sign(keys.signing_key, text.encode("utf-8"))
        (staging / SIGNATURE).write_text(json.dumps(signature, sort_keys=True) + "\n",
                                         encoding="utf-8")
        staging.rename(out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return WrittenBundle(out, manifest)


def parquet_bytes(frame: pd.DataFrame) -> bytes:
    """A frame as zstd Parquet bytes without its index (deterministic bytes)."""
    sink = pa.BufferOutputStream()
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), sink, compression="zstd")
    return sink.getvalue().to_pybytes()


def write_parquet(frame: pd.DataFrame, path: Path) -> None:
    """Write a frame as zstd Parquet without its index (deterministic bytes)."""
    path.write_bytes(parquet_bytes(frame))


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def name_agreement_shares(data: SourceData, specs: dict, schema: dict) -> dict:
    """For each name filter column, how often two random records' names agree, by level
    (``name_u``): the linkage unit's u for names it can only compare within a salt."""
    out = {}
    for column, spec in specs.items():
        if spec["transform"] == "bloom" and "salt" in spec:  # what only salting hides
            shares = name_agreement(data.records[spec["fields"][0]], schema["name_levels"])
            if shares:
                out[column] = shares
    return out


def _manifest(data: SourceData, key: bytes, tokens: pd.DataFrame, schema: dict,
              parts: dict) -> dict:
    specs = token_specs(data, schema)
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
        "parts": parts,
        "bloom": schema["bloom"],
        "token_kinds": token_kinds(tokens, schema, specs),
        "name_agreement": name_agreement_shares(data, specs, schema),
        "token_groups": {c: spec["group"] for c, spec in specs.items()
                         if "group" in spec and c in tokens},
        "token_fields": token_statistics(tokens, schema, specs),
        # a generic source: the dataset researchers request, and each field's kind (only
        # categories are in the content part; the custodian refuses the rest by kind)
        **({"dataset": data.dataset, "field_kinds": data.field_kinds}
           if data.kind == "generic" else {}),
    }


@dataclass(frozen=True)
class SignedManifest:
    """A manifest's bytes as signed, and the provider's signature of them."""

    text: bytes
    signature: dict | None


@dataclass
class OpenedBundle:
    """A bundle as its reader sees it: its manifest, and the parts its keys open, decrypted
    in memory only (the linkage unit's key opens the linkage part, the custodian's the
    content part; neither opens the other's)."""

    name: str
    folder: Path | None
    manifest: dict
    keys: LinkageUnitKeys
    signed: SignedManifest | None = None
    # each part's sealed bytes as read (or as the spine holds them), checked and decrypted
    # once, however many stages read it
    sealed: dict = dataclasses.field(default_factory=dict, repr=False)
    _opened: dict = dataclasses.field(default_factory=dict, repr=False)

    def _part(self, part: str) -> bytes:
        if part not in self._opened:
            self._opened[part] = self._decrypted(part)
        return self._opened[part]

    def _decrypted(self, part: str) -> bytes:
        private = self.keys.unit_key if part == "linkage" else self.keys.custodian_key
        if private is None:
            who = "linkage unit" if part == "linkage" else "data custodian"
            raise BundleError(f"{self.name}: its {part} part opens only with the {who}'s "
                              "private key, which was not given")
        data = self.sealed_part(part)
        try:
            return open_sealed(data, private, part, f"{self.name}: {PART_FILES[part]}")
        except EncryptionError as problem:
            raise BundleError(str(problem)) from None

    def sealed_part(self, part: str) -> bytes:
        """A part as sealed by the provider, its checksum checked against the signed
        manifest."""
        if part in self.sealed:
            data = self.sealed[part]
        elif self.folder is None:
            raise BundleError(f"{self.name}: the spine holds only its linkage part; give the "
                              "bundle itself")
        else:
            try:
                data = (self.folder / PART_FILES[part]).read_bytes()
            except OSError as problem:
                raise BundleError(f"{self.name}: {PART_FILES[part]} cannot be read "
                                  f"({problem.strerror}); the bundle is incomplete") from None
        if hashlib.sha256(data).hexdigest() != self.manifest["parts"][part]["sha256"]:
            raise BundleError(f"{self.name}: {PART_FILES[part]} does not match its checksum in "
                              "the signed manifest; the bundle was changed or damaged")
        self.sealed[part] = data
        return data

    def token_table(self, columns: list[str] | None = None) -> pa.Table:
        """The linkage part as an Arrow table (decrypted in memory)."""
        return pq.read_table(io.BytesIO(self._part("linkage")), columns=columns)

    def tokens(self, columns: list[str] | None = None) -> pd.DataFrame:
        return self.token_table(columns).to_pandas()

    def token_columns(self) -> list[str]:
        return list(self.manifest["token_kinds"])

    def content(self) -> pa.Table:
        """The content part as an Arrow table (decrypted in memory; custodian's key only)."""
        return pq.read_table(io.BytesIO(self._part("content")))


def open_bundles(paths: list[Path], keys: LinkageUnitKeys) -> list[OpenedBundle]:
    """Open bundles: each manifest's signature checked against the register of providers'
    keys, its format and schema version known, and its parts' checksums; a set whose key
    fingerprints differ, or that holds one bundle twice, is refused, naming the bundles."""
    opened = []
    for path in paths:
        manifest, signed = _checked_manifest(path, keys)
        # an empty bundle (an agency with nothing to send this time) holds no record, so two
        # agencies' empty bundles are alike without being one bundle given twice
        twin = next((b.name for b in opened if _identity(b.manifest) == _identity(manifest)
                     and manifest["rows"]["out"]), None)
        if twin:
            raise BundleError(f"{path}: is the same bundle as {twin}; give each bundle once")
        opened.append(OpenedBundle(str(path), path, manifest, keys, signed))
    same_key(opened)
    return opened


def held_bundle(name: str, signed: SignedManifest, linkage_part: bytes,
                keys: LinkageUnitKeys) -> OpenedBundle:
    """A bundle a spine holds (its signed manifest and sealed linkage part, as the provider
    made them), checked again against today's register: a provider whose key was withdrawn
    from the register no longer has bundles linked."""
    manifest = _verified_manifest(signed.text, signed.signature, name, keys)
    return OpenedBundle(name, None, manifest, keys, signed, {"linkage": linkage_part})


def same_key(opened: list[OpenedBundle]) -> None:
    """Refuse bundles hashed with different linkage keys, naming them."""
    by_fingerprint: dict[str, list[str]] = {}
    for bundle in opened:
        by_fingerprint.setdefault(bundle.manifest["key_fingerprint"], []).append(bundle.name)
    if len(by_fingerprint) > 1:
        groups = "; ".join(f"key {i + 1}: {', '.join(names)}"
                           for i, names in enumerate(by_fingerprint.values()))
        raise BundleError(f"bundles were hashed with different keys and cannot be linked "
                          f"({groups})")


def _identity(manifest: dict) -> tuple:
    """What makes two bundles the same: one provider's same tokens."""
    return (manifest["source"], str(manifest["provider"]),
            manifest["parts"]["linkage"]["sha256"])


def _checked_manifest(path: Path, keys: LinkageUnitKeys) -> tuple[dict, SignedManifest]:
    if not path.is_dir():
        raise BundleError(f"{path}: no such bundle (a bundle is a folder made by linkage hash)")
    try:
        text = (path / MANIFEST).read_bytes()
    except OSError:
        raise BundleError(f"{path}: has no readable {MANIFEST}; not a bundle") from None
    try:
        signature = json.loads((path / SIGNATURE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        signature = None
    return (_verified_manifest(text, signature, str(path), keys),
            SignedManifest(text, signature))


def _verified_manifest(text: bytes, signature: dict | None, path: str,
                       keys: LinkageUnitKeys) -> dict:
    try:
        manifest = json.loads(text)
    except ValueError:
        raise BundleError(f"{path}: {MANIFEST} is not JSON; the bundle is damaged, ask the "
                          "provider to send it again") from None
    if not isinstance(manifest, dict):
        raise BundleError(f"{path}: {MANIFEST} must be a JSON object (found a "
                          f"{'list' if isinstance(manifest, list) else type(manifest).__name__})"
                          "; the bundle is damaged, ask the provider to send it again")
    if manifest.get("bundle_format") != BUNDLE_FORMAT:
        raise BundleError(f"{path}: is not a bundle of format {BUNDLE_FORMAT} (found "
                          f"{manifest.get('bundle_format')}); ask the provider to hash it "
                          "again with this version")
    try:
        keys.register.verify(text, signature, path)
    except SignatureError as problem:
        raise BundleError(str(problem)) from None
    known = linkage_schema()["schema_version"]
    if manifest.get("schema_version") != known:
        raise BundleError(f"{path}: was made with linkage schema version "
                          f"{manifest.get('schema_version')!r}, not {known} (this "
                          "installation's); hash it again with the same schema")
    problem = check_manifest(manifest, PART_FILES)
    if problem:
        raise BundleError(f"{path}: {problem}; ask the provider to hash it again")
    return manifest
