"""The 903 outcome tables: OC2 (looked after 12 months at 31 March) and OC3 (care leavers).

OC2 has one row per child an LA looked after continuously for at least 12 months at 31 March:
an SDQ score (0 to 40) for ages 4 to 16, or a reason (SDQ1 to SDQ5), and 0/1 health and
offending flags. OC3 has one row per care leaver in the year of their 17th to 21st birthday,
from the LA that last looked after them: in touch or not, activity and accommodation.
Column names are the DfE's; rates and code sets are in configs/synthetic.yaml ``outcomes``.
"""

import numpy as np
import pandas as pd

from synthetic.calendar import Calendar, birthday, dates_of, years_between
from synthetic.randomness import weighted_choice

WEEKS_13 = 91  # a care leaver was looked after at least 13 weeks after their 14th birthday


def oc2_rows(rng, periods: pd.DataFrame, calendar: Calendar, cfg: dict) -> pd.DataFrame:
    """OC2 rows of every collection year: person_id, la_index, year and the DfE's columns."""
    frames = []
    start, end = dates_of(periods, "start"), dates_of(periods, "end")
    for year in calendar.collection_years:
        y0, y1 = calendar.year_start(year), calendar.year_end(year)
        # looked after by this LA from 1 April of the year before (or earlier) to 31 March
        stayed = (start <= y0) & (np.isnat(end) | (end > y1))
        rows = periods.loc[stayed, ["person_id", "la_index", "dob"]].drop_duplicates(
            ["person_id", "la_index"]).assign(year=year)
        frames.append(rows)
    rows = pd.concat(frames, ignore_index=True).sort_values(
        ["year", "la_index", "person_id"], ignore_index=True)
    day = np.array([calendar.year_end(y) for y in rows.year], dtype="datetime64[D]")
    age = years_between(dates_of(rows, "dob"), day)
    n = len(rows)
    of_age = (age >= cfg["sdq_ages"]["min"]) & (age <= cfg["sdq_ages"]["max"])
    missing = of_age & (rng.random(n) < cfg["sdq_missing_share"])
    score = np.clip(np.round(rng.normal(cfg["sdq_score"]["mean"], cfg["sdq_score"]["sd"], n)),
                    0, 40).astype(int).astype(str)
    rows["SDQ_SCORE"] = np.where(of_age & ~missing, score, "")
    reason = weighted_choice(rng, cfg["sdq_reason_weights"], n)
    rows["SDQ_REASON"] = np.where(~of_age, cfg["sdq_reason_of_age"], np.where(missing, reason, ""))
    for column, share in cfg["oc2_flag_shares"].items():
        rows[column] = _flag(rng.random(n) < share)
    rows["CONVICTED"] = np.where(age >= cfg["convicted_min_age"], rows.CONVICTED, "")
    misuse = rows.SUBSTANCE_MISUSE.to_numpy() == "1"
    received = misuse & (rng.random(n) < cfg["intervention_received"])
    offered = misuse & (received | (rng.random(n) < cfg["intervention_offered"]))
    rows["INTERVENTION_RECEIVED"] = np.where(misuse, _flag(received), "")
    rows["INTERVENTION_OFFERED"] = np.where(misuse, _flag(offered), "")
    return rows.drop(columns="dob")


def oc3_rows(rng, periods: pd.DataFrame, calendar: Calendar, cfg: dict) -> pd.DataFrame:
    """OC3 rows of every collection year: person_id, la_index, year, IN_TOUCH, ACTIV, ACCOM."""
    leavers = _care_leavers(periods)
    frames = []
    dob = dates_of(leavers, "dob")
    left = dates_of(leavers, "end")
    for age in cfg["care_leaver_ages"]:
        on = birthday(dob, age)
        seen = (on >= calendar.start) & (on <= calendar.end) & (left <= on)
        rows = leavers.loc[seen, ["person_id", "la_index"]]
        frames.append(rows.assign(year=calendar.first_year + calendar.year_index(on[seen])))
    rows = pd.concat(frames, ignore_index=True).sort_values(
        ["year", "la_index", "person_id"], ignore_index=True)
    n = len(rows)
    in_touch = weighted_choice(rng, cfg["in_touch_weights"], n)
    details = np.isin(in_touch, cfg["in_touch_with_details"])
    activity = weighted_choice(rng, cfg["activity_weights"], n)
    suitability = np.where(rng.random(n) < cfg["accommodation_unsuitable"], "2", "1")
    accommodation = weighted_choice(rng, cfg["accommodation_weights"], n).astype(object)
    rows["IN_TOUCH"] = in_touch
    rows["ACTIV"] = np.where(details, activity, "")
    rows["ACCOM"] = np.where(details, accommodation + suitability, "")
    return rows


def _care_leavers(periods: pd.DataFrame) -> pd.DataFrame:
    """Children looked after 13 weeks or more after their 14th birthday and at 16 or later,
    who have left care: their last period (its LA and end)."""
    dob, start = dates_of(periods, "dob"), dates_of(periods, "start")
    end = dates_of(periods, "end")
    stop = np.where(np.isnat(end), np.datetime64("9999-12-31"), end)
    after_14 = (stop - np.maximum(start, birthday(dob, 14))).astype(int).clip(min=0)
    days_after_14 = pd.Series(after_14).groupby(periods.person_id.to_numpy()).sum()
    at_16 = pd.Series(stop >= birthday(dob, 16)).groupby(periods.person_id.to_numpy()).any()
    last = periods.sort_values(["person_id", "start"], kind="stable").drop_duplicates(
        "person_id", keep="last")
    person = last.person_id.to_numpy()
    leaver = ((days_after_14.reindex(person).to_numpy() >= WEEKS_13)
              & at_16.reindex(person).to_numpy() & ~np.isnat(dates_of(last, "end")))
    return last[leaver][["person_id", "la_index", "dob", "end"]].reset_index(drop=True)


def _flag(values: np.ndarray) -> np.ndarray:
    return np.where(values, "1", "0").astype(object)

