"""Children in Need census XML: one file per LA per year (DOMAIN.md section 3).

``GenderCurrent`` (1 male, 2 female, 0 unborn) up to 2024, ``Sex`` (M, F, U) from 2025; dates
YYYY-MM-DD; a child still unborn at the year's end has ``ExpectedPersonBirthDate`` only.
"""

from pathlib import Path

import numpy as np
import pandas as pd

from synthetic.calendar import DAY, Calendar, dates_for, format_dates, school_entry_year
from synthetic.geography import Geography
from synthetic.la_records import Registrations, duplicate_ids, overlapping, recorded_upns
from synthetic.protection_plans import previous_plans
from synthetic.social_care import SocialCare, dates_of

ISO = "%Y-%m-%d"
REVIEW_AFTER_DAYS = 90  # the first review conference of a plan, about three months in


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
        plans = care.cpp_plans[overlapping(care.cpp_plans, "start_date", "end_date", y0, y1)]
        children["xml"] = _children_xml(children, _details(episodes, plans, y1), year)
        for la_index, kids in children.groupby("la_index", sort=True):
            code = f"{geography.la_codes[la_index]:03d}"
            path = f"providers/la_{code}/cin/{year}.xml"
            _write_file(out / path, code, year, kids.xml.to_numpy())
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
    # a child the LA's case system holds twice, under a second LAchildID: in every return
    # that has the child, with the same episodes (the registration's error, not the year's)
    twice = kids[kids.recorded_twice.to_numpy()].copy()
    twice["duplicate"] = True
    twice["child_id"] = duplicate_ids(geography, registrations, twice.la_index.to_numpy(),
                                      twice.second_number.to_numpy())
    kids = pd.concat([kids, twice]).sort_values(["la_index", "child_id"], ignore_index=True)

    true_dob = dates_for(kids.person_id, _true_dobs(episodes))
    kids["unborn"] = true_dob > y1
    not_of_school_age = school_entry_year(true_dob) > year - 1
    upn = recorded_upns(rng, kids, upn_by_year, multiplier, cfg, not_of_school_age)
    kids = pd.concat([kids, upn], axis=1)
    kids["expected_dob"] = true_dob + rng.integers(-14, 15, len(kids)) * DAY
    return kids


def _true_dobs(episodes: pd.DataFrame) -> pd.Series:
    return episodes.drop_duplicates("person_id").set_index("person_id").dob


def _known(frame: pd.DataFrame, column: str, y1) -> np.ndarray:
    """A date column as the return shows it: blank when missing or after the year's end."""
    d = dates_of(frame, column)
    return np.where(~np.isnat(d) & (d <= y1), format_dates(d, ISO), "")


def _details(episodes: pd.DataFrame, plans: pd.DataFrame, y1) -> pd.DataFrame:
    """CINdetails per child and LA, with anything after the year's end left out."""
    frame = episodes.sort_values(["la_index", "person_id", "referral_date"], ignore_index=True)
    frame = frame.assign(
        referral=format_dates(dates_of(frame, "referral_date"), ISO),
        closure=_known(frame, "closure_date", y1),
        assessment=_known(frame, "assessment_start", y1))
    frame["reason"] = np.where(frame.closure != "", frame.closure_reason, "")
    frame["plans"] = frame.episode_id.map(_plans_xml(plans, y1)).fillna("").to_numpy()
    xml = _details_xml(frame)
    # all of a child's CINdetails in one LA, in referral order
    keys = frame[["la_index", "person_id"]].to_numpy()
    starts = np.flatnonzero(np.r_[True, (keys[1:] != keys[:-1]).any(axis=1)])
    joined = np.add.reduceat(xml, starts) if len(xml) else xml
    return pd.DataFrame({"la_index": keys[starts, 0] if len(xml) else [],
                         "person_id": keys[starts, 1] if len(xml) else [], "xml": joined})


def _element(tag: str, values: np.ndarray) -> np.ndarray:
    """``<tag>value</tag>`` for each value, or nothing where the value is empty."""
    values = values.astype(object)
    return np.where(values != "", f"<{tag}>" + values + f"</{tag}>", "").astype(object)


def _children_xml(kids: pd.DataFrame, details: pd.DataFrame, year: int) -> np.ndarray:
    """One ``<Child>`` element per row of ``kids`` (built column-wise, not row by row)."""
    unborn = kids.unborn.to_numpy()
    birth = format_dates(dates_of(kids, "dob"), ISO)
    expected = format_dates(dates_of(kids, "expected_dob"), ISO)
    identifiers = (
        _element("LAchildID", kids.child_id.to_numpy())
        + np.where(kids.upn.to_numpy() != "", _element("UPN", kids.upn.to_numpy()),
                   _element("UPNunknown", kids.un_code.to_numpy()))
        + _element("FormerUPN", kids.former_upn.to_numpy())
        + np.where(unborn, _element("ExpectedPersonBirthDate", expected),
                   _element("PersonBirthDate", birth))
        + _gender_elements(kids, year))
    characteristics = ("<ChildCharacteristics>" + _element("Ethnicity", kids.ethnicity.to_numpy())
                       + "<Disabilities><Disability>NONE</Disability></Disabilities>"
                       "</ChildCharacteristics>")
    by_child = details.groupby(["la_index", "person_id"], sort=False).xml.first()
    keys = pd.MultiIndex.from_arrays([kids.la_index.to_numpy(), kids.person_id.to_numpy()])
    cin_details = by_child.reindex(keys).fillna("").to_numpy()
    return ("<Child><ChildIdentifiers>" + identifiers + "</ChildIdentifiers>" + characteristics
            + cin_details + "</Child>")


def _details_xml(frame: pd.DataFrame) -> np.ndarray:
    """One ``<CINdetails>`` element per CIN episode."""
    closed = frame.closure.to_numpy() != ""
    assessments = np.where(
        frame.assessment.to_numpy() != "",
        "<Assessments>" + _element("AssessmentActualStartDate", frame.assessment.to_numpy())
        + "<AssessmentFactors>21A</AssessmentFactors></Assessments>", "")
    return ("<CINdetails>" + _element("CINreferralDate", frame.referral.to_numpy())
            + _element("ReferralSource", frame.referral_source.to_numpy())
            + _element("PrimaryNeedCode", frame.primary_need.to_numpy())
            + np.where(closed, _element("CINclosureDate", frame.closure.to_numpy())
                       + _element("ReasonForClosure", frame.reason.to_numpy()), "")
            + "<ReferralNFA>0</ReferralNFA>" + assessments + frame.plans.to_numpy()
            + "</CINdetails>")


def _plans_xml(plans: pd.DataFrame, y1) -> pd.Series:
    """Every plan of each episode as its own ``ChildProtectionPlans`` element, in start order,
    joined per episode (indexed by episode_id)."""
    plans = plans.sort_values(["episode_id", "start_date"])
    start = _known(plans, "start_date", y1)
    review = dates_of(plans, "start_date") + REVIEW_AFTER_DAYS * DAY
    end = dates_of(plans, "end_date")
    reviewed = (review <= y1) & (np.isnat(end) | (review <= end))
    xml = ("<ChildProtectionPlans>" + _element("CPPstartDate", start)
           + _element("CPPendDate", _known(plans, "end_date", y1))
           + _element("InitialCategoryOfAbuse", plans.initial_category.to_numpy())
           + _element("LatestCategoryOfAbuse", plans.latest_category.to_numpy())
           + _element("NumberOfPreviousCPP", previous_plans(plans).astype(str))
           + np.where(reviewed, "<Reviews>" + _element(
               "CPPreviewDate", format_dates(review, ISO)) + "</Reviews>", "")
           + "</ChildProtectionPlans>")
    return pd.Series(xml, index=plans.episode_id.to_numpy()).groupby(level=0).sum()


def _write_file(path: Path, la_code: str, year: int, children_xml: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [
        '<?xml version="1.0" encoding="utf-8"?>',
        "<Message>",
        "<Header><CollectionDetails><Collection>CIN</Collection>"
        f"<Year>{year}</Year><ReferenceDate>{year}-03-31</ReferenceDate></CollectionDetails>"
        f"<Source><SourceLevel>L</SourceLevel><LEA>{la_code}</LEA>"
        "<SoftwareCode>synthetic</SoftwareCode><Release>1</Release><SerialNo>1</SerialNo>"
        f"<DateTime>{year}-05-01T09:00:00</DateTime></Source></Header>",
        "<Children>",
        *children_xml.tolist(),
        "</Children>",
        "</Message>",
        "",
    ]
    path.write_text("\n".join(lines), encoding="utf-8")


def _gender_elements(kids: pd.DataFrame, year: int) -> np.ndarray:
    sex = kids.sex.to_numpy()
    unborn = kids.unborn.to_numpy()
    if year >= 2025:
        return _element("Sex", np.where(unborn, "U", sex))
    return _element("GenderCurrent", np.where(unborn, "0", np.where(sex == "M", "1", "2")))
