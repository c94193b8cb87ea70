"""School census pupil CSV files (``gender`` or ``sex``; ISO or ``2020-Apr-25 00:00:00`` dates).

The collection year comes from the file name (``2024_pupils.csv``) or ``period``. A pupil row has
no id of its own, so its record id is ``<year>:<line>``. Column names are matched without case
and through the aliases in ``configs/sources.yaml``.
"""

from pathlib import Path

import pandas as pd

from linkage.sources.canonical import canonical_records
from linkage.sources.files import files_under, read_csv_table, year_from_path
from linkage.sources.schema import SourceData, SourceError, source_name
from linkage.sources.values import repeated_upns, source_codes

KIND = "school-census"
NAME = source_name(KIND)  # what its records and code lists call it


def read_school_census(paths: list[Path], provider: str | None = None,
                       period: int | None = None) -> SourceData:
    """Read pupil files into canonical records (one per row) and pupil attributes."""
    files = files_under(paths, (".csv",))
    records, attributes = [], []
    for path in files:
        year = period or year_from_path(path)
        if year is None:
            raise SourceError(path, "cannot tell the census year: start the file name with it "
                              "(such as 2024_pupils.csv) or give --period")
        pupils, raw = _read_file(path)
        base = pd.DataFrame({
            "source": NAME, "provider": provider or "DfE",
            "record_id": [f"{year}:{line}" for line in pupils.line],
            "period": year, "file": str(path), "row": pupils.line})
        subsidiary = pupils.get("enrolstatus", pd.Series("", index=pupils.index)).str.upper()
        extra = {"dual_registration": (subsidiary == "S").to_numpy(),
                 "row_malformed": pupils.malformed.to_numpy(dtype=bool),
                 # a pupil's main and subsidiary rows share a UPN: not a duplicate
                 "upn_duplicate": repeated_upns(raw["upn"], base.period,
                                                (subsidiary != "S").to_numpy())}
        records.append(canonical_records(KIND, base, raw, extra))
        attributes.append(_attributes(pupils, base))
    return SourceData(kind=KIND, records=pd.concat(records, ignore_index=True),
                      content={"pupils": pd.concat(attributes, ignore_index=True)},
                      files=[str(f) for f in files])


def _read_file(path: Path) -> tuple[pd.DataFrame, dict[str, pd.Series]]:
    pupils = read_csv_table(path, lower_columns=True)
    convention = source_codes()[NAME]
    raw = {}
    for name, aliases in convention["columns"].items():
        column = next((a for a in aliases if a in pupils.columns), None)
        if column is not None:
            raw[name] = pupils[column]
        elif name in convention["required"]:
            raise SourceError(path, f"has no {name} column (looked for: {', '.join(aliases)}); "
                              "is it a school census pupil file?")
    if "sex" not in raw:
        raise SourceError(path, "has no sex or gender column")
    return pupils, raw


def _attributes(pupils: pd.DataFrame, base: pd.DataFrame) -> pd.DataFrame:
    wanted = source_codes()[NAME]["attributes"]
    out = base[["provider", "period", "record_id"]].reset_index(drop=True).copy()
    for column in wanted:
        out[column] = pupils[column].to_numpy() if column in pupils else ""
    return out
