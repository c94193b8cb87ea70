"""ASG (adoption and special guardianship) child and adopter files, one pair per agency.

The columns are the project convention of DOMAIN.md section 5. Ids are agency-local; there is no
child-adopter reference and no sibling reference: deriving those is the toolkit's job.
"""

from pathlib import Path

import numpy as np
import pandas as pd

from synthetic.adoption import Adoptions
from synthetic.calendar import Calendar, dates_for, format_dates
from synthetic.errors import recorded_dob, recorded_sex
from synthetic.formats.files import write_csv
from synthetic.geography import Geography
from synthetic.reference import ASG_GENDER
from synthetic.social_care import SocialCare, dates_of

CHILD_COLUMNS = [
    "agency_code", "child_id", "la_code", "dob", "gender", "ethnicity", "disability",
    "date_entered_care", "date_should_be_placed", "date_placement_order", "date_matched",
    "date_placed", "date_adoption_order", "sibling_group", "siblings_placed_together",
    "siblings_placed_separately", "date_left_process", "reason_left",
]
ADOPTER_COLUMNS = [
    "agency_code", "adopter_id", "household_ref", "adopter_number", "dob", "gender", "ethnicity",
    "religion", "sexual_orientation", "relationship_status", "previously_adopted",
    "date_registration", "date_approved", "date_matched", "date_placed", "children_matched",
    "children_placed", "date_left", "reason_left",
]
ISO = "%Y-%m-%d"


def write_asg(rng, out: Path, care: SocialCare, adoptions: Adoptions, persons: pd.DataFrame,
              multiplier: pd.Series, calendar: Calendar, geography: Geography,
              error_cfg: dict) -> pd.DataFrame:
    """Write each agency's asg_children.csv and asg_adopters.csv; return their truth rows."""
    children = _children(rng, care, adoptions, persons, multiplier, calendar, geography,
                         error_cfg)
    adopters = _adopters(rng, adoptions, persons, multiplier, calendar, geography, error_cfg)
    truth = []
    for row, agency in geography.agencies.iterrows():
        folder = f"providers/{agency.folder}/asg"
        for name, frame, columns, id_column in (
            ("asg_children.csv", children, CHILD_COLUMNS, "child_id"),
            ("asg_adopters.csv", adopters, ADOPTER_COLUMNS, "adopter_id"),
        ):
            mine = frame[frame.agency_row == row]
            write_csv(mine[columns], out / folder / name)
            truth.append(pd.DataFrame({
                "source": "asg_children" if id_column == "child_id" else "asg_adopters",
                "provider": agency.agency_code, "period": _file_period(mine[columns]),
                "file": f"{folder}/{name}", "row": np.arange(2, len(mine) + 2),
                "record_id": mine[id_column].to_numpy(), "person_id": mine.person_id.to_numpy(),
                "dob_error": mine.dob_error.to_numpy(), "sex_error": mine.sex_error.to_numpy()}))
    return pd.concat(truth, ignore_index=True)


def _recorded(rng, frame, persons, multiplier, calendar, cfg):
    people = persons.set_index("person_id").loc[frame.person_id.to_numpy()]
    m = multiplier.reindex(frame.person_id).to_numpy()
    dob, dob_error = recorded_dob(rng, people.dob.to_numpy().astype("datetime64[D]"), m, cfg,
                                  calendar.start)
    sex, sex_error = recorded_sex(rng, people.sex.to_numpy(), m, cfg)
    return frame.assign(dob=format_dates(dob, ISO), dob_error=dob_error,
                        gender=pd.Series(sex).map(ASG_GENDER).to_numpy(), sex_error=sex_error,
                        ethnicity=people.ethnicity.to_numpy())


def _children(rng, care, adoptions, persons, multiplier, calendar, geography,
              cfg) -> pd.DataFrame:
    route = care.adoption_route.sort_values(["decision_date", "person_id"], ignore_index=True)
    route["agency_row"] = geography.la_agency[route.la_index.to_numpy()]
    route = _recorded(rng, route, persons, multiplier, calendar, cfg)
    route["agency_code"] = geography.agencies.agency_code.to_numpy()[route.agency_row]
    route["child_id"] = _local_ids("AC", route.agency_row.to_numpy())
    route["la_code"] = [f"{c:03d}" for c in geography.la_codes[route.la_index.to_numpy()]]
    route["disability"] = np.where(rng.random(len(route)) < 0.08, "Y", "N")
    for column, source in (("date_entered_care", "start"),
                           ("date_should_be_placed", "decision_date"),
                           ("date_placement_order", "placement_order_date"),
                           ("date_matched", "matched_date"), ("date_placed", "placed_date"),
                           ("date_adoption_order", "adoption_order_date")):
        route[column] = format_dates(dates_of(route, source), ISO)

    # siblings: the other children of the same referral who are also on the adoption pathway
    household = route.person_id.map(adoptions.placements.set_index("person_id").household_id)
    route["household_id"] = household.to_numpy()
    group_size = route.groupby("case_id").person_id.transform("size").to_numpy()
    is_placed = ~np.isnat(dates_of(route, "placed_date"))
    placed_in_group = pd.Series(is_placed).groupby(route.case_id.to_numpy()).transform("sum")
    placed_with = route.groupby(["case_id", "household_id"]).placed_date.transform("count")
    placed_with = placed_with.reindex(route.index).fillna(0).to_numpy().astype(int)
    # siblings placed in the child's household, and in another household (the child excluded)
    together = placed_with - is_placed
    separately = placed_in_group.to_numpy() - placed_with
    route["sibling_group"] = np.where(group_size > 1, "Y", "N")
    route["siblings_placed_together"] = np.where(group_size > 1, together.astype(str), "")
    route["siblings_placed_separately"] = np.where(group_size > 1, separately.astype(str), "")
    left = np.where(~np.isnat(dates_of(route, "reversed_date")), dates_of(route, "reversed_date"),
                    dates_of(route, "adoption_order_date"))
    route["date_left_process"] = format_dates(left, ISO)
    route["reason_left"] = np.select(
        [~np.isnat(dates_of(route, "reversed_date")),
         ~np.isnat(dates_of(route, "adoption_order_date"))],
        ["Decision reversed", "Adoption order granted"], "")
    return route


def approvals(households: pd.DataFrame) -> pd.DataFrame:
    """One row per approval of a household: its first, and the later one of a household that
    adopts again (its own agency and dates), numbered ``approval`` 1 and 2."""
    again = households[households.approvals > 1]
    later = again.assign(agency_row=again.again_agency_row,
                         date_registration=again.again_date_registration,
                         date_approved=again.again_date_approved)
    both = pd.concat([households.assign(approval=1), later.assign(approval=2)],
                     ignore_index=True)
    return both.drop(columns=["again_agency_row", "again_date_registration",
                              "again_date_approved", "children_matched", "children_placed"])


def _adopters(rng, adoptions: Adoptions, persons, multiplier, calendar, geography, cfg):
    households = approvals(adoptions.households)
    known = dates_of(households, "date_registration") <= calendar.end
    households = households[known]
    adopters = adoptions.adopters.merge(households, on="household_id")
    adopters = adopters.sort_values(["agency_row", "date_registration", "household_id",
                                     "approval", "adopter_number"], ignore_index=True)
    adopters = _recorded(rng, adopters, persons, multiplier, calendar, cfg)
    adopters["agency_code"] = geography.agencies.agency_code.to_numpy()[adopters.agency_row]
    adopters["adopter_id"] = _local_ids("AD", adopters.agency_row.to_numpy())
    first_of_household = adopters.adopter_number.to_numpy() == 1
    adopters["household_ref"] = _household_refs(adopters.agency_row.to_numpy(),
                                                first_of_household)
    adopters["adopter_number"] = adopters.adopter_number.astype(str)
    # adopters who adopted before the simulated years, and every later approval
    adopters["previously_adopted"] = np.where(
        adopters.adopted_before | (adopters.approval > 1), "Y", "N")
    placements = adoptions.placements.groupby(["household_id", "approval"]).agg(
        matched=("matched_date", "min"), placed=("placed_date", "min"),
        order=("adoption_order_date", "min"), children=("person_id", "size"),
        children_placed=("placed_date", "count"))
    placements.index = placements.index.map(lambda key: f"{key[0]}:{key[1]}")
    approval = adopters.household_id.astype(str) + ":" + adopters.approval.astype(str)
    counts = placements[["children", "children_placed"]].reindex(approval).fillna(0)
    adopters["children_matched"] = counts.children.astype(int).to_numpy()
    adopters["children_placed"] = counts.children_placed.astype(int).to_numpy()
    for column, source in (("date_registration", None), ("date_approved", None),
                           ("date_matched", "matched"), ("date_placed", "placed"),
                           ("date_left", "order")):
        d = (dates_of(adopters, column) if source is None
             else dates_for(approval, placements[source]))
        if source in ("matched", "placed"):
            d = _shifted(rng, d, cfg)
        d = np.where(~np.isnat(d) & (d <= calendar.end), d, np.datetime64("NaT"))
        adopters[column] = format_dates(d, ISO)
    adopters["children_matched"] = adopters.children_matched.astype(str)
    adopters["children_placed"] = adopters.children_placed.astype(str)
    adopters["reason_left"] = np.where(adopters.date_left != "", "Adoption order granted", "")
    return adopters


def _file_period(rows: pd.DataFrame) -> int:
    """An ASG file names no year: by the project convention (docs/providers.md) its period is
    the collection year, ending 31 March, of the latest date it holds."""
    dates = pd.concat([pd.to_datetime(rows[c], errors="coerce") for c in rows
                       if c.startswith("date_")], ignore_index=True).dropna()
    if dates.empty:
        return 0
    latest = dates.max()
    return latest.year + (1 if latest.month >= 4 else 0)


def _shifted(rng, dates: np.ndarray, cfg: dict) -> np.ndarray:
    """Some adopters' dates recorded a few days off the child's: agencies record them apart."""
    shift = rng.integers(1, cfg["adopter_date_shift_days"] + 1, len(dates))
    shift = np.where(rng.random(len(dates)) < 0.5, -shift, shift)
    wrong = rng.random(len(dates)) < cfg["adopter_date_shift"]
    return np.where(wrong, dates + shift.astype("timedelta64[D]"), dates)


def _local_ids(prefix: str, agency_row: np.ndarray) -> np.ndarray:
    """Agency-local ids, numbered in file order within each agency."""
    order = pd.Series(agency_row).groupby(agency_row).cumcount().to_numpy() + 1
    return np.array([f"{prefix}{agency:02d}{n:05d}" for agency, n in
                     zip(agency_row, order, strict=True)], dtype=object)


def _household_refs(agency_row: np.ndarray, first_of_household: np.ndarray) -> np.ndarray:
    number = pd.Series(first_of_household.astype(int)).groupby(agency_row).cumsum().to_numpy()
    return np.array([f"H{n:05d}" for n in number], dtype=object)
