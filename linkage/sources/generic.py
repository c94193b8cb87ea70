"""Any CSV or Parquet file, described by a mapping file (MAPPING.yaml):

    record_id: rec_id          # the column holding the provider's own record id
    provider: hospital-a       # optional: a constant provider code
    period: 2024               # optional: a constant period
    fields:
      - {name: dob, column: date_of_birth, kind: date, format: "%Y%m%d"}
      - {name: ni_number, column: soc_sec_id, kind: exact}

Kinds: exact, date, name, text, postcode, category, sex. Fields that describe one thing
(an address's street, town and postcode) may share a ``group``: the model compares them as one,
so that a shared address counts once. A field named like a canonical identifier
(upn, dob, sex, postcode, forename, surname, ...) fills it; every field is kept, cleaned by its
kind, in the ``fields`` content table, for tokens by kind.
"""

import re
from pathlib import Path

import pandas as pd
import yaml

from linkage.sources.canonical import canonical_records
from linkage.sources.files import files_under, read_csv_table, read_text
from linkage.sources.schema import (
    FIELD_KINDS,
    IDENTIFIER_COLUMNS,
    RECORD_COLUMNS,
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


def load_mapping(path: Path) -> dict:
    """Read and check a mapping file; problems name the file and the field."""
    try:
        mapping = yaml.safe_load(read_text(path))
    except yaml.YAMLError:
        raise SourceError(path, "is not valid YAML") from None
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
        if not isinstance(spec["name"], str) or not FIELD_NAME.fullmatch(spec["name"]) or (
                spec["name"] in RESERVED_NAMES):
            raise SourceError(path, f"field {number}: name {spec['name']!r} must be lower-case "
                              "letters, digits and _ (starting with a letter, at most 40), and "
                              f"not one of {', '.join(sorted(RESERVED_NAMES))}")
        if "group" in spec and not (isinstance(spec["group"], str)
                                    and FIELD_NAME.fullmatch(spec["group"])):
            raise SourceError(path, f"field {spec['name']}: group {spec['group']!r} must be "
                              "lower-case letters, digits and _ (starting with a letter)")
        names.add(spec["name"])
    if "period" in mapping:
        year = as_collection_year(mapping["period"])
        if year is None:
            raise SourceError(path, f"period {mapping['period']!r} is not a collection year "
                              "(such as 2024 or 2023-24)")
        mapping["period"] = year
    return mapping


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
        raw = {spec["name"]: rows[spec["column"]] for spec in mapping["fields"]
               if spec["name"] in IDENTIFIER_COLUMNS}
        dob_spec = next((s for s in mapping["fields"] if s["name"] == "dob"), {})
        extra = {"date_invalid": bad_dates, "row_malformed": rows.malformed.to_numpy(bool)}
        canonical = canonical_records("generic", base, raw, extra,
                                      dob_formats=[dob_spec.get("format", "%Y-%m-%d")])
        # the mapped identifiers outside the canonical record travel beside it, cleaned by
        # their kind, to become tokens of their own (an id number, a suburb)
        for spec in mapping["fields"]:
            if spec["name"] not in canonical and spec["kind"] in TOKEN_KINDS:
                canonical[spec["name"]] = cleaned[spec["name"]].to_numpy()
        records.append(canonical)
        content.append(pd.concat([base[["provider", "period", "record_id"]].reset_index(
            drop=True), cleaned.reset_index(drop=True)], axis=1))
    return SourceData(kind="generic", records=pd.concat(records, ignore_index=True),
                      content={"fields": pd.concat(content, ignore_index=True)},
                      files=[str(f) for f in files],
                      field_kinds={s["name"]: s["kind"] for s in mapping["fields"]},
                      field_groups={s["name"]: s["group"] for s in mapping["fields"]
                                    if "group" in s})


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
