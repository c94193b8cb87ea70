"""SSDA903 (children looked after) returns: a folder of CSV tables per return, or 903 XML.

Each CSV table is recognised by its header row, as the LA validators do; other tables are
ignored. A return's collection year comes from its folder name (``2024``, ``2023-24``) or
``period``. One canonical record per Header row; the other tables become content.
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
    parse_xml,
    provider_from_path,
    read_csv_table,
    reading_flags,
    xml_root_name,
    year_from_path,
)
from linkage.sources.schema import SourceData, SourceError
from linkage.sources.values import parse_dates, repeated_upns

TABLES = {
    "header": ["CHILD", "SEX", "DOB", "ETHNIC", "UPN", "MOTHER", "MC_DOB"],
    "episodes": ["CHILD", "DECOM", "RNE", "LS", "CIN", "PLACE", "PLACE_PROVIDER", "DEC", "REC",
                 "REASON_PLACE_CHANGE", "HOME_POST", "PL_POST", "URN"],
    "ad1": ["CHILD", "DOB", "DATE_INT", "DATE_MATCH", "FOSTER_CARE", "NB_ADOPTR", "SEX_ADOPTR",
            "LS_ADOPTR"],
    "placed_adoption": ["CHILD", "DOB", "DATE_PLACED", "DATE_PLACED_CEASED",
                        "REASON_PLACED_CEASED"],
    "uasc": ["CHILD", "SEX", "DOB", "DUC"],
    "reviews": ["CHILD", "DOB", "REVIEW", "REVIEW_CODE"],
    "missing": ["CHILD", "DOB", "MISSING", "MIS_START", "MIS_END"],
    "prev_perm": ["CHILD", "DOB", "PREV_PERM", "LA_PERM", "DATE_PERM"],
}
DATES = {"header": ["MC_DOB"], "episodes": ["DECOM", "DEC"], "ad1": ["DATE_INT", "DATE_MATCH"],
         "placed_adoption": ["DATE_PLACED", "DATE_PLACED_CEASED"], "uasc": ["DUC"],
         "reviews": ["REVIEW"], "missing": ["MIS_START", "MIS_END"], "prev_perm": ["DATE_PERM"]}
DATE_FORMAT = ["%d/%m/%Y"]
RECOGNISE_SHARE = 0.6  # a file with this share of a table's columns is taken for that table


def recognise_table(columns: list[str]) -> tuple[str | None, list[str]]:
    """The 903 table a header row belongs to, and the required columns it lacks."""
    names = {c.upper() for c in columns}
    best, best_share = None, 0.0
    for table, required in TABLES.items():
        share = len(names & set(required)) / len(required)
        exact = set(required) <= names
        if share > best_share or (exact and share == best_share):
            best, best_share = table, share
    if best is None or best_share < RECOGNISE_SHARE or "CHILD" not in names:
        return None, []
    return best, [c for c in TABLES[best] if c not in names]


def read_ssda903(paths: list[Path], provider: str | None = None,
                 period: int | None = None) -> SourceData:
    """Read 903 returns (CSV folders and XML files) into canonical records and content."""
    files = files_under(paths, (".csv", ".xml"))
    returns, ignored = _collect_returns(files, {path for path in paths if path.is_file()})

    tables: dict[str, list[pd.DataFrame]] = defaultdict(list)
    named = sorted(path for path in paths if path.is_file())
    for where, found in sorted(returns.items()):
        if "header" not in found:
            given = next((path for path in named if path.parent == where), None)
            table = next(iter(found))
            raise SourceError(given or where, (
                f"is a 903 {table} table, but no Header table (CHILD, SEX, DOB, ETHNIC, UPN, "
                "MOTHER, MC_DOB) was given with it" if given else
                "has no 903 Header table (CHILD, SEX, DOB, ETHNIC, UPN, MOTHER, MC_DOB) among "
                "its CSV files"))
        year = period or year_from_path(where if where.is_dir() else where.with_suffix(""))
        if year is None:
            raise SourceError(where, "cannot tell the collection year: name the folder by year "
                              "(such as 2024) or give --period")
        code = provider or provider_from_path(where)
        for name, frame in found.items():
            # the return a row belongs to, joined with CHILD, links a child's rows across tables
            tables[name].append(frame.assign(provider=code, period=year,
                                             key=str(where) + "|" + frame.CHILD))
    combined = {name: pd.concat(frames, ignore_index=True) for name, frames in tables.items()}
    return SourceData(
        kind="ssda903",
        records=_records(combined),
        content={name: _content(frame, name) for name, frame in combined.items()},
        files=[str(f) for f in files if str(f) not in ignored],
        ignored=ignored,
    )


def _collect_returns(files: list[Path], named: set[Path]):
    """Group the files into returns (a CSV folder, or one XML file) of recognised tables."""
    returns: dict[Path, dict[str, pd.DataFrame]] = defaultdict(dict)
    ignored = []
    for path in files:
        if path.suffix.lower() == ".xml":
            found = _tables_from_xml(path, refuse_other_xml=path in named)
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
        frame = read_csv_table(path)
        frame.columns = [c if c in READING_COLUMNS else c.upper() for c in frame.columns]
        returns[path.parent][table] = frame.assign(file=str(path))
    if not returns:
        raise SourceError(", ".join(map(str, sorted(named) or files)),
                          "holds no SSDA903 Header table")
    return returns, ignored


def _records(tables: dict[str, pd.DataFrame]) -> pd.DataFrame:
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
    raw = {"upn": header.UPN, "dob": header.DOB, "sex": header.SEX, "ethnicity": header.ETHNIC,
           "postcode": _home_postcodes(tables.get("episodes"), header.key)}
    return canonical_records("ssda903", base, raw, extra)


def _content(frame: pd.DataFrame, table: str) -> pd.DataFrame:
    """A 903 table with its dates parsed, keyed by provider, period and CHILD."""
    out = frame.drop(columns=[*READING_COLUMNS, "file", "key"], errors="ignore").copy()
    for column in DATES.get(table, []) + (["DOB"] if "DOB" in out else []):
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
        for column in DATES.get(name, []):
            if column in frame:
                _, _, unreadable = parse_dates(frame[column], DATE_FORMAT)
                bad |= set(frame.key[unreadable])
    return bad


def _tables_from_xml(path: Path, refuse_other_xml: bool) -> dict[str, pd.DataFrame] | None:
    """903 XML (``EXPSSDA903 > CHILD > HEADER, EPISODE, ...``) as the same tables as the CSVs.

    Each child's elements are named as the CSV tables (HEADER, EPISODE, AD1, ...) and hold one
    element per column; the child's id is the CHILD element inside HEADER.
    """
    if not refuse_other_xml and xml_root_name(path).upper() != "EXPSSDA903":
        return None  # another collection's XML in a folder given: not ours to read
    root = parse_xml(path)
    if root.tag.upper() != "EXPSSDA903":
        raise SourceError(path, f"is not 903 XML (its root element is <{root.tag}>)")
    element_tables = {"HEADER": "header", "EPISODE": "episodes", "AD1": "ad1",
                      "PLACED_ADOPTION": "placed_adoption", "PLACEDADOPTION": "placed_adoption",
                      "UASC": "uasc", "REVIEW": "reviews", "REVIEWS": "reviews",
                      "MISSING": "missing", "PREV_PERM": "prev_perm", "PREVPERM": "prev_perm"}
    rows = defaultdict(list)
    for number, child in enumerate(root.findall("CHILD"), start=1):
        header = child.find("HEADER")
        child_id = (header.findtext("CHILD") or "").strip() if header is not None else ""
        for element in child:
            table = element_tables.get(element.tag.upper())
            if table is None:
                continue
            values = {c: (element.findtext(c) or "").strip() for c in TABLES[table]}
            values["CHILD"] = values["CHILD"] or child_id
            values["line"] = number
            rows[table].append(values)
    return {name: pd.DataFrame(r, columns=[*TABLES[name], "line"]).assign(file=str(path),
                                                                          malformed=False)
            for name, r in rows.items()}
