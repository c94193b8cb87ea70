"""School census pupil CSV files (``gender`` or ``sex``; ISO or ``2020-Apr-25 00:00:00`` dates).

The collection year comes from the file name (``2024_pupils.csv``) or ``period``. A pupil row has
no id of its own, so its record id is ``<year>:<file>:<line>``, the file named by its name
without the suffix (``2024:2024_pupils:2``): two files of one year never share an id. Column
names are matched without case and through the aliases in ``configs/sources.yaml``.
"""

from pathlib import Path

import pandas as pd

from linkage.sources.canonical import canonical_records
from linkage.sources.files import files_under, read_csv_table, reading_flags, year_from_path
from linkage.sources.schema import SourceData, SourceError, source_name
from linkage.sources.values import repeated_upns, source_codes

KIND = "school-census"
NAME = source_name(KIND)  # what its records and code lists call it


def read_school_census(paths: list[Path], provider: str | None = None,
                       period: int | None = None) -> SourceData:
    """Read pupil files into canonical records (one per row) and pupil attributes."""
    files = files_under(paths, (".csv",))
    names = file_names(files)
    records, attributes = [], []
    for path in files:
        year = period or year_from_path(path)
        if year is None:
            raise SourceError(path, "cannot tell the census year: start the file name with it "
                              "(such as 2024_pupils.csv) or give --period")
        pupils, raw = _read_file(path)
        base = pd.DataFrame({
            "source": NAME, "provider": provider or "DFE",
            "record_id": f"{year}:{names[path]}:" + pupils.line.astype(str),
            "period": year, "file": str(path), "row": pupils.line})
        subsidiary = pupils.get("enrolstatus", pd.Series("", index=pupils.index)).str.upper()
        extra = {"dual_registration": (subsidiary == "S").to_numpy(),
                 **reading_flags(pupils),
                 # a pupil's main and subsidiary rows share a UPN: not a duplicate
                 "upn_duplicate": repeated_upns(raw["upn"], base.period,
                                                (subsidiary != "S").to_numpy())}
        records.append(canonical_records(KIND, base, raw, extra))
        attributes.append(_attributes(pupils, base))
    return SourceData(kind=KIND, records=pd.concat(records, ignore_index=True),
                      content={"pupils": pd.concat(attributes, ignore_index=True)},
                      files=[str(f) for f in files])


def file_names(files: list[Path]) -> dict[Path, str]:
    """A name for each file that no other of ``files`` has: its name without the suffix, with
    as many of its folders before it as tell it from another file of that name
    (``autumn/2024_pupils`` and ``spring/2024_pupils``). The same files always get the same
    names; names carry no identifier, only what the provider named its files."""
    names = {}
    for path in files:
        parts = [*path.parent.parts, path.stem]
        depth = 1
        while depth < len(parts) and any(
                other != path and [*other.parent.parts, other.stem][-depth:] == parts[-depth:]
                for other in files):
            depth += 1
        names[path] = "/".join(parts[-depth:])
    return names


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
