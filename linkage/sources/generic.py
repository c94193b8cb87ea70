"""Any CSV or Parquet file, described by a mapping file (MAPPING.yaml):

    record_id: rec_id          # the column holding the provider's own record id
    provider: hospital-a       # optional: a constant provider code
    period: 2024               # optional: a constant period
    dataset: attainment        # optional: the name researchers request its content by
    fields:
      - {name: dob, column: date_of_birth, kind: date, format: "%Y%m%d"}
      - {name: ni_number, column: soc_sec_id, kind: exact}

Kinds: exact, date, name, text, postcode, category, sex. A field named like a canonical
identifier (upn, dob, sex, postcode, forename, surname, ...) fills it when its kind is that
identifier's kind (``CANONICAL_KINDS``): validation goes by kind, never by name, so a
``postcode`` of kind exact (a foreign postcode) is kept as plain text (the token
``postcode_exact``), not checked as a UK postcode. Every other identifying field becomes a
token of its own, by its kind. Fields that describe one thing (an address's street, town and
postcode) may share a ``group``: the model compares them as one, so that a shared address
counts once. Every field is kept, cleaned by its kind, in the ``fields`` content table; only
category fields travel to the data custodian, under the mapping's ``dataset`` name (else the
provider code), which a researcher's extract request names.
"""

import re
from functools import cache
from pathlib import Path

import duckdb
import pandas as pd

from linkage.bounded_yaml import YamlProblem, read_yaml
from linkage.config import load_config
from linkage.sources.canonical import canonical_records
from linkage.sources.files import files_under, read_csv_table, read_text, reading_flags
from linkage.sources.schema import (
    FIELD_KINDS,
    IDENTIFIER_COLUMNS,
    RECORD_COLUMNS,
    SOURCE_NAMES,
    SourceData,
    SourceError,
)
from linkage.sources.values import (
    as_collection_year,
    harmonise_sex,
    normalise_postcodes,
    parse_dates,
    source_codes,
    text,
)

# a field's name becomes a column of the tokens table and of SQL: plain, and not one of ours
FIELD_NAME = re.compile(r"[a-z][a-z0-9_]{0,39}")
RESERVED_NAMES = ({c for c in RECORD_COLUMNS if c not in IDENTIFIER_COLUMNS}
                  | {"rid", "unique_id", "prelink", "match_weight", "match_probability"})
# the kinds of field that become tokens when no canonical identifier takes them
TOKEN_KINDS = ("exact", "date", "postcode", "name", "text")
# The kind a mapped field must have to fill a canonical identifier column of the same name.
CANONICAL_KINDS = {
    "upn": "exact", "former_upn": "exact", "upn_unknown": "exact", "dob": "date",
    "sex": "sex", "postcode": "postcode", "forename": "name", "middle_names": "name",
    "surname": "name", "preferred_surname": "name", "former_surname": "name",
    "ethnicity": "category",
}
DATASET_NAME = re.compile(r"[a-z][a-z0-9_]{0,63}")
# The release catalogue's own datasets: a generic dataset may not take their names.
RESERVED_DATASETS = set(SOURCE_NAMES)


# a field's name ends no token column's name the toolkit makes from it, or SQL's
RESERVED_SUFFIXES = ("_bloom", "_text", "_digest", "_bits", "_l", "_r")


@cache
def _reserved_words() -> frozenset[str]:
    """Names a field cannot take: SQL's reserved words, the toolkit's own columns, and the
    linkage schema's tokens that no mapped field fills (a field named postcode_sector would
    take that token's place)."""
    words = {row[0] for row in duckdb.sql("SELECT keyword_name FROM duckdb_keywords() "
                                          "WHERE keyword_category = 'reserved'").fetchall()}
    tokens = set(load_config("linkage_schema.yaml")["tokens"]) - set(IDENTIFIER_COLUMNS)
    return frozenset(words | RESERVED_NAMES | tokens | {"adoption_sex_dob"})


def _name_problem(name: object) -> str | None:
    """Why a field or group name cannot be used (it names columns and SQL), or None."""
    if not isinstance(name, str) or not FIELD_NAME.fullmatch(name):
        return ("must be lower-case letters, digits and _ (starting with a letter, at most "
                "40)")
    if name in _reserved_words() or name.endswith(RESERVED_SUFFIXES):
        return (f"is a word the toolkit or SQL uses (or ends in one of "
                f"{', '.join(RESERVED_SUFFIXES)}): choose another")
    return None


def _check_groups(path: Path, fields: list[dict], names: set[str]) -> None:
    """A group names at least two fields, and neither a field nor one of the schema's own
    comparisons (its comparison would take that one's place)."""
    members: dict[str, int] = {}
    for spec in fields:
        if "group" in spec:
            problem = _name_problem(spec["group"])
            if problem:
                raise SourceError(path, f"field {spec['name']}: group {spec['group']!r} "
                                  f"{problem}")
            members[spec["group"]] = members.get(spec["group"], 0) + 1
    taken = names | set(load_config("linkage_schema.yaml")["comparisons"])
    for group, count in members.items():
        if group in taken:
            raise SourceError(path, f"group {group!r} is the name of a field or of one of the "
                              "model's comparisons: choose another")
        if count < 2:
            raise SourceError(path, f"group {group!r} has one field: a group compares several "
                              "fields as one")


def load_mapping(path: Path) -> dict:
    """Read and check a mapping file; problems name the file and the field."""
    try:
        mapping = read_yaml(path, read_text)
    except YamlProblem as problem:
        raise SourceError(path, str(problem)) from None
    if not isinstance(mapping, dict) or not isinstance(mapping.get("record_id"), str):
        raise SourceError(path, "must be a mapping with record_id: <column>")
    fields = mapping.get("fields")
    if not isinstance(fields, list) or not fields:
        raise SourceError(path, "must list fields: [{name, column, kind}, ...]")
    names = set()
    for number, spec in enumerate(fields, start=1):
        if not isinstance(spec, dict) or not {"name", "column", "kind"} <= set(spec):
            raise SourceError(path, f"field {number} needs name, column and kind")
        if spec["kind"] not in FIELD_KINDS:
            raise SourceError(path, f"field {spec['name']}: kind {spec['kind']!r} is not one of "
                              f"{', '.join(FIELD_KINDS)}")
        if spec["name"] in names:
            raise SourceError(path, f"field {spec['name']} is named twice")
        problem = _name_problem(spec["name"])
        if problem:
            raise SourceError(path, f"field {number}: name {spec['name']!r} {problem}")
        names.add(spec["name"])
    _check_groups(path, fields, names)
    if "period" in mapping:
        year = as_collection_year(mapping["period"])
        if year is None:
            raise SourceError(path, f"period {mapping['period']!r} is not a collection year "
                              "(such as 2024 or 2023-24)")
        mapping["period"] = year
    dataset = mapping.get("dataset")
    if dataset is not None and (not isinstance(dataset, str) or not DATASET_NAME.fullmatch(
            dataset) or dataset in RESERVED_DATASETS):
        raise SourceError(path, f"dataset {dataset!r} must be a name of lower-case letters, "
                          "digits and underscores, and not a built-in dataset's "
                          f"({', '.join(sorted(RESERVED_DATASETS))})")
    return mapping


def canonical_fields(mapping: dict) -> dict[str, dict]:
    """The mapped fields that fill canonical identifier columns: by name and by kind."""
    return {spec["name"]: spec for spec in mapping["fields"]
            if CANONICAL_KINDS.get(spec["name"]) == spec["kind"]}


def token_fields(mapping: dict) -> dict[str, dict]:
    """The mapped identifying fields that no canonical column takes, by the record column
    that carries them: the field's name, or, where that is a canonical column's name but the
    kind is another (a foreign postcode of kind exact), the name and the kind."""
    canonical = canonical_fields(mapping)
    return {(spec["name"] if spec["name"] not in RECORD_COLUMNS
             else f"{spec['name']}_{spec['kind']}"): spec
            for spec in mapping["fields"]
            if spec["kind"] in TOKEN_KINDS and spec["name"] not in canonical}


def read_generic(paths: list[Path], mapping: dict, provider: str | None = None,
                 period: int | None = None) -> SourceData:
    """Read CSV or Parquet files through ``mapping`` (see ``load_mapping``)."""
    files = files_under(paths, (".csv", ".parquet"))
    records, content = [], []
    for path in files:
        rows = _read_rows(path)
        _require(path, rows, mapping)
        base = pd.DataFrame({
            "source": "generic", "provider": provider or str(mapping.get("provider", "")),
            "record_id": rows[mapping["record_id"]],
            "period": period or int(mapping.get("period", 0)), "file": str(path),
            "row": rows.line})
        cleaned, bad_dates = _fields(rows, mapping)
        canonical = canonical_fields(mapping)
        raw = {name: rows[spec["column"]] for name, spec in canonical.items()}
        dob_spec = canonical.get("dob", {})
        extra = {"date_invalid": bad_dates, **reading_flags(rows)}
        filled = canonical_records("generic", base, raw, extra,
                                   dob_formats=[dob_spec.get("format", "%Y-%m-%d")])
        # the mapped identifiers outside the canonical record travel beside it, cleaned by
        # their kind, to become tokens of their own (an id number, a suburb)
        for column, spec in token_fields(mapping).items():
            filled[column] = cleaned[spec["name"]].to_numpy()
        records.append(filled)
        content.append(pd.concat([base[["provider", "period", "record_id"]].reset_index(
            drop=True), cleaned.reset_index(drop=True)], axis=1))
    return SourceData(kind="generic", records=pd.concat(records, ignore_index=True),
                      content={"fields": pd.concat(content, ignore_index=True)},
                      files=[str(f) for f in files],
                      field_kinds={s["name"]: s["kind"] for s in mapping["fields"]},
                      token_fields={c: spec["kind"] for c, spec in token_fields(mapping).items()},
                      field_groups={c: spec["group"] for c, spec in token_fields(mapping).items()
                                    if "group" in spec} | {
                          name: spec["group"] for name, spec in canonical_fields(mapping).items()
                          if "group" in spec},
                      dataset=_dataset(mapping, provider))


def _dataset(mapping: dict, provider: str | None) -> str | None:
    """The name researchers request this content by: the mapping's dataset, else the
    provider code (a dataset that one provider sends)."""
    return mapping.get("dataset") or provider or (str(mapping["provider"])
                                                  if mapping.get("provider") else None)


def _read_rows(path: Path) -> pd.DataFrame:
    if path.suffix.lower() != ".parquet":
        return read_csv_table(path)
    try:
        frame = pd.read_parquet(path)
    except Exception:  # pyarrow raises many kinds for a damaged file
        raise SourceError(path, "is not a readable Parquet file") from None
    frame = frame.astype(str).where(frame.notna(), "")
    frame.columns = [str(c) for c in frame.columns]
    return frame.assign(line=range(1, len(frame) + 1), malformed=False)


def _require(path: Path, rows: pd.DataFrame, mapping: dict) -> None:
    needed = [mapping["record_id"], *(spec["column"] for spec in mapping["fields"])]
    missing = [column for column in needed if column not in rows]
    if missing:
        raise SourceError(path, f"lacks the mapped column(s) {', '.join(missing)}")


def _fields(rows: pd.DataFrame, mapping: dict) -> tuple[pd.DataFrame, object]:
    """Every mapped field cleaned by its kind; and rows with a date that could not be read."""
    out = pd.DataFrame(index=rows.index)
    bad = pd.Series(False, index=rows.index).to_numpy()
    for spec in mapping["fields"]:
        values = rows[spec["column"]]
        kind = spec["kind"]
        if kind == "date":
            dates, _, unreadable = parse_dates(values, [spec.get("format", "%Y-%m-%d")])
            out[spec["name"]] = dates.dt.date
            if spec["name"] != "dob":  # an unreadable dob is flagged dob_invalid instead
                bad = bad | unreadable
        elif kind == "postcode":
            out[spec["name"]] = normalise_postcodes(values)[0]
        elif kind == "sex":
            out[spec["name"]] = harmonise_sex(values, source_codes()["sex"]["generic"])[0]
        elif kind == "name":
            out[spec["name"]] = text(values).str.replace(r"\s+", " ", regex=True).to_numpy()
        else:
            out[spec["name"]] = text(values).to_numpy()
    return out, bad
