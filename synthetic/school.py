"""School careers: UPNs issued at school entry, UPN changes, and January census rows per year."""

from dataclasses import dataclass

import numpy as np
import pandas as pd

from synthetic.adoption import Adoptions
from synthetic.calendar import Calendar, dates_for, school_entry_year
from synthetic.geography import Geography
from synthetic.population import Population
from synthetic.randomness import stream
from synthetic.reference import EXTENDED_ETHNICITY, UPN_CHECK_ALPHABET
from synthetic.social_care import SocialCare, dates_of
from synthetic.upn import make_upns


@dataclass
class Schooling:
    upn_by_year: pd.DataFrame   # person_id, year, upn, former_upn: the permanent UPN each year
    pupils: pd.DataFrame        # one row per pupil per January census (dual registrations twice)
    upn_issues: pd.DataFrame    # every UPN issued, with why (entry, change, adoption, temporary)


def build_schooling(seed: int, population: Population, care: SocialCare, adoptions: Adoptions,
                    calendar: Calendar, geography: Geography, config: dict,
                    error_multiplier: pd.Series) -> Schooling:
    """Who is at which state school in each census, and under which UPN.

    ``error_multiplier`` (by person_id) scales the error rates for groups recorded worse.
    """
    rng = stream(seed, "school")
    pop_cfg, err_cfg, adopt_cfg = config["population"], config["errors"], config["adoption"]
    children = population.persons[population.persons.kind == "child"].reset_index(drop=True)
    n = len(children)
    dob = dates_of(children, "dob")
    entry_year = school_entry_year(dob)
    years = np.array(calendar.collection_years)
    attends = rng.random(n) < pop_cfg["state_school_share"]
    # children who arrived from abroad as UASC were never at a state school in England
    attends &= ~children.get("uasc", pd.Series(False, index=children.index)).fillna(
        False).to_numpy(dtype=bool)
    sixth_form = rng.random(n) < pop_cfg["sixth_form_share"]

    # the permanent UPN, issued at entry by a primary school in the LA the child lived in then
    has_upn = attends & (entry_year <= years[-1] - 1)
    entry_column = np.clip(entry_year - (calendar.first_year - 1), 0, calendar.years)
    household = children.household_id.to_numpy().astype(np.int64)
    entry_la = population.home_la[household, entry_column]
    # twins usually go to the same schools: the school draws are per maternity
    maternity = np.unique(children.maternity_id.to_numpy(), return_inverse=True)[1]
    u_primary = rng.random(maternity.max() + 1)[maternity]
    u_secondary = rng.random(maternity.max() + 1)[maternity]
    issues = [pd.DataFrame({
        "person_id": children.person_id.to_numpy()[has_upn], "reason": "entry",
        "la_index": entry_la[has_upn], "phase": 0, "u": u_primary[has_upn],
        "issue_year": entry_year[has_upn], "temporary": False})]

    # a later permanent UPN: recorded with a former UPN, or reissued after adoption without one
    multiplier = error_multiplier.reindex(children.person_id).to_numpy()
    change_rate = err_cfg["upn_change"] * multiplier
    changes = has_upn & (rng.random(n) < change_rate)
    first_school_year = np.maximum(entry_year + 1, years[0])
    span = np.maximum(years[-1] - first_school_year, 0)
    change_year = first_school_year + np.floor(rng.random(n) * (span + 1)).astype(int)
    orders = adoptions.placements.set_index("person_id").adoption_order_date
    order = dates_for(children.person_id, orders)
    reissue = has_upn & ~np.isnat(order) & (rng.random(n) < adopt_cfg["new_upn_after_adoption"])
    order_year = calendar.first_year + calendar.year_index(order) + 1
    change_year = np.where(reissue, np.maximum(order_year, first_school_year), change_year)
    changes = (changes | reissue) & (change_year <= years[-1])
    change_column = np.clip(change_year - calendar.first_year, 0, calendar.years)
    issues.append(pd.DataFrame({
        "person_id": children.person_id.to_numpy()[changes],
        "reason": np.where(reissue[changes], "adoption", "change"),
        "la_index": population.home_la[household[changes], change_column[changes]],
        "phase": 1, "u": u_secondary[changes], "issue_year": change_year[changes] - 1,
        "temporary": False}))

    upn_by_year = _upn_by_year(children, entry_year, has_upn, years, changes, change_year,
                               reissue)
    census = _census_rows(rng, children, entry_year, attends, sixth_form, years, pop_cfg)
    temporary = rng.random(len(census)) < (err_cfg["upn_temporary"]
                                           * multiplier[census.person_index.to_numpy()])
    census["temporary_upn"] = temporary
    issues.append(pd.DataFrame({
        "person_id": census.person_id.to_numpy()[temporary], "reason": "temporary",
        "la_index": -1, "phase": 9, "u": 0.0, "issue_year": census.year.to_numpy()[temporary] - 1,
        "temporary": True, "census_row": np.flatnonzero(temporary)}))
    census = _where_they_live(census, children, population, care, adoptions, calendar,
                              geography, u_primary, u_secondary)
    issued = _issue_upns(rng, pd.concat(issues, ignore_index=True), census, geography)
    upn_by_year = _attach_upns(upn_by_year, issued)
    return Schooling(upn_by_year, census, issued)


def _census_rows(rng, children: pd.DataFrame, entry_year: np.ndarray, attends: np.ndarray,
                 sixth_form: np.ndarray, years: np.ndarray, cfg: dict) -> pd.DataFrame:
    nc_year = years[None, :] - 1 - entry_year[:, None]
    present = attends[:, None] & (
        ((nc_year >= 0) & (nc_year <= 11)) | ((nc_year >= 12) & (nc_year <= 13)
                                              & sixth_form[:, None]))
    present &= rng.random(present.shape) > 0.02  # a year at an independent school or abroad
    row, column = np.nonzero(present)
    return pd.DataFrame({"person_index": row, "person_id": children.person_id.to_numpy()[row],
                         "year": years[column], "nc_year": nc_year[row, column]})


def _upn_by_year(children, entry_year, has_upn, years, changes, change_year, reissue):
    """Which permanent UPN (first or second issue) stands for each child in each year."""
    grid_years = np.broadcast_to(years, (len(children), len(years)))
    known = has_upn[:, None] & (grid_years >= entry_year[:, None] + 1)
    row, column = np.nonzero(known)
    year = years[column]
    second = changes[row] & (year >= change_year[row])
    return pd.DataFrame({
        "person_id": children.person_id.to_numpy()[row], "year": year,
        "issue": np.where(second, np.where(reissue[row], "adoption", "change"), "entry"),
        "records_former": second & ~reissue[row],
    })


def _where_they_live(census, children, population, care, adoptions, calendar, geography,
                     u_primary, u_secondary) -> pd.DataFrame:
    """Each census row's home (or placement) postcode, school LA and school."""
    idx = census.person_index.to_numpy()
    column = census.year.to_numpy() - calendar.first_year + 1
    household = children.household_id.to_numpy().astype(np.int64)[idx]
    postcode = population.home_postcode[household, column]
    census_date = (census.year.astype(str) + "-01-18").to_numpy().astype("datetime64[D]")

    # looked after on census day: the child lives at the placement
    episodes = care.cla_episodes[["person_id", "decom", "dec", "pl_post"]]
    rows = pd.DataFrame({"row": np.arange(len(census)), "person_id": census.person_id,
                         "census_date": census_date}).merge(episodes, on="person_id")
    open_on = (rows.decom <= rows.census_date) & (rows.dec.isna() | (rows.dec > rows.census_date))
    rows = rows[open_on].drop_duplicates("row")
    postcode[rows.row.to_numpy()] = rows.pl_post.to_numpy()

    # placed for adoption: the adopters' home
    placed = adoptions.placements.merge(adoptions.households[["household_id", "postcode"]],
                                        on="household_id")
    rows = pd.DataFrame({"row": np.arange(len(census)), "person_id": census.person_id,
                         "census_date": census_date}).merge(placed, on="person_id")
    rows = rows[rows.placed_date <= rows.census_date]
    postcode[rows.row.to_numpy()] = rows.postcode.to_numpy()

    la = geography.postcode_la(postcode)  # a child goes to school where they live
    secondary = census.nc_year.to_numpy() >= 7
    u = np.where(secondary, u_secondary[idx], u_primary[idx])
    n_schools = np.where(secondary, geography.secondary_schools[la], geography.primary_schools[la])
    school = np.floor(u * n_schools).astype(int)
    return census.assign(
        la_index=la, postcode=postcode,
        estab=np.where(secondary, 4001, 2001) + school,
        urn=100000 + la * 2000 + np.where(secondary, 1000, 0) + school,
    )


def _issue_upns(rng, issues: pd.DataFrame, census: pd.DataFrame,
                geography: Geography) -> pd.DataFrame:
    """Give every issue a serial unique within its LA, school and year, then build the UPN."""
    temp = issues.reason.to_numpy() == "temporary"
    rows = issues.census_row.to_numpy()
    la = issues.la_index.to_numpy().astype(np.int64)
    la[temp] = census.la_index.to_numpy()[rows[temp].astype(int)]
    phase = issues.phase.to_numpy()
    n_schools = np.where(phase == 1, geography.secondary_schools[la],
                         geography.primary_schools[la])
    school = np.floor(issues.u.to_numpy() * n_schools).astype(int)
    estab = np.where(phase == 1, 4001, 2001) + school
    estab[temp] = census.estab.to_numpy()[rows[temp].astype(int)]
    issues = issues.assign(la_code=geography.la_codes[la], estab=estab)
    issues = issues.sort_values(["la_code", "estab", "issue_year", "person_id", "reason"],
                                kind="stable", ignore_index=True)
    key = issues[["la_code", "estab", "issue_year"]].to_numpy()
    new_group = np.r_[True, (key[1:] != key[:-1]).any(axis=1)]
    starts = np.flatnonzero(new_group)
    serial = np.arange(len(issues)) - np.repeat(starts, np.diff(np.r_[starts, len(issues)]))
    if len(serial) and serial.max() > 999:
        raise ValueError("more than 1,000 UPNs issued by one school in one year")
    letters = rng.choice(list(UPN_CHECK_ALPHABET), len(issues))
    issues["upn"] = make_upns(issues.la_code.to_numpy(), issues.estab.to_numpy(),
                              issues.issue_year.to_numpy(), serial,
                              issues.temporary.to_numpy(), letters)
    return issues


def _attach_upns(upn_by_year: pd.DataFrame, issued: pd.DataFrame) -> pd.DataFrame:
    entry = issued[issued.reason == "entry"].set_index("person_id").upn
    later = issued[issued.reason.isin(["change", "adoption"])].set_index("person_id").upn
    first = upn_by_year.person_id.map(entry)
    second = upn_by_year.person_id.map(later)
    is_second = upn_by_year.issue.to_numpy() != "entry"
    upn_by_year["upn"] = np.where(is_second, second, first)
    upn_by_year["former_upn"] = np.where(upn_by_year.records_former.to_numpy(), first, "")
    return upn_by_year.drop(columns=["records_former"])


def extended_ethnicity(rng, ethnicity: np.ndarray) -> np.ndarray:
    """School census extended codes: a child's main code, or a code that rolls up to it."""
    out = ethnicity.astype(object).copy()
    for main, extended in EXTENDED_ETHNICITY.items():
        rows = np.flatnonzero(ethnicity == main)
        out[rows] = np.array(extended, dtype=object)[rng.integers(0, len(extended), len(rows))]
    return out
