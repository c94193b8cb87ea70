"""The adoption pathway: decision, placement order, matching to adopter households, placement.

Siblings placed together share one household and one set of dates; siblings placed apart are
matched separately. Adopter households have one or two adopters with their own characteristics.
"""

from dataclasses import dataclass

import numpy as np
import pandas as pd

from synthetic.calendar import DAY, Calendar
from synthetic.geography import Geography
from synthetic.grouping import rank_within
from synthetic.names import NamePools
from synthetic.randomness import weighted_choice
from synthetic.reference import ADOPTION_PLACEMENTS, RELIGION_WEIGHTS, RELIGIONS

SINGLE = ["F1", "M1"]  # household compositions of one adopter (903 SEX_ADOPTR codes)
STEPS = [
    ("decision_date", "days_to_decision"),
    ("placement_order_date", "days_decision_to_order"),
    ("matched_date", "days_order_to_match"),
    ("placed_date", "days_match_to_placed"),
    ("adoption_order_date", "days_placed_to_adoption_order"),
]


@dataclass
class Adoptions:
    households: pd.DataFrame   # one row per adopter household
    adopters: pd.DataFrame     # one row per adopter (person), with adopter_number 1 or 2
    placements: pd.DataFrame   # child person -> household, with match and placement dates


def adoption_timelines(rng, periods: pd.DataFrame, adopt: np.ndarray, cfg: dict) -> pd.DataFrame:
    """Dates of each adopted child's pathway; siblings placed together share theirs."""
    n = len(periods)
    case_codes, case_of = np.unique(periods.case_id.to_numpy(), return_inverse=True)
    together = (rng.random(len(case_codes)) < cfg["siblings_placed_together"])[case_of]
    out = pd.DataFrame(index=periods.index)
    current = periods.start.to_numpy().astype("datetime64[D]")
    for column, step in STEPS:
        mean, sd = cfg[step]["mean"], cfg[step]["sd"]
        shared = rng.normal(mean, sd, len(case_codes))[case_of]
        own = rng.normal(mean, sd, n)
        # a child's decision is shared by the case; later steps are shared only when together
        gap = np.where(together | (column == "decision_date"), shared, own)
        current = current + np.round(np.maximum(gap, 7)).astype(int) * DAY
        out[column] = np.where(adopt, current, np.datetime64("NaT"))
    reversed_ = adopt & (rng.random(len(case_codes)) < cfg["decision_reversed"])[case_of]
    decision = out.decision_date.to_numpy().astype("datetime64[D]")
    out["reversed_date"] = np.where(reversed_, decision + rng.integers(30, 200, n) * DAY,
                                    np.datetime64("NaT"))
    for column in ("matched_date", "placed_date", "adoption_order_date"):
        out.loc[reversed_, column] = pd.NaT
    order = out.placement_order_date.to_numpy().astype("datetime64[D]")
    reversed_on = out.reversed_date.to_numpy().astype("datetime64[D]")
    out.loc[reversed_ & (order >= reversed_on), "placement_order_date"] = pd.NaT
    out["ffa"] = adopt & (rng.random(len(case_codes)) < cfg["fostering_for_adoption"])[case_of]
    out["together"] = together & adopt
    out["adoption_placement"] = np.where(adopt, rng.choice(ADOPTION_PLACEMENTS, n), "")
    return out


def match_households(rng, adoption_route: pd.DataFrame, persons: pd.DataFrame,
                     calendar: Calendar, geography: Geography, config: dict,
                     names: NamePools) -> Adoptions:
    """Match each child (or sibling set placed together) to an adopter household."""
    cfg = config["adoption"]
    matched = adoption_route[adoption_route.matched_date.notna()].copy()
    set_key = np.where(matched.together.to_numpy(), -1 - matched.case_id.to_numpy(),
                       matched.person_id.to_numpy())
    matched["set_key"] = set_key
    all_sets = matched.sort_values(["matched_date", "set_key"]).drop_duplicates("set_key")
    owner = _adopting_sets(rng, all_sets, cfg["adopt_again"])
    is_first = owner == np.arange(len(all_sets))
    sets = all_sets[is_first]  # each of these sets founds a household; the others join one
    n_matched = len(sets)
    n_waiting = round(n_matched * cfg["unmatched_households"])
    n = n_matched + n_waiting

    child_eth = persons.set_index("person_id").ethnicity
    households = pd.DataFrame({"household_id": np.arange(1, n + 1)})
    households["composition"] = weighted_choice(rng, cfg["household_weights"], n)
    first_match = np.r_[sets.matched_date.to_numpy().astype("datetime64[D]"),
                        calendar.end - rng.integers(0, 365 * calendar.years, n_waiting) * DAY]
    households["date_registration"] = first_match - rng.integers(300, 600, n) * DAY
    households["date_approved"] = (households.date_registration.to_numpy()
                                   + rng.integers(120, 240, n) * DAY)
    child_la = np.r_[sets.la_index.to_numpy(), rng.integers(0, geography.n_las, n_waiting)]
    households["agency_row"] = _household_agency(rng, child_la, geography, cfg)
    agency_la = geography.agencies.la_index.to_numpy()[households.agency_row.to_numpy()]
    home_la = np.where(agency_la >= 0, agency_la, child_la)
    households["la_index"] = home_la
    households["postcode"] = geography.random_postcodes(rng, home_la)
    households["surname"] = names.surnames_for(rng, n)
    couple = ~households.composition.isin(SINGLE).to_numpy()
    married = rng.random(n) < cfg["couple_married"]
    same_sex = households.composition.isin(["FF", "MM"]).to_numpy()
    households["relationship_status"] = np.where(
        ~couple, "Single",
        np.where(married, np.where(same_sex & (rng.random(n) < 0.3), "Civil partnership",
                                   "Married"), "Cohabiting"))
    eth_of_set = np.r_[sets.person_id.map(child_eth).to_numpy(),
                       weighted_choice(rng, cfg["adopter_ethnicity_weights"], n_waiting)]
    adopters = _adopters(rng, households, eth_of_set, first_match, persons, cfg)

    household_of_set = (np.cumsum(is_first) - 1)[owner] + 1
    again = ~is_first
    _second_approvals(rng, households, household_of_set[again] - 1,
                      all_sets[again], geography, cfg)
    placements = matched[["person_id", "set_key", "matched_date", "placed_date",
                          "adoption_order_date", "together"]].merge(
        pd.DataFrame({"set_key": all_sets.set_key.to_numpy(),
                      "household_id": household_of_set,
                      "approval": np.where(again, 2, 1)}),
        on="set_key")
    children_per_set = placements.groupby("household_id").size()
    placed_per_set = placements[placements.placed_date.notna()].groupby("household_id").size()
    households["children_matched"] = households.household_id.map(children_per_set).fillna(0)
    households["children_placed"] = households.household_id.map(placed_per_set).fillna(0)
    households[["children_matched", "children_placed"]] = households[
        ["children_matched", "children_placed"]].astype(int)
    return Adoptions(households, adopters, placements.drop(columns="set_key"))


def _adopting_sets(rng, sets: pd.DataFrame, cfg: dict) -> np.ndarray:
    """For each matched set (in match order), the set whose adopters take it: itself, or an
    earlier set whose household adopts again, ``cfg["years"]`` after its adoption order.

    Each household adopts again at most once; a set that finds no household ready (early in
    the window, or in a small world) founds a household of its own.
    """
    n = len(sets)
    owner = np.arange(n)
    matched = sets.matched_date.to_numpy().astype("datetime64[D]")
    order = sets.adoption_order_date.to_numpy().astype("datetime64[D]")
    wants = rng.random(n) < cfg["share"]
    years = rng.uniform(cfg["years"]["min"], cfg["years"]["max"], n)
    first = np.flatnonzero(~wants & ~np.isnat(order))
    if not len(first):
        return owner
    by_order = first[np.argsort(order[first], kind="stable")]
    # the first household whose adoption order is at most the drawn gap before this match
    target = matched - np.round(years * 365.25).astype(int) * DAY
    pick = np.minimum(np.searchsorted(order[by_order], target), len(by_order) - 1)
    candidate = by_order[pick]
    waited = (matched - order[candidate]).astype(int)
    fits = wants & (waited >= round(cfg["years"]["min"] * 365.25)) & (
        waited <= round(cfg["years"]["max"] * 365.25))
    rows = np.flatnonzero(fits)
    _, earliest = np.unique(candidate[rows], return_index=True)  # sets are in match order
    owner[rows[earliest]] = candidate[rows[earliest]]
    return owner


def _second_approvals(rng, households: pd.DataFrame, rows: np.ndarray, sets: pd.DataFrame,
                      geography: Geography, cfg: dict) -> None:
    """The later approval of households that adopt again: its agency (the same one, or another
    chosen as for a new household) and its registration and approval dates, before the match."""
    n = len(rows)
    matched = sets.matched_date.to_numpy().astype("datetime64[D]")
    same = rng.random(n) < cfg["adopt_again"]["same_agency"]
    first = households.agency_row.to_numpy()[rows]
    other = _household_agency(rng, sets.la_index.to_numpy(), geography, cfg)
    # another agency is never the first one: step on to one of the others at random
    n_agencies = len(geography.agencies)
    step = 1 + rng.integers(0, max(n_agencies - 1, 1), n)
    other = np.where(other == first, (first + step) % n_agencies, other)
    registration = matched - rng.integers(200, 336, n) * DAY
    approved = registration + rng.integers(90, 151, n) * DAY
    size = len(households)
    households["approvals"] = np.bincount(rows, minlength=size) + 1
    agency = np.full(size, -1)
    agency[rows] = np.where(same, first, other)
    households["again_agency_row"] = agency
    for column, dates in (("again_date_registration", registration),
                          ("again_date_approved", approved)):
        values = np.full(size, np.datetime64("NaT"), dtype="datetime64[D]")
        values[rows] = dates
        households[column] = values


def _household_agency(rng, child_la: np.ndarray, geography: Geography, cfg: dict) -> np.ndarray:
    """The agency that approved the household: the child's own, a voluntary one, or another."""
    kind = weighted_choice(rng, cfg["agency_shares"], len(child_la))
    agencies = geography.agencies
    voluntary = np.flatnonzero(agencies.kind == "voluntary")
    statutory = np.flatnonzero(agencies.kind != "voluntary")
    own = geography.la_agency[child_la]
    return np.select(
        [kind == "own", kind == "voluntary"],
        [own, rng.choice(voluntary, len(child_la))],
        rng.choice(statutory, len(child_la)),
    )


def _adopters(rng, households: pd.DataFrame, child_ethnicity: np.ndarray,
              first_match: np.ndarray, persons: pd.DataFrame, cfg: dict) -> pd.DataFrame:
    """One or two adopters per household, each a person with a DOB, gender and ethnicity."""
    composition = households.composition.to_numpy()
    size = np.where(np.isin(composition, SINGLE), 1, 2)
    row = np.repeat(np.arange(len(households)), size)
    number = rank_within(row) + 1
    n = len(row)
    letters = pd.Series(composition[row])
    gender = np.where(number == 1, letters.str[0], letters.str[-1])
    first_eth = np.where(rng.random(len(households)) < cfg["adopter_same_ethnicity_as_child"],
                         child_ethnicity,
                         weighted_choice(rng, cfg["adopter_ethnicity_weights"], len(households)))
    other_eth = weighted_choice(rng, cfg["adopter_ethnicity_weights"], n)
    same = (number == 1) | (rng.random(n) < cfg["adopters_same_ethnicity"])
    ethnicity = np.where(same, first_eth[row], other_eth)
    age_days = rng.uniform(28, 52, n) * 365.25
    dob = first_match[row] - np.round(age_days).astype(int) * DAY
    same_sex = np.isin(composition[row], ["FF", "MM"])
    orientation = np.where(same_sex, np.where(rng.random(n) < 0.85, "Gay or lesbian", "Bisexual"),
                           np.where(rng.random(n) < 0.95, "Heterosexual", "Not stated"))
    # a household that adopted before the simulated years says so at every approval
    adopted_before = rng.random(len(households)) < cfg["adopt_again"]["before_window"]
    first_id = int(persons.person_id.max()) + 1
    return pd.DataFrame({
        "person_id": np.arange(first_id, first_id + n),
        "household_id": households.household_id.to_numpy()[row],
        "adopter_number": number,
        "dob": dob,
        "sex": gender,
        "ethnicity": ethnicity,
        "religion": rng.choice(RELIGIONS, n, p=RELIGION_WEIGHTS / RELIGION_WEIGHTS.sum()),
        "sexual_orientation": orientation,
        "adopted_before": adopted_before[row],
    })
