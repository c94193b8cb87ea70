"""SSDA903 (children looked after) returns: a folder of CSV tables per return, or 903 XML.

Each CSV table is recognised by its header row, as the LA validators do; other tables are
ignored. The tables, their columns and the episode code sets by year are in
configs/sources.yaml. A return's collection year comes from ``period``, its folder name
(``2024``, ``2023-24``), or else its episode dates. One canonical record per Header row; the
other tables become content.
"""

from collections import defaultdict
from pathlib import Path

import numpy as np
import pandas as pd

from linkage.sources.canonical import canonical_records
from linkage.sources.files import (
    READING_COLUMNS,
    csv_header,
    files_under,
    provider_from_path,
    read_csv_table,
    reading_flags,
    year_from_path,
)
from linkage.sources.schema import SourceData, SourceError
from linkage.sources.ssda903_xml import tables_from_xml
from linkage.sources.values import parse_dates, repeated_upns, source_codes, text

DATE_FORMAT = ["%d/%m/%Y"]
RECOGNISE_SHARE = 0.6  # a file with this share of a table's columns is taken for that table
CODE_UNKNOWN = "code_unknown"
COLUMN_ABSENT = "column_absent"


def table_config() -> dict[str, dict]:
    """The 903 tables, their columns, dates and XML names (configs/sources.yaml)."""
    return source_codes()["ssda903"]["tables"]


def recognise_table(columns: list[str]) -> tuple[str | None, list[str]]:
    """The 903 table a header row belongs to, and the columns it needs but lacks (a column
    marked optional, which an older return may lack, is not counted as lacking)."""
    names = {c.upper() for c in columns}
    best, best_share = None, 0.0
    for table, spec in table_config().items():
        share = len(names & set(spec["columns"])) / len(spec["columns"])
        exact = set(spec["columns"]) <= names
        if share > best_share or (exact and share == best_share):
            best, best_share = table, share
    if best_share < RECOGNISE_SHARE:  # an older table may have little more than it needs
        best = next((table for table, spec in table_config().items()
                     if _needed(spec) <= names), None)
    if best is None or "CHILD" not in names:
        return None, []
    return best, sorted(_needed(table_config()[best]) - names,
                        key=table_config()[best]["columns"].index)


def _needed(spec: dict) -> set[str]:
    """The columns a table cannot be read without: all but those marked optional."""
    return set(spec["columns"]) - set(spec.get("optional", []))


def read_ssda903(paths: list[Path], provider: str | None = None,
                 period: int | None = None) -> SourceData:
    """Read 903 returns (CSV folders and XML files) into canonical records and content."""
    files = files_under(paths, (".csv", ".xml"))
    returns, ignored = _collect_returns(files, {path for path in paths if path.is_file()})

    tables: dict[str, list[pd.DataFrame]] = defaultdict(list)
    named = sorted(path for path in paths if path.is_file())
    for where, found in sorted(returns.items()):
        if "header" not in found:
            _refuse_headless(where, found, named)
        year = period or year_from_path(where if where.is_dir() else where.with_suffix(""))
        year = year or _year_from_episodes(where, found.get("episodes"))
        code = provider or provider_from_path(where)
        for name, frame in found.items():
            # the return a row belongs to, joined with CHILD, links a child's rows across tables
            tables[name].append(frame.assign(provider=code, period=year,
                                             key=str(where) + "|" + frame.CHILD))
    combined = {name: pd.concat(frames, ignore_index=True) for name, frames in tables.items()}
    records, details = _records(combined)
    return SourceData(
        kind="ssda903",
        records=records,
        content={name: _content(frame, name) for name, frame in combined.items()},
        files=[str(f) for f in files if str(f) not in ignored],
        ignored=ignored,
        details=details,
    )


def _refuse_headless(where: Path, found: dict, named: list[Path]) -> None:
    given = next((path for path in named if path.parent == where), None)
    table = next(iter(found))
    columns = ", ".join(table_config()["header"]["columns"])
    raise SourceError(given or where, (
        f"is a 903 {table} table, but no Header table ({columns}) was given with it" if given
        else f"has no 903 Header table ({columns}) among its CSV files"))


def _year_from_episodes(where: Path, episodes: pd.DataFrame | None) -> int:
    """The collection year of a return not named by year: the year (1 April to 31 March) of its
    latest episode date. A return whose episodes ceased in different years is refused."""
    dates = pd.Series(dtype="datetime64[s]")
    if episodes is not None and len(episodes):
        dates = pd.concat([parse_dates(episodes[column], DATE_FORMAT)[0]
                           for column in ("DECOM", "DEC")]).dropna()
    if dates.empty:
        raise SourceError(where, "cannot tell the collection year: it has no episode dates; "
                          "name the folder by year (such as 2024) or give --period")
    year = _collection_year(dates.max())
    ceased = parse_dates(episodes["DEC"], DATE_FORMAT)[0].dropna()
    earlier = ceased[ceased < pd.Timestamp(year - 1, 4, 1)]
    if len(earlier):
        raise SourceError(where, (
            f"cannot tell the collection year: its episodes ceased in several collection years "
            f"({_collection_year(earlier.min())} to {year}; {len(earlier):,} episode(s) ceased "
            f"before 1 April {year - 1}); give one return per folder, named by year (such as "
            f"{year}), or give --period"))
    return year


def _collection_year(date: pd.Timestamp) -> int:
    """The collection year a date falls in: the year of the 31 March it runs to."""
    return date.year + 1 if date.month >= 4 else date.year


def _collect_returns(files: list[Path], named: set[Path]):
    """Group the files into returns (a CSV folder, or one XML file) of recognised tables."""
    returns: dict[Path, dict[str, pd.DataFrame]] = defaultdict(dict)
    ignored = []
    for path in files:
        if path.suffix.lower() == ".xml":
            found = tables_from_xml(path, refuse_other_xml=path in named)
            if found is None:
                ignored.append(str(path))
            else:
                returns[path] = found
            continue
        table, lacking = recognise_table(csv_header(path))
        if table is None:
            ignored.append(str(path))
            continue
        if lacking:
            raise SourceError(path, f"looks like the 903 {table} table but lacks the column(s) "
                              f"{', '.join(lacking)}")
        if table in returns[path.parent]:
            raise SourceError(path, f"is a second {table} table in {path.parent}")
        returns[path.parent][table] = _csv_table(path, table)
    if not returns:
        raise SourceError(", ".join(map(str, sorted(named) or files)),
                          "holds no SSDA903 Header table")
    return returns, ignored


def _csv_table(path: Path, table: str) -> pd.DataFrame:
    """A 903 CSV table with upper-case column names; optional columns it lacks, blank."""
    frame = read_csv_table(path)
    frame.columns = [c if c in READING_COLUMNS else c.upper() for c in frame.columns]
    absent = [c for c in table_config()[table]["columns"] if c not in frame]
    # which columns were absent is kept with the rows, so their children can be flagged
    return frame.assign(**{c: "" for c in absent}, absent=", ".join(absent), file=str(path))


def _records(tables: dict[str, pd.DataFrame]) -> tuple[pd.DataFrame, dict[str, list[str]]]:
    """One canonical record per Header row, and where each row-level problem was found."""
    header = tables["header"]
    base = pd.DataFrame({
        "source": "ssda903", "provider": header.provider, "record_id": header.CHILD,
        "period": header.period, "file": header.file, "row": header.line,
    })
    extra = _cross_table_flags(header, tables)
    extra["date_invalid"] = header.key.isin(_children_with_bad_dates(tables)).to_numpy()
    extra.update(reading_flags(header))
    return_of = header.key.str.rsplit("|", n=1).str[0]
    extra["upn_duplicate"] = repeated_upns(header.UPN, return_of)
    unknown, details = _unknown_codes(tables)
    extra[CODE_UNKNOWN] = header.key.isin(unknown).to_numpy()
    absent, details[COLUMN_ABSENT] = _absent_columns(tables)
    extra[COLUMN_ABSENT] = header.key.isin(absent).to_numpy()
    raw = {"upn": header.UPN, "dob": header.DOB, "sex": header.SEX, "ethnicity": header.ETHNIC,
           "postcode": _home_postcodes(tables.get("episodes"), header.key)}
    return canonical_records("ssda903", base, raw, extra), details


def _unknown_codes(tables: dict[str, pd.DataFrame]) -> tuple[set, dict[str, list[str]]]:
    """Children with a code outside its collection year's code set, and each such row as
    ``file:row FIELD`` (the field named, never its value)."""
    children, rows = set(), []
    for field, sets in source_codes()["ssda903"]["codes"].items():
        for frame in tables.values():
            if field not in frame or not len(frame):
                continue
            bad = _outside_code_sets(frame[field], frame.period, sets)
            children |= set(frame.key[bad])
            rows += (frame.file[bad] + ":" + frame.line[bad].astype(str) + " " + field).tolist()
    return children, {CODE_UNKNOWN: rows} if rows else {}


def _outside_code_sets(values: pd.Series, period: pd.Series, sets: list[dict]) -> np.ndarray:
    """Non-blank codes in no code set valid in their row's collection year."""
    codes = text(values).str.upper().to_numpy()
    year = pd.to_numeric(period, errors="coerce").to_numpy()
    valid = codes == ""
    for code_set in sets:
        in_years = np.ones(len(codes), dtype=bool)
        if code_set.get("from") is not None:
            in_years &= year >= code_set["from"]
        if code_set.get("to") is not None:
            in_years &= year <= code_set["to"]
        valid |= in_years & np.isin(codes, code_set["codes"])
    return ~valid


def _absent_columns(tables: dict[str, pd.DataFrame]) -> tuple[set, list[str]]:
    """Children with rows in a table that lacked optional columns, and each such file."""
    children, where = set(), []
    for frame in tables.values():
        if "absent" not in frame:
            continue
        lacking = frame.absent.fillna("") != ""
        children |= set(frame.key[lacking])
        where += sorted({f"{file} lacks {columns}" for file, columns
                         in zip(frame.file[lacking], frame.absent[lacking], strict=True)})
    return children, where


def _content(frame: pd.DataFrame, table: str) -> pd.DataFrame:
    """A 903 table with its dates parsed, keyed by provider, period and CHILD."""
    out = frame.drop(columns=[*READING_COLUMNS, "file", "key", "absent"],
                     errors="ignore").copy()
    for column in table_config()[table].get("dates", []) + (["DOB"] if "DOB" in out else []):
        out[column] = parse_dates(out[column], DATE_FORMAT)[0].dt.date
    front = ["provider", "period", "CHILD"]
    out = out[front + [c for c in out.columns if c not in front]]
    return out.rename(columns={"CHILD": "record_id"})


def _cross_table_flags(header: pd.DataFrame, tables: dict[str, pd.DataFrame]) -> dict:
    """DOBs repeated differently in other tables; DOB after the first episode."""
    dob = parse_dates(header.DOB, DATE_FORMAT)[0]
    by_child = pd.Series(dob.to_numpy(), index=header.key.to_numpy())
    by_child = by_child[~by_child.index.duplicated()]
    inconsistent = set()
    for name, frame in tables.items():
        if name == "header" or "DOB" not in frame:
            continue
        repeated = parse_dates(frame.DOB, DATE_FORMAT)[0]
        expected = frame.key.map(by_child)
        differs = repeated.notna() & expected.notna() & (repeated != expected)
        inconsistent |= set(frame.key[differs])
    after_first = np.zeros(len(header), dtype=bool)
    episodes = tables.get("episodes")
    if episodes is not None and len(episodes):
        starts = parse_dates(episodes.DECOM, DATE_FORMAT)[0]
        first = starts.groupby(episodes.key.to_numpy()).min()
        first_episode = header.key.map(first)
        after_first = (dob.notna() & first_episode.notna() & (dob > first_episode)).to_numpy()
    return {"dob_inconsistent": header.key.isin(inconsistent).to_numpy(),
            "dob_after_first_episode": after_first}


def _home_postcodes(episodes: pd.DataFrame | None, keys: pd.Series) -> pd.Series:
    """The home postcode of each child's latest episode in the return."""
    if episodes is None or not len(episodes):
        return pd.Series("", index=keys.index)
    start = parse_dates(episodes.DECOM, DATE_FORMAT)[0]
    latest = episodes.assign(start=start).sort_values("start", na_position="first")
    return keys.map(latest.groupby("key").HOME_POST.last()).fillna("")


def _children_with_bad_dates(tables: dict[str, pd.DataFrame]) -> set:
    bad = set()
    for name, frame in tables.items():
        for column in table_config()[name].get("dates", []):
            if column in frame:
                _, _, unreadable = parse_dates(frame[column], DATE_FORMAT)
                bad |= set(frame.key[unreadable])
    return bad
