"""Children in Need census XML: one file per LA per year (DOMAIN.md section 3).

``GenderCurrent`` (1 male, 2 female, 0 unborn) up to 2024, ``Sex`` (M, F, U) from 2025; dates
YYYY-MM-DD; a child still unborn at the year's end has ``ExpectedPersonBirthDate`` only.
"""

from pathlib import Path
from xml.sax.saxutils import escape

import numpy as np
import pandas as pd

from synthetic.calendar import DAY, Calendar, dates_for, format_dates, years_between
from synthetic.geography import Geography
from synthetic.la_records import Registrations, duplicate_ids, overlapping, recorded_upns
from synthetic.social_care import SocialCare, dates_of

ISO = "%Y-%m-%d"


def write_cin(rng, out: Path, care: SocialCare, registrations: Registrations,
              upn_by_year: pd.DataFrame, multiplier: pd.Series, calendar: Calendar,
              geography: Geography, error_cfg: dict) -> pd.DataFrame:
    """Write every LA's CIN census for every year; return the truth of each Child element."""
    truth = []
    for year in calendar.collection_years:
        y0, y1 = calendar.year_start(year), calendar.year_end(year)
        episodes = care.cin_episodes[overlapping(care.cin_episodes, "referral_date",
                                                 "closure_date", y0, y1)]
        children = _children(rng, episodes, registrations, upn_by_year, multiplier, year, y1,
                             geography, error_cfg)
        details = _details(episodes, y1)
        for la_index, kids in children.groupby("la_index", sort=True):
            code = f"{geography.la_codes[la_index]:03d}"
            path = f"providers/la_{code}/cin/{year}.xml"
            _write_file(out / path, code, year, kids, details)
            truth.append(kids.assign(file=path, row=np.arange(1, len(kids) + 1), provider=code))
    if not truth:
        return pd.DataFrame()
    kids = pd.concat(truth, ignore_index=True)
    unborn = kids.unborn.to_numpy()
    kids["dob_error"] = np.where(unborn, "", kids.dob_error)
    kids["sex_error"] = kids.sex_error.to_numpy() & ~unborn
    return pd.DataFrame({
        "source": "cin", "provider": kids.provider, "period": kids.year, "file": kids.file,
        "row": kids.row, "record_id": kids.child_id, "person_id": kids.person_id,
        "dob_error": kids.dob_error, "sex_error": kids.sex_error, "upn_error": kids.upn_error,
        "un_code": kids.un_code, "unborn": kids.unborn, "duplicate": kids.duplicate,
    })


def _children(rng, episodes, registrations, upn_by_year, multiplier, year, y1, geography, cfg):
    kids = episodes.drop_duplicates(["person_id", "la_index"])[["person_id", "la_index"]]
    kids = registrations.lookup(kids.sort_values(["la_index", "person_id"], ignore_index=True))
    kids["year"] = year
    kids["duplicate"] = False
    # a child recorded twice by the same LA, under a second LAchildID
    m = multiplier.reindex(kids.person_id).to_numpy()
    twice = kids[rng.random(len(kids)) < cfg["cin_duplicate"] * m].copy()
    twice["duplicate"] = True
    twice["child_id"] = duplicate_ids(geography, registrations, twice.la_index.to_numpy(),
                                      np.arange(len(twice)) + (year - 2000) * 10000)
    kids = pd.concat([kids, twice]).sort_values(["la_index", "child_id"], ignore_index=True)

    true_dob = dates_for(kids.person_id, _true_dobs(episodes))
    kids["unborn"] = true_dob > y1
    not_of_school_age = years_between(true_dob, np.full(len(kids), y1)) < 5
    upn = recorded_upns(rng, kids, upn_by_year, multiplier, cfg, not_of_school_age)
    kids = pd.concat([kids, upn], axis=1)
    kids["expected_dob"] = true_dob + rng.integers(-14, 15, len(kids)) * DAY
    return kids


def _true_dobs(episodes: pd.DataFrame) -> pd.Series:
    return episodes.drop_duplicates("person_id").set_index("person_id").dob


def _details(episodes: pd.DataFrame, y1) -> pd.DataFrame:
    """CINdetails per child and LA, with anything after the year's end left out."""
    frame = episodes.sort_values(["person_id", "la_index", "referral_date"], ignore_index=True)
    def known(column):
        d = dates_of(frame, column)
        return np.where(~np.isnat(d) & (d <= y1), format_dates(d, ISO), "")
    frame = frame.assign(
        referral=format_dates(dates_of(frame, "referral_date"), ISO),
        closure=known("closure_date"), cpp_start=known("cpp_start"), cpp_end=known("cpp_end"),
        assessment=known("assessment_start"))
    frame["reason"] = np.where(frame.closure != "", frame.closure_reason, "")
    return frame


def _identifiers(kid) -> str:
    parts = [f"<LAchildID>{escape(kid.child_id)}</LAchildID>"]
    if kid.upn:
        parts.append(f"<UPN>{kid.upn}</UPN>")
    else:
        parts.append(f"<UPNunknown>{kid.un_code}</UPNunknown>")
    if kid.former_upn:
        parts.append(f"<FormerUPN>{kid.former_upn}</FormerUPN>")
    if kid.unborn:
        parts.append(f"<ExpectedPersonBirthDate>{kid.expected}</ExpectedPersonBirthDate>")
    else:
        parts.append(f"<PersonBirthDate>{kid.birth}</PersonBirthDate>")
    parts.append(kid.gender)
    return "<ChildIdentifiers>" + "".join(parts) + "</ChildIdentifiers>"


def _detail_xml(d) -> str:
    parts = [f"<CINreferralDate>{d.referral}</CINreferralDate>",
             f"<ReferralSource>{d.referral_source}</ReferralSource>",
             f"<PrimaryNeedCode>{d.primary_need}</PrimaryNeedCode>"]
    if d.closure:
        parts += [f"<CINclosureDate>{d.closure}</CINclosureDate>",
                  f"<ReasonForClosure>{d.reason}</ReasonForClosure>"]
    parts.append("<ReferralNFA>0</ReferralNFA>")
    if d.assessment:
        parts.append(f"<Assessments><AssessmentActualStartDate>{d.assessment}"
                     "</AssessmentActualStartDate><AssessmentFactors>21A</AssessmentFactors>"
                     "</Assessments>")
    if d.cpp_start:
        end = f"<CPPendDate>{d.cpp_end}</CPPendDate>" if d.cpp_end else ""
        parts.append(f"<ChildProtectionPlans><CPPstartDate>{d.cpp_start}</CPPstartDate>{end}"
                     "<InitialCategoryOfAbuse>NEG</InitialCategoryOfAbuse>"
                     "<NumberOfPreviousCPP>0</NumberOfPreviousCPP></ChildProtectionPlans>")
    return "<CINdetails>" + "".join(parts) + "</CINdetails>"


def _write_file(path: Path, la_code: str, year: int, kids: pd.DataFrame,
                details: pd.DataFrame) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    kids = kids.assign(
        birth=format_dates(dates_of(kids, "dob"), ISO),
        expected=format_dates(dates_of(kids, "expected_dob"), ISO),
        gender=_gender_elements(kids, year))
    mine = details[details.la_index == kids.la_index.iloc[0]]
    detail_xml = pd.Series([_detail_xml(d) for d in mine.itertuples()], index=mine.index,
                           dtype=object).groupby(mine.person_id.to_numpy()).agg("".join)
    lines = [
        '<?xml version="1.0" encoding="utf-8"?>',
        "<Message>",
        "<Header><CollectionDetails><Collection>CIN</Collection>"
        f"<Year>{year}</Year><ReferenceDate>{year}-03-31</ReferenceDate></CollectionDetails>"
        f"<Source><SourceLevel>L</SourceLevel><LEA>{la_code}</LEA>"
        "<SoftwareCode>synthetic</SoftwareCode><Release>1</Release><SerialNo>1</SerialNo>"
        f"<DateTime>{year}-05-01T09:00:00</DateTime></Source></Header>",
        "<Children>",
    ]
    for kid in kids.itertuples():
        lines.append(
            "<Child>" + _identifiers(kid)
            + f"<ChildCharacteristics><Ethnicity>{kid.ethnicity}</Ethnicity>"
            "<Disabilities><Disability>NONE</Disability></Disabilities></ChildCharacteristics>"
            + detail_xml.get(kid.person_id, "") + "</Child>")
    lines += ["</Children>", "</Message>", ""]
    path.write_text("\n".join(lines), encoding="utf-8")


def _gender_elements(kids: pd.DataFrame, year: int) -> np.ndarray:
    sex = kids.sex.to_numpy()
    unborn = kids.unborn.to_numpy()
    if year >= 2025:
        value = np.where(unborn, "U", sex)
        return np.array([f"<Sex>{v}</Sex>" for v in value], dtype=object)
    value = np.where(unborn, "0", np.where(sex == "M", "1", "2"))
    return np.array([f"<GenderCurrent>{v}</GenderCurrent>" for v in value], dtype=object)
