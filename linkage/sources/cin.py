"""Children in Need census XML, every schema year (``GenderCurrent`` or ``Sex``).

The header's LEA is the provider and its Year the collection year. One canonical record per
``Child``; its ``CINdetails`` (referrals, closures, plans) become content. Element names are
found in any letter case and any XML namespace (``<Child>``, ``<CHILD>``, ``<cin:Child>``), and
the children of every ``<Children>`` block are read. A file with no child at all is refused.
Parsing is safe: no entity expansion, no external entities.
"""

from pathlib import Path

import numpy as np
import pandas as pd

from linkage.sources.canonical import canonical_records
from linkage.sources.files import files_under, parse_xml, plain_names
from linkage.sources.provider_codes import same_provider
from linkage.sources.schema import SourceData, SourceError
from linkage.sources.values import as_collection_year, parse_dates, repeated_upns

IDENTIFIERS = ["LAchildID", "UPN", "FormerUPN", "UPNunknown", "PersonBirthDate",
               "ExpectedPersonBirthDate", "GenderCurrent", "Sex", "PersonDeathDate"]
DETAILS = ["CINreferralDate", "ReferralSource", "PrimaryNeedCode", "CINclosureDate",
           "ReasonForClosure", "DateOfInitialCPC", "ReferralNFA"]
DETAIL_DATES = ["CINreferralDate", "CINclosureDate", "DateOfInitialCPC"]
ISO = ["%Y-%m-%d"]


def read_cin(paths: list[Path], provider: str | None = None,
             period: int | None = None) -> SourceData:
    """Read CIN census XML files into canonical records (one per Child) and CIN details."""
    files = files_under(paths, (".xml",))
    children, details = [], []
    for path in files:
        kids, kid_details = _read_file(path, provider, period)
        children.append(kids)
        details.append(kid_details)
    kids = pd.concat(children, ignore_index=True)
    details = pd.concat(details, ignore_index=True)
    return SourceData(kind="cin", records=_records(kids, details),
                      content={"cin_details": _detail_content(details),
                               "cin_children": _child_content(kids)},
                      files=[str(f) for f in files])


def _children(path: Path):
    """The root of a CIN census file, its names made plain (``plain_names``), and every
    ``Child`` in it (of all its ``Children`` blocks), in file order; a file without one is
    refused."""
    root = parse_xml(path)
    tag = root.tag
    root = plain_names(root)
    if root.tag != "message" or root.find("children") is None:
        raise SourceError(path, f"is not a CIN census file (root <{tag}>, expected "
                          "<Message> with <Children>)")
    children = list(root.iter("child"))  # wherever it stands, so that no child is lost
    if not children:
        raise SourceError(path, "holds no <Child> in its <Children>: a CIN return lists each "
                          "child as <Children><Child><ChildIdentifiers>...; nothing was read")
    return root, children


def _read_file(path: Path, provider: str | None, period: int | None):
    root, children = _children(path)
    lea = (root.findtext("header/source/lea") or "").strip()
    year_text = (root.findtext("header/collectiondetails/year") or "").strip()
    if provider and lea and not same_provider(lea, provider):
        raise SourceError(path, f"is LA {lea}'s return, not provider {provider}'s")
    year = period or as_collection_year(year_text)
    if year is None:
        raise SourceError(path, f"has no valid collection Year in its header "
                          f"({'empty' if not year_text else 'not a year'}); give --period")
    rows, detail_rows = [], []
    for number, child in enumerate(children, start=1):
        ids = child.find("childidentifiers")
        row = {name: _text(ids, name) for name in IDENTIFIERS}
        row["Ethnicity"] = _text(child.find("childcharacteristics"), "Ethnicity")
        row["element"] = number
        rows.append(row)
        for detail in child.findall("cindetails"):
            values = {name: _text(detail, name) for name in DETAILS}
            values["CPPstartDate"] = _text(detail, "ChildProtectionPlans/CPPstartDate")
            values["CPPendDate"] = _text(detail, "ChildProtectionPlans/CPPendDate")
            values["element"] = number
            values["LAchildID"] = row["LAchildID"]
            detail_rows.append(values)
    kids = pd.DataFrame(rows, columns=[*IDENTIFIERS, "Ethnicity", "element"])
    kids = kids.assign(file=str(path), provider=provider or lea, period=year)
    columns = ["LAchildID", *DETAILS, "CPPstartDate", "CPPendDate", "element"]
    details = pd.DataFrame(detail_rows, columns=columns).assign(
        file=str(path), provider=provider or lea, period=year)
    return kids, details


def _text(element, path: str) -> str:
    """The stripped text at ``path`` under ``element`` (names in any case, as plain_names
    leaves them), or ''."""
    if element is None:
        return ""
    return (element.findtext(path.lower()) or "").strip()


def _records(kids: pd.DataFrame, details: pd.DataFrame) -> pd.DataFrame:
    base = pd.DataFrame({"source": "cin", "provider": kids.provider, "record_id": kids.LAchildID,
                         "period": kids.period, "file": kids.file, "row": kids.element})
    unborn = ((kids.PersonBirthDate == "") & (kids.ExpectedPersonBirthDate != "")).to_numpy()
    sex = kids.Sex.where(kids.Sex != "", kids.GenderCurrent)
    raw = {"upn": kids.UPN, "upn_unknown": kids.UPNunknown, "former_upn": kids.FormerUPN,
           "dob": kids.PersonBirthDate, "sex": sex, "ethnicity": kids.Ethnicity}
    bad_dates = _bad_detail_dates(details)
    keys = kids.file + "|" + kids.element.astype(str)
    extra = {"unborn": unborn, "date_invalid": keys.isin(bad_dates).to_numpy(),
             "upn_duplicate": repeated_upns(kids.UPN, kids.file)}
    records = canonical_records("cin", base, raw, extra)
    # an unborn child has no birth date and no sex yet: that is what 'unborn' says
    records["flags"] = _without(records["flags"], unborn, {"dob_missing", "sex_unknown"})
    return records


def _bad_detail_dates(details: pd.DataFrame) -> set:
    bad = np.zeros(len(details), dtype=bool)
    for column in [*DETAIL_DATES, "CPPstartDate", "CPPendDate"]:
        bad |= parse_dates(details[column], ISO)[2]
    return set((details.file + "|" + details.element.astype(str))[bad])


def _without(flags: pd.Series, rows: np.ndarray, codes: set) -> np.ndarray:
    out = flags.to_numpy().copy()
    for index in np.flatnonzero(rows):
        out[index] = ";".join(f for f in out[index].split(";") if f and f not in codes)
    return out


def _child_content(kids: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame({
        "provider": kids.provider, "period": kids.period, "record_id": kids.LAchildID,
        "expected_dob": parse_dates(kids.ExpectedPersonBirthDate, ISO)[0].dt.date,
        "death_date": parse_dates(kids.PersonDeathDate, ISO)[0].dt.date,
    })


def _detail_content(details: pd.DataFrame) -> pd.DataFrame:
    out = details.drop(columns=["element", "file"]).rename(columns={"LAchildID": "record_id"})
    for column in [*DETAIL_DATES, "CPPstartDate", "CPPendDate"]:
        out[column] = parse_dates(out[column], ISO)[0].dt.date
    front = ["provider", "period", "record_id"]
    return out[front + [c for c in out.columns if c not in front]]
