"""ASG child and adopter CSV files, read through the column mapping in ``configs/sources.yaml``.

The exact Coram-i template is not public: the default mapping is the project convention of
DOMAIN.md section 5, and an agency with other column names changes the mapping, not the code.
"""

from pathlib import Path

import pandas as pd

from linkage.sources.canonical import canonical_records
from linkage.sources.files import files_under, read_csv_table, reading_flags, year_from_path
from linkage.sources.provider_codes import provider_code, provider_codes
from linkage.sources.schema import SourceData, SourceError, source_name
from linkage.sources.values import parse_dates, source_codes


def read_asg(kind: str, paths: list[Path], provider: str | None = None,
             period: int | None = None, mapping: dict | None = None) -> SourceData:
    """Read ASG child (``kind`` asg-children) or adopter (asg-adopters) files."""
    mapping = mapping or source_codes()[source_name(kind)]
    files = files_under(paths, (".csv",))
    records, content = [], []
    for path in files:
        rows = read_csv_table(path, lower_columns=True)
        _require(path, rows, mapping, kind)
        year = period or year_from_path(path) or _latest_collection_year(rows, mapping)
        agency = rows.get(mapping["provider"], "")
        if isinstance(agency, pd.Series):
            agency = provider_codes(agency)  # raa01 and RAA01 are one agency
            others = agency[(agency != provider_code(provider)) & (agency != "")]
            if provider and len(others):
                raise SourceError(path, f"holds records of agency {others.iloc[0]}, not "
                                  f"provider {provider}")
        base = pd.DataFrame({
            "source": source_name(kind), "provider": provider or agency,
            "record_id": rows[mapping["record_id"]], "period": year, "file": str(path),
            "row": rows.line})
        raw = {name: rows[column] for name, column in mapping["columns"].items()
               if column in rows}
        bad_dates = pd.Series(False, index=rows.index)
        for column in mapping["dates"]:
            if column in rows:
                bad_dates |= parse_dates(rows[column], _formats(kind))[2]
        extra = {"date_invalid": bad_dates.to_numpy(), **reading_flags(rows)}
        records.append(canonical_records(kind, base, raw, extra))
        content.append(_content(rows, base, mapping, kind))
    name = source_name(kind)
    return SourceData(kind=kind, records=pd.concat(records, ignore_index=True),
                      content={name: pd.concat(content, ignore_index=True)},
                      files=[str(f) for f in files])


def _require(path: Path, rows: pd.DataFrame, mapping: dict, kind: str) -> None:
    needed = [mapping["record_id"], *mapping["columns"].values()]
    missing = [column for column in needed if column not in rows]
    if missing:
        raise SourceError(path, f"lacks the column(s) {', '.join(missing)} of an {kind} file "
                          "(see the asg mapping in configs/sources.yaml)")


def _formats(kind: str) -> list[str]:
    return source_codes()["date_formats"][kind]


def _latest_collection_year(rows: pd.DataFrame, mapping: dict) -> int:
    """The collection year (ending 31 March) holding the latest date in the file."""
    latest = None
    for column in mapping["dates"]:
        if column in rows:
            dates = parse_dates(rows[column], _formats("asg-children"))[0]
            if dates.notna().any() and (latest is None or dates.max() > latest):
                latest = dates.max()
    if latest is None:
        return 0
    return latest.year + (1 if latest.month >= 4 else 0)


def _content(rows: pd.DataFrame, base: pd.DataFrame, mapping: dict, kind: str) -> pd.DataFrame:
    out = base[["provider", "period", "record_id"]].reset_index(drop=True).copy()
    for column in mapping["dates"]:
        if column in rows:
            out[column] = parse_dates(rows[column], _formats(kind))[0].dt.date.to_numpy()
    for column in mapping["attributes"]:
        out[column] = rows[column].to_numpy() if column in rows else ""
    return out
