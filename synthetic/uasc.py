"""Unaccompanied asylum-seeking children (UASC): arrive from abroad and enter care directly.

They are new to England: no birth family in the world, no earlier CIN or school record, and no
UPN (the 903 and CIN returns carry a UN code). Their periods of care end at 18, and the 903
UASC table gives the date each ceased to be UASC (DUC), usually the 18th birthday.
"""

import numpy as np
import pandas as pd

from synthetic.calendar import DAY, Calendar, birthday
from synthetic.geography import Geography
from synthetic.population import Population, append_children
from synthetic.randomness import weighted_choice

CASE_ID_BASE = -1_000_000  # below the babies' case ids, so every arrival is its own case


def uasc_arrivals(rng, population: Population, calendar: Calendar, geography: Geography,
                  cfg: dict, factor: float) -> pd.DataFrame:
    """Children arriving over the window, appended to the population; returns them as
    entrants to care (case_id, person_id, dob, sex, start, la_index, home_postcode)."""
    children = int((population.persons.kind == "child").sum())
    expected = cfg["arrivals_per_100000"] / 100000 * children * factor * calendar.years
    n = int(rng.poisson(expected))
    span = (calendar.end - calendar.start).astype(int)
    arrival = calendar.start + np.sort(rng.integers(0, span + 1, n)) * DAY
    age = weighted_choice(rng, cfg["age_weights"], n).astype(int)
    # born within the year before the arrival's age-th anniversary: exactly that age on arrival
    dob = birthday(arrival, -age) - rng.integers(0, 365, n) * DAY
    sex = np.where(rng.random(n) < cfg["male_share"], "M", "F")
    ethnicity = weighted_choice(rng, cfg["ethnicity_weights"], n)
    la = rng.integers(0, geography.n_las, n)
    arrived = append_children(rng, population, geography, la, dob, sex, ethnicity,
                              np.full(n, "", dtype=object), uasc=True)
    return arrived.assign(case_id=CASE_ID_BASE - np.arange(n), start=arrival, la_index=la)[
        ["case_id", "person_id", "dob", "sex", "start", "la_index", "home_postcode"]]


def uasc_periods(rng, periods: pd.DataFrame, calendar: Calendar, cfg: dict) -> pd.DataFrame:
    """UASC periods last until the 18th birthday, every episode under one legal status."""
    periods = periods.copy()
    eighteen = birthday(periods.dob.to_numpy().astype("datetime64[D]"), 18)
    aged_out = eighteen <= calendar.end
    periods["end"] = np.where(aged_out, eighteen, np.datetime64("NaT"))
    periods["reason"] = np.where(aged_out, "E8", "")
    periods["legal_status"] = weighted_choice(rng, cfg["legal_status_weights"], len(periods))
    periods["uasc"] = True
    return periods


def uasc_table(rng, periods: pd.DataFrame, cfg: dict) -> pd.DataFrame:
    """Each UASC child in each LA that looked after them, with the date they ceased to be UASC
    (usually the 18th birthday; for a few, a date while in care) and the UN code their LAs
    record in place of a UPN."""
    rows = periods[periods.uasc.to_numpy()].drop_duplicates(["person_id", "la_index"])
    rows = rows.sort_values(["person_id", "la_index"], ignore_index=True)
    person_codes, person_of = np.unique(rows.person_id.to_numpy(), return_inverse=True)
    dob = rows.dob.to_numpy().astype("datetime64[D]")
    first = rows.groupby("person_id").start.transform("min").to_numpy().astype("datetime64[D]")
    eighteen = birthday(dob, 18)
    early = (rng.random(len(person_codes)) < cfg["ceased_before_18_share"])[person_of]
    share = rng.random(len(person_codes))[person_of]
    during = first + (share * (eighteen - first).astype(int)).astype(int) * DAY
    duc = np.where(early, during, eighteen)
    un_code = weighted_choice(rng, cfg["un_code_weights"], len(person_codes))[person_of]
    return pd.DataFrame({"person_id": rows.person_id.to_numpy(),
                         "la_index": rows.la_index.to_numpy(), "duc": duc,
                         "un_code": un_code})
