"""Children in Need census XML, every schema year (``GenderCurrent`` or ``Sex``).

The header's LEA is the provider and its Year the collection year. One canonical record per
``Child``; its ``CINdetails`` (referrals and closures) and every ``ChildProtectionPlans`` of
each (an episode may hold several plans, one after another) become content, each plan carrying
its episode's referral date so that it can be tied to its episode in any later return.
Element names are found in any letter case and any XML namespace (``<Child>``, ``<CHILD>``,
``<cin:Child>``), and the children of every ``<Children>`` block are read. A file with no
child at all is refused. Parsing is safe: no entity expansion, no external entities.
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
PLAN_FIELDS = ["CPPstartDate", "CPPendDate", "InitialCategoryOfAbuse", "LatestCategoryOfAbuse",
               "NumberOfPreviousCPP"]
PLAN_DATES = ["CPPstartDate", "CPPendDate"]
ISO = ["%Y-%m-%d"]


def read_cin(paths: list[Path], provider: str | None = None,
             period: int | None = None) -> SourceData:
    """Read CIN census XML files into canonical records (one per Child) and CIN details."""
    files = files_under(paths, (".xml",))
    parts = [_read_file(path, provider, period) for path in files]
    kids, details, plans = (pd.concat([part[i] for part in parts], ignore_index=True)
                            for i in range(3))
    return SourceData(kind="cin", records=_records(kids, details, plans),
                      content={"cin_details": _dated_content(details, DETAIL_DATES),
                               "child_protection_plans": _dated_content(plans, PLAN_DATES),
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
    rows, detail_rows, plan_rows = [], [], []
    for number, child in enumerate(children, start=1):
        ids = child.find("childidentifiers")
        row = {name: _text(ids, name) for name in IDENTIFIERS}
        row["Ethnicity"] = _text(child.find("childcharacteristics"), "Ethnicity")
        row["element"] = number
        rows.append(row)
        for detail in child.findall("cindetails"):
            values = {name: _text(detail, name) for name in DETAILS}
            values.update(element=number, LAchildID=row["LAchildID"])
            detail_rows.append(values)
            episode = {"LAchildID": row["LAchildID"],
                       "CINreferralDate": values["CINreferralDate"], "element": number}
            plan_rows += [{**episode, **{name: _text(plan, name) for name in PLAN_FIELDS}}
                          for plan in detail.findall("childprotectionplans")]
    where = {"file": str(path), "provider": provider or lea, "period": year}
    kids = pd.DataFrame(rows, columns=[*IDENTIFIERS, "Ethnicity", "element"]).assign(**where)
    details = pd.DataFrame(detail_rows, columns=["LAchildID", *DETAILS, "element"]
                           ).assign(**where)
    plans = pd.DataFrame(plan_rows, columns=["LAchildID", "CINreferralDate", *PLAN_FIELDS,
                                             "element"]).assign(**where)
    return kids, details, plans


def _text(element, path: str) -> str:
    """The stripped text at ``path`` under ``element`` (names in any case, as plain_names
    leaves them), or ''."""
    if element is None:
        return ""
    return (element.findtext(path.lower()) or "").strip()


def _records(kids: pd.DataFrame, details: pd.DataFrame, plans: pd.DataFrame
             ) -> pd.DataFrame:
    base = pd.DataFrame({"source": "cin", "provider": kids.provider, "record_id": kids.LAchildID,
                         "period": kids.period, "file": kids.file, "row": kids.element})
    unborn = ((kids.PersonBirthDate == "") & (kids.ExpectedPersonBirthDate != "")).to_numpy()
    sex = kids.Sex.where(kids.Sex != "", kids.GenderCurrent)
    raw = {"upn": kids.UPN, "upn_unknown": kids.UPNunknown, "former_upn": kids.FormerUPN,
           "dob": kids.PersonBirthDate, "sex": sex, "ethnicity": kids.Ethnicity}
    bad_dates = _bad_dates(details, DETAIL_DATES) | _bad_dates(plans, PLAN_DATES)
    keys = kids.file + "|" + kids.element.astype(str)
    extra = {"unborn": unborn, "date_invalid": keys.isin(bad_dates).to_numpy(),
             "upn_duplicate": repeated_upns(kids.UPN, kids.file)}
    records = canonical_records("cin", base, raw, extra)
    # an unborn child has no birth date and no sex yet: that is what 'unborn' says
    records["flags"] = _without(records["flags"], unborn, {"dob_missing", "sex_unknown"})
    return records


def _bad_dates(rows: pd.DataFrame, columns: list[str]) -> set:
    """The children (file|element) with a date in ``columns`` that is not a date."""
    bad = np.zeros(len(rows), dtype=bool)
    for column in columns:
        bad |= parse_dates(rows[column], ISO)[2]
    return set((rows.file + "|" + rows.element.astype(str))[bad])


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


def _dated_content(rows: pd.DataFrame, dates: list[str]) -> pd.DataFrame:
    """Content rows keyed by record, with ``dates`` parsed (a bad date is blank: the record
    is flagged ``date_invalid``)."""
    out = rows.drop(columns=["element", "file"]).rename(columns={"LAchildID": "record_id"})
    for column in dict.fromkeys(["CINreferralDate", *dates]):
        out[column] = parse_dates(out[column], ISO)[0].dt.date
    front = ["provider", "period", "record_id"]
    return out[front + [c for c in out.columns if c not in front]]
