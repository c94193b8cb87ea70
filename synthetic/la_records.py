"""What an LA's case system holds about a child: its own CHILD id, and identifiers as recorded.

903 and CIN come from the same case system, so they share the LA's id for a child. A child new
to an LA (a family move, or a transfer of care) gets a new id there.
"""

from dataclasses import dataclass

import numpy as np
import pandas as pd

from synthetic.calendar import Calendar
from synthetic.errors import recorded_dob, recorded_sex
from synthetic.geography import Geography
from synthetic.social_care import SocialCare, dates_of
from synthetic.upn import wrong_check_letter


@dataclass
class Registrations:
    """One row per child per LA: the LA's id and the DOB and sex as that LA recorded them."""

    table: pd.DataFrame

    def child_ids(self, person_id: np.ndarray, la_index: np.ndarray) -> np.ndarray:
        keys = pd.MultiIndex.from_arrays([person_id, la_index])
        return self.table.set_index(["person_id", "la_index"]).child_id.reindex(keys).to_numpy()

    def lookup(self, frame: pd.DataFrame) -> pd.DataFrame:
        """``frame`` (with person_id and la_index) joined to the registration's fields."""
        return frame.merge(self.table, on=["person_id", "la_index"], how="left")


def build_registrations(rng, care: SocialCare, persons: pd.DataFrame, calendar: Calendar,
                        geography: Geography, multiplier: pd.Series,
                        cfg: dict) -> Registrations:
    """Number each child within each LA in order of first contact, and record their DOB and sex."""
    contacts = pd.concat([
        care.cin_episodes[["person_id", "la_index", "referral_date"]].rename(
            columns={"referral_date": "first_date"}),
        care.cla_periods[["person_id", "la_index", "start"]].rename(
            columns={"start": "first_date"}),
    ])
    table = (contacts.sort_values(["la_index", "first_date", "person_id"], kind="stable")
             .drop_duplicates(["person_id", "la_index"]).reset_index(drop=True))
    rank = table.groupby("la_index").cumcount().to_numpy()
    offset = rng.integers(1000, 50000, geography.n_las)
    number = offset[table.la_index.to_numpy()] + rank
    table["child_id"] = _format_ids(geography, table.la_index.to_numpy(), number)

    people = persons.set_index("person_id").loc[table.person_id.to_numpy()]
    m = multiplier.reindex(table.person_id).to_numpy()
    dob, dob_error = recorded_dob(rng, people.dob.to_numpy().astype("datetime64[D]"), m, cfg,
                                  calendar.start)
    sex, sex_error = recorded_sex(rng, people.sex.to_numpy(), m, cfg)
    table["dob"] = dob
    table["dob_error"] = dob_error
    table["sex"] = sex
    table["sex_error"] = sex_error
    table["ethnicity"] = people.ethnicity.to_numpy()
    # a child who came from abroad is recorded with the UN code saying so, where no UPN
    abroad = care.uasc.drop_duplicates("person_id").set_index("person_id").un_code
    table["abroad_code"] = table.person_id.map(abroad).fillna("").to_numpy()
    table["next_number"] = offset[table.la_index.to_numpy()] + table.groupby(
        "la_index").la_index.transform("size").to_numpy()
    # a second registration of the same child is the case system's, kept year after year
    table["recorded_twice"] = rng.random(len(table)) < cfg["cin_duplicate"] * m
    table["second_number"] = np.cumsum(table.recorded_twice.to_numpy()) - 1
    return Registrations(table)


def _format_ids(geography: Geography, la_index: np.ndarray, number: np.ndarray) -> np.ndarray:
    templates = geography.child_id_format[la_index]
    codes = geography.la_codes[la_index]
    return np.array([t.format(n=int(n), la=f"{c:03d}")
                     for t, n, c in zip(templates, number, codes, strict=True)], dtype=object)


def duplicate_ids(geography: Geography, registrations: Registrations, la_index: np.ndarray,
                  order: np.ndarray) -> np.ndarray:
    """Second ids for children an LA recorded twice, numbered after its ordinary ids."""
    next_number = registrations.table.groupby("la_index").next_number.first()
    number = next_number.reindex(la_index).to_numpy() + order
    return _format_ids(geography, la_index, number)


def recorded_upns(rng, frame: pd.DataFrame, upn_by_year: pd.DataFrame, multiplier: pd.Series,
                  cfg: dict, not_of_school_age: np.ndarray) -> pd.DataFrame:
    """The UPN an LA record carries in a year, a UN code in its place, or a mistyped one.

    ``frame`` has person_id and year (and may have abroad_code: the UN code of a child from
    abroad); returns upn, former_upn, un_code and upn_error columns.
    """
    known = frame[["person_id", "year"]].merge(upn_by_year, on=["person_id", "year"], how="left")
    upn = known.upn.fillna("").to_numpy().astype(object)
    former = known.former_upn.fillna("").to_numpy().astype(object)
    m = multiplier.reindex(frame.person_id).to_numpy()
    has = upn != ""
    u = rng.random(len(frame))
    missing = has & (u < cfg["upn_missing_school_age"] * m)
    wrong = has & ~missing & (u > 1 - cfg["upn_wrong_check_letter"] * m)
    upn[wrong] = wrong_check_letter(upn[wrong], rng)
    un_code = np.where(has, "", np.where(not_of_school_age, "UN1", "UN2")).astype(object)
    if "abroad_code" in frame:
        abroad = frame.abroad_code.to_numpy()
        un_code = np.where((un_code == "UN2") & (abroad != ""), abroad, un_code)
    un_code[missing] = np.where(rng.random(int(missing.sum())) < 0.7, "UN4", "UN5")
    upn[missing] = ""
    former[missing] = ""
    error = np.select([missing, wrong], ["missing", "check_letter"], "").astype(object)
    return pd.DataFrame({"upn": upn, "former_upn": former, "un_code": un_code,
                         "upn_error": error}, index=frame.index)


def overlapping(frame: pd.DataFrame, start: str, end: str, year_start, year_end) -> np.ndarray:
    """Rows whose span [start, end] (end missing = still open) touches the collection year."""
    s, e = dates_of(frame, start), dates_of(frame, end)
    return (s <= year_end) & (np.isnat(e) | (e >= year_start))
