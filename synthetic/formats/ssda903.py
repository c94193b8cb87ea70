"""SSDA903 (children looked after) returns: one folder of CSV tables per LA per year.

Columns and codes are those of DOMAIN.md section 2: dates dd/mm/yyyy, SEX 1/2 up to 2023-24 and
M/F from 2024-25, every table repeating the child's DOB as recorded in the Header.
"""

from pathlib import Path

import numpy as np
import pandas as pd

from synthetic.adoption import SINGLE, Adoptions
from synthetic.calendar import Calendar, dates_for, format_dates, school_entry_year, years_between
from synthetic.formats.files import write_csv
from synthetic.geography import Geography
from synthetic.la_records import Registrations, overlapping, recorded_upns
from synthetic.social_care import SocialCare, dates_of

TABLES = {
    "header.csv": ["CHILD", "SEX", "DOB", "ETHNIC", "UPN", "MOTHER", "MC_DOB"],
    "episodes.csv": ["CHILD", "DECOM", "RNE", "LS", "CIN", "PLACE", "PLACE_PROVIDER", "DEC",
                     "REC", "REASON_PLACE_CHANGE", "HOME_POST", "PL_POST", "URN"],
    "ad1.csv": ["CHILD", "DOB", "DATE_INT", "DATE_MATCH", "FOSTER_CARE", "NB_ADOPTR",
                "SEX_ADOPTR", "LS_ADOPTR"],
    "placed_adoption.csv": ["CHILD", "DOB", "DATE_PLACED", "DATE_PLACED_CEASED",
                            "REASON_PLACED_CEASED"],
    "reviews.csv": ["CHILD", "DOB", "REVIEW", "REVIEW_CODE"],
    "missing.csv": ["CHILD", "DOB", "MISSING", "MIS_START", "MIS_END"],
    "prev_perm.csv": ["CHILD", "DOB", "PREV_PERM", "LA_PERM", "DATE_PERM"],
    "uasc.csv": ["CHILD", "SEX", "DOB", "DUC"],
    "oc2.csv": ["CHILD", "DOB", "SDQ_SCORE", "SDQ_REASON", "CONVICTED", "HEALTH_CHECK",
                "IMMUNISATIONS", "TEETH_CHECK", "HEALTH_ASSESSMENT", "SUBSTANCE_MISUSE",
                "INTERVENTION_RECEIVED", "INTERVENTION_OFFERED"],
    "oc3.csv": ["CHILD", "DOB", "IN_TOUCH", "ACTIV", "ACCOM"],
}
DATE = "%d/%m/%Y"


def sex_code(sex: np.ndarray, year: np.ndarray) -> np.ndarray:
    """903 SEX: 1 male, 2 female up to 2023-24; M, F from 2024-25."""
    numeric = np.where(sex == "M", "1", "2")
    return np.where(year >= 2025, sex, numeric).astype(object)


def write_ssda903(rng, out: Path, care: SocialCare, adoptions: Adoptions,
                  registrations: Registrations, upn_by_year: pd.DataFrame,
                  multiplier: pd.Series, calendar: Calendar, geography: Geography,
                  error_cfg: dict) -> pd.DataFrame:
    """Write every LA's 903 tables for every year; return the truth of each Header row."""
    tables = {name: [] for name in TABLES}
    for year in calendar.collection_years:
        y0, y1 = calendar.year_start(year), calendar.year_end(year)
        periods = care.cla_periods[overlapping(care.cla_periods, "start", "end", y0, y1)]
        episodes = care.cla_episodes[overlapping(care.cla_episodes, "decom", "dec", y0, y1)]
        oc3 = care.oc3[care.oc3.year == year]
        # the Header lists every child of the return: looked after, or a care leaver in OC3
        children = pd.concat([periods[["person_id", "la_index"]],
                              oc3[["person_id", "la_index"]]]).drop_duplicates()
        header = _header(rng, children, care, registrations, upn_by_year, multiplier, year,
                         error_cfg)
        tables["header.csv"].append(header)
        tables["episodes.csv"].append(_episodes(episodes, registrations, geography, year, y1))
        tables["ad1.csv"].append(_ad1(periods, adoptions, registrations, year, y0, y1))
        tables["placed_adoption.csv"].append(_placed_adoption(rng, periods, registrations,
                                                              year, y1))
        tables["reviews.csv"].append(_reviews(rng, periods, registrations, year, y0, y1))
        tables["missing.csv"].append(_missing(rng, periods, registrations, year, y0, y1))
        tables["prev_perm.csv"].append(_prev_perm(rng, periods, registrations, year, y0))
        tables["uasc.csv"].append(_uasc(periods, care.uasc, registrations, year, y1))
        tables["oc2.csv"].append(_with_ids(care.oc2[care.oc2.year == year], registrations,
                                           year))
        tables["oc3.csv"].append(_with_ids(oc3, registrations, year))

    truth = []
    for name, frames in tables.items():
        table = pd.concat(frames, ignore_index=True)
        for (la_index, year), rows in table.groupby(["la_index", "year"], sort=True):
            folder = f"providers/la_{geography.la_codes[la_index]:03d}/ssda903/{year}"
            write_csv(rows[TABLES[name]], out / folder / name)
            if name == "header.csv":
                truth.append(rows.assign(file=f"{folder}/{name}",
                                         row=np.arange(2, len(rows) + 2)))
    if not truth:
        return pd.DataFrame()
    header_truth = pd.concat(truth, ignore_index=True)
    header_truth["provider"] = [f"{c:03d}" for c in geography.la_codes[header_truth.la_index]]
    return pd.DataFrame({
        "source": "ssda903", "provider": header_truth.provider, "period": header_truth.year,
        "file": header_truth.file, "row": header_truth.row, "record_id": header_truth.CHILD,
        "person_id": header_truth.person_id, "dob_error": header_truth.dob_error,
        "sex_error": header_truth.sex_error, "upn_error": header_truth.upn_error,
        "un_code": header_truth.UPN.where(header_truth.UPN.str.startswith("UN"), ""),
    })


def _with_ids(frame: pd.DataFrame, registrations: Registrations, year: int) -> pd.DataFrame:
    frame = frame.assign(year=year)
    frame["CHILD"] = registrations.child_ids(frame.person_id.to_numpy(),
                                             frame.la_index.to_numpy())
    reg = registrations.lookup(frame[["person_id", "la_index"]])
    frame["DOB"] = format_dates(reg.dob.to_numpy().astype("datetime64[D]"), DATE)
    return frame


def _header(rng, children, care, registrations, upn_by_year, multiplier, year, cfg):
    children = children.sort_values(["la_index", "person_id"], ignore_index=True)
    reg = registrations.lookup(children)
    frame = _with_ids(children, registrations, year)
    ye = np.datetime64(f"{year}-03-31")
    not_of_school_age = school_entry_year(care_dob(care, frame.person_id)) > year - 1
    recorded = frame.assign(year=year, abroad_code=reg.abroad_code.to_numpy())
    upn = recorded_upns(rng, recorded, upn_by_year, multiplier, cfg, not_of_school_age)
    frame["SEX"] = sex_code(reg.sex.to_numpy(), np.full(len(frame), year))
    frame["ETHNIC"] = reg.ethnicity.to_numpy()
    frame["UPN"] = np.where(upn.upn != "", upn.upn, upn.un_code)
    first_baby = care.mother_child.drop_duplicates("mother_person_id")
    mc_dob = dates_for(frame.person_id, first_baby.set_index("mother_person_id").child_dob)
    is_mother = ~np.isnat(mc_dob) & (mc_dob <= ye)
    # MOTHER is recorded for looked-after girls old enough to be mothers
    girl = (reg.sex.to_numpy() == "F") & (years_between(care_dob(care, frame.person_id),
                                                        np.full(len(frame), ye)) >= 12)
    frame["MOTHER"] = np.where(girl, np.where(is_mother, "1", "0"), "")
    frame["MC_DOB"] = np.where(is_mother, format_dates(mc_dob, DATE), "")
    frame["dob_error"] = reg.dob_error.to_numpy()
    frame["sex_error"] = reg.sex_error.to_numpy()
    frame["upn_error"] = upn.upn_error.to_numpy()
    return frame


def care_dob(care: SocialCare, person_id: pd.Series) -> np.ndarray:
    """True DOBs of looked-after children (to tell who is below school age)."""
    dobs = care.cla_periods.drop_duplicates("person_id").set_index("person_id").dob
    return dates_for(person_id, dobs)


def _episodes(episodes, registrations, geography: Geography, year: int, y1):
    frame = episodes.sort_values(["la_index", "person_id", "decom"], ignore_index=True)
    frame = frame.assign(year=year)
    frame["CHILD"] = registrations.child_ids(frame.person_id.to_numpy(),
                                             frame.la_index.to_numpy())
    dec = dates_of(frame, "dec")
    ended = ~np.isnat(dec) & (dec <= y1)
    frame["DECOM"] = format_dates(dates_of(frame, "decom"), DATE)
    frame["DEC"] = np.where(ended, format_dates(dec, DATE), "")
    frame["REC"] = np.where(ended, frame.rec.fillna(""), "")
    frame["RNE"], frame["LS"], frame["PLACE"] = frame.rne, frame.ls, frame.place
    frame["CIN"] = "N1"
    frame["PLACE_PROVIDER"] = frame.place_provider
    frame["REASON_PLACE_CHANGE"] = frame.reason_place_change
    frame["HOME_POST"] = geography.postcode_text(frame.home_postcode.to_numpy())
    frame["PL_POST"] = geography.postcode_text(frame.pl_post.to_numpy())
    frame["URN"] = np.where(frame.place.isin(["K2"]),
                            "SC" + (frame.pl_post % 900000 + 100000).astype(str), "")
    return frame


def _ad1(periods, adoptions: Adoptions, registrations, year, y0, y1):
    end = dates_of(periods, "end")
    adopted = periods[periods.reason.isin(["E11", "E12"]).to_numpy() & (end >= y0) & (end <= y1)]
    frame = _with_ids(adopted.sort_values(["la_index", "person_id"]), registrations, year)
    household = frame.person_id.map(adoptions.placements.set_index("person_id").household_id)
    composition = household.map(adoptions.households.set_index("household_id").composition)
    status = household.map(adoptions.households.set_index("household_id").relationship_status)
    frame["DATE_INT"] = format_dates(dates_of(frame, "decision_date"), DATE)
    frame["DATE_MATCH"] = format_dates(dates_of(frame, "matched_date"), DATE)
    frame["FOSTER_CARE"] = np.where(frame.ffa, "1", "0")
    frame["NB_ADOPTR"] = np.where(composition.isin(SINGLE), "1", "2")
    frame["SEX_ADOPTR"] = composition.to_numpy()
    frame["LS_ADOPTR"] = _legal_status_of_adopters(composition, status)
    return frame


def _legal_status_of_adopters(composition: pd.Series, status: pd.Series) -> np.ndarray:
    single = composition.isin(SINGLE)
    same_sex = composition.isin(["FF", "MM"])
    return np.select(
        [single, status.eq("Civil partnership"), status.eq("Married") & same_sex,
         status.eq("Married"), same_sex],
        ["L0", "L2", "L12", "L11", "L4"], "L3").astype(object)


def _placed_adoption(rng, periods, registrations, year, y1):
    decided = periods[~np.isnat(dates_of(periods, "decision_date"))
                      & (dates_of(periods, "decision_date") <= y1)]
    frame = _with_ids(decided.sort_values(["la_index", "person_id"]), registrations, year)
    ceased = dates_of(frame, "reversed_date")
    ceased = np.where(~np.isnat(ceased) & (ceased <= y1), ceased, np.datetime64("NaT"))
    frame["DATE_PLACED"] = format_dates(dates_of(frame, "decision_date"), DATE)
    frame["DATE_PLACED_CEASED"] = format_dates(ceased, DATE)
    frame["REASON_PLACED_CEASED"] = np.where(np.isnat(ceased), "",
                                             rng.choice(["RD1", "RD2", "RD3", "RD4"], len(frame)))
    return frame


def _reviews(rng, periods, registrations, year, y0, y1):
    children = periods.drop_duplicates(["person_id", "la_index"]).sort_values(
        ["la_index", "person_id"])
    frame = _with_ids(children, registrations, year)
    start = np.maximum(dates_of(frame, "start"), y0)
    end = dates_of(frame, "end")
    stop = np.where(np.isnat(end) | (end > y1), y1, end)
    span = (stop - start).astype(int)
    frame = frame[span > 20].copy()
    offset = (rng.random(len(frame)) * span[span > 20]).astype(int)
    frame["REVIEW"] = format_dates(start[span > 20] + offset.astype("timedelta64[D]"), DATE)
    frame["REVIEW_CODE"] = rng.choice(["PN0", "PN1", "PN2", "PN3", "PN4", "PN5", "PN6", "PN7"],
                                      len(frame))
    return frame


def _missing(rng, periods, registrations, year, y0, y1):
    children = periods.drop_duplicates(["person_id", "la_index"]).sort_values(
        ["la_index", "person_id"])
    older = years_between(dates_of(children, "dob"), np.full(len(children), y1)) >= 11
    chosen = children[older & (rng.random(len(children)) < 0.1)]
    frame = _with_ids(chosen, registrations, year)
    start = np.maximum(dates_of(frame, "start"), y0) + rng.integers(
        0, 120, len(frame)).astype("timedelta64[D]")
    end = dates_of(frame, "end")
    in_care_until = np.where(np.isnat(end) | (end > y1), y1, end)
    start = np.minimum(start, in_care_until)
    frame["MISSING"] = rng.choice(["M", "A"], len(frame), p=[0.7, 0.3])
    frame["MIS_START"] = format_dates(start, DATE)
    frame["MIS_END"] = format_dates(
        np.minimum(start + rng.integers(1, 5, len(frame)).astype("timedelta64[D]"),
                   in_care_until), DATE)
    return frame


def _prev_perm(rng, periods, registrations, year, y0):
    started = periods[(dates_of(periods, "start") >= y0) & ~periods.transferred_in.to_numpy()]
    frame = _with_ids(started.sort_values(["la_index", "person_id"]), registrations, year)
    frame["PREV_PERM"] = rng.choice(["Z1", "P1", "P2", "P3"], len(frame),
                                    p=[0.9, 0.03, 0.04, 0.03])
    frame["LA_PERM"] = ""
    frame["DATE_PERM"] = ""
    return frame


def _uasc(periods, uasc: pd.DataFrame, registrations, year, y1):
    """The UASC table: every UASC child the LA looked after in the year, with the date they
    ceased to be UASC once it has passed."""
    looked_after = periods[["person_id", "la_index"]].drop_duplicates()
    rows = uasc.merge(looked_after, on=["person_id", "la_index"]).sort_values(
        ["la_index", "person_id"], ignore_index=True)
    frame = _with_ids(rows, registrations, year)
    reg = registrations.lookup(rows[["person_id", "la_index"]])
    frame["SEX"] = sex_code(reg.sex.to_numpy(), np.full(len(frame), year))
    duc = dates_of(frame, "duc")
    frame["DUC"] = format_dates(np.where(duc <= y1, duc, np.datetime64("NaT")), DATE)
    return frame
