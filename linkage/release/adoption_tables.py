"""The adoption tables: children against their adopters' ethnic groups, sibling groups placed
together or apart, time from entering care to each adoption milestone, and children waiting
against adopters waiting. Counts only: no adopter row leaves the extract through them."""

import pandas as pd

from linkage.config import load_config
from linkage.release.cohorts import year_bounds
from linkage.release.disclosure import Protected, protect
from linkage.release.ethnic_groups import EthnicGroups, grid
from linkage.release.tables import CHILD_ROWS, Released, TableInputs, band_labels

ONE_SAME, ONE_DIFFERENT = "One adopter, same group as child", "One adopter, different group"
BOTH_SAME = "Two adopters, both same group as child"
BOTH_DIFFERENT = "Two adopters, both of another group than child"
ADOPTERS_DIFFER = "Two adopters, different groups from each other"
NOT_KNOWN = "Ethnicity of child or an adopter not recorded"
SIBLINGS_DIFFER = "Siblings in different ethnic groups"
PLACEMENTS = ["Placed for adoption together", "Placed for adoption apart",
              "Not placed for adoption"]
DAYS_PER_MONTH = 365.25 / 12


def _dates(frame: pd.DataFrame, *columns: str) -> pd.DataFrame:
    out = frame.copy()
    for column in columns:
        out[column] = pd.to_datetime(out.get(column, pd.NaT), errors="coerce")
    return out


def _household_groups(inputs: TableInputs, groups: EthnicGroups) -> pd.DataFrame:
    """Per household: number of adopters, their distinct labels, one label, all known."""
    adopters = inputs.households.assign(
        label=groups.labels(inputs.households.person_key.map(inputs.ethnicity)),
        known=groups.known(inputs.households.person_key.map(inputs.ethnicity)))
    return adopters.groupby("household_key").agg(
        adopters=("person_key", "size"), labels=("label", "nunique"), label=("label", "min"),
        known=("known", "all"))


def adoption_ethnicity(inputs: TableInputs, groups: EthnicGroups) -> pd.DataFrame:
    """Cohort children linked to adopters, by their ethnic group and how their adopters'
    groups compare: one adopter (same or different), two alike (both the child's group, or
    both another), or two who differ from each other. A household keeps each adopter's own
    group: it is never forced into one value."""
    links = inputs.links[inputs.links.child_person_key.isin(inputs.members)]
    codes = links.child_person_key.map(inputs.ethnicity)
    child = groups.labels(codes)
    house = _household_groups(inputs, groups).reindex(links.household_key)
    house.index = links.index
    same = house.label.eq(child)
    relation = pd.Series(NOT_KNOWN, index=links.index)
    relation[house.adopters.eq(1) & same] = ONE_SAME
    relation[house.adopters.eq(1) & ~same] = ONE_DIFFERENT
    relation[house.adopters.eq(2) & house.labels.eq(1) & same] = BOTH_SAME
    relation[house.adopters.eq(2) & house.labels.eq(1) & ~same] = BOTH_DIFFERENT
    relation[house.adopters.eq(2) & house.labels.gt(1)] = ADOPTERS_DIFFER
    unknown = ~groups.known(codes) | ~house.known.fillna(False).astype(bool)
    relation[unknown] = NOT_KNOWN
    return grid(child, relation, groups.order, [ONE_SAME, ONE_DIFFERENT, BOTH_SAME,
                                                BOTH_DIFFERENT, ADOPTERS_DIFFER, NOT_KNOWN],
                CHILD_ROWS)


def sibling_placements(inputs: TableInputs, groups: EthnicGroups) -> pd.DataFrame:
    """Sibling groups with a member in the cohort, by the group's ethnic make-up (the shared
    group when every member has it, else one row for groups whose members differ) and
    whether they were placed for adoption together (all in one household), apart, or not."""
    members = inputs.sibling_groups
    household = members.person_key.map(
        inputs.links.groupby("child_person_key").household_key.min())
    members = members.assign(label=groups.labels(members.person_key.map(inputs.ethnicity)),
                             household=household)
    summary = members.groupby("sibling_group_key").agg(
        labels=("label", "nunique"), label=("label", "min"), placed=("household", "count"),
        households=("household", "nunique"), size=("person_key", "size"))
    make_up = summary.label.where(summary.labels.eq(1), SIBLINGS_DIFFER)
    placement = pd.Series(PLACEMENTS[2], index=summary.index)
    placement[summary.placed > 0] = PLACEMENTS[1]
    placement[summary.placed.eq(summary["size"]) & summary.households.eq(1)] = PLACEMENTS[0]
    return grid(make_up, placement, [*groups.order, SIBLINGS_DIFFER], PLACEMENTS,
                "Ethnic make-up of the sibling group")


MILESTONES = {"placement_order": "placement order", "match": "matched with adopters",
              "placement": "placed for adoption"}


def milestone_dates(inputs: TableInputs) -> pd.DataFrame:
    """Per person: the date of each adoption milestone, from the SSDA903 return (first
    placement-order episode, AD1 DATE_MATCH, PlacedAdoption DATE_PLACED: the earliest its
    records give) and, where it holds none, the ASG children's earliest dates (the LA's
    statutory return first: the agency's dates fill its gaps)."""
    config = load_config("tables.yaml")
    episodes = inputs.episodes
    order = episodes[episodes.get("LS", pd.Series("", index=episodes.index)).isin(
        config["placement_order_ls"])]
    asg = _dates(inputs.asg_children, "date_placement_order", "date_matched", "date_placed")
    sources = {
        "placement_order": [order.groupby("person_key").DECOM.min(),
                            asg.groupby("person_key").date_placement_order.min()],
        "match": [_dates(inputs.ad1, "DATE_MATCH").groupby("person_key").DATE_MATCH.min(),
                  asg.groupby("person_key").date_matched.min()],
        "placement": [_dates(inputs.placed_adoption, "DATE_PLACED").groupby("person_key")
                      .DATE_PLACED.min(), asg.groupby("person_key").date_placed.min()],
    }
    return pd.DataFrame({name: first.combine_first(second)
                         for name, (first, second) in sources.items()})


def entered_care(inputs: TableInputs, dates: pd.Series) -> pd.Series:
    """Per person of ``dates``: the start of the period of care the date falls in (the latest
    care-starting episode on or before it), else the ASG record's date entered care."""
    config = load_config("tables.yaml")
    episodes = inputs.episodes
    starts = episodes[episodes.get("RNE", pd.Series("", index=episodes.index)).isin(
        config["care_start_rne"])][["person_key", "DECOM"]].dropna().sort_values("DECOM")
    wanted = dates.dropna().rename("date").rename_axis("person_key").reset_index()
    # merge_asof wants one type on both sides: dates of one resolution (files parse to ns or
    # us), keys as text (an empty index has no string type of its own)
    wanted["date"] = wanted.date.astype("datetime64[ns]")
    starts["DECOM"] = starts.DECOM.astype("datetime64[ns]")
    wanted["person_key"] = wanted.person_key.astype("string")
    starts["person_key"] = starts.person_key.astype("string")
    found = pd.merge_asof(wanted.sort_values("date"), starts, left_on="date",
                          right_on="DECOM", by="person_key", direction="backward")
    entry = found.set_index("person_key").DECOM
    asg = _dates(inputs.asg_children, "date_entered_care").groupby(
        "person_key").date_entered_care.min()
    return entry.combine_first(asg.reindex(entry.index))


def time_to(milestone: str):
    """A table builder: cohort children who reached ``milestone`` in the year, by ethnic group
    and months from entering care (bands of configs/tables.yaml)."""
    def build(inputs: TableInputs, groups: EthnicGroups) -> pd.DataFrame:
        low, high = year_bounds(inputs.period)
        dates = milestone_dates(inputs)[milestone]
        dates = dates[dates.between(low, high) & dates.index.isin(inputs.members)]
        entry = entered_care(inputs, dates).reindex(dates.index)
        months = ((dates - entry).dt.days / DAYS_PER_MONTH).dropna()
        months = months[months >= 0]  # an entry after the milestone is a recording error
        bands = band_labels(months.astype(int), load_config("tables.yaml")["month_bands"],
                            "months")
        return grid(groups.labels(months.index.to_series().map(inputs.ethnicity)), bands,
                    groups.order, bands.cat.categories.tolist(), CHILD_ROWS)
    build.__name__ = f"time_to_{milestone}"
    return build


WAITING_CHILDREN, WAITING_ADOPTERS = "Children waiting", "Adopter households waiting"


def waiting_children(inputs: TableInputs) -> pd.Index:
    """Cohort children looked after on 31 March with a decision that they should be placed
    for adoption (ASG) or a placement order, and not matched (by any record) between entering
    their current period of care and 31 March: a match in an earlier period of care, before
    a return home and re-entry, does not end this wait."""
    config = load_config("tables.yaml")
    _, end = year_bounds(inputs.period)
    episodes = inputs.episodes
    open_then = episodes[episodes.DECOM.le(end) & (episodes.DEC.isna() | episodes.DEC.gt(end))]
    in_care = set(open_then.person_key) & inputs.members
    ordered = set(open_then.person_key[open_then.get(
        "LS", pd.Series("", index=open_then.index)).isin(config["placement_order_ls"])])
    asg = _dates(inputs.asg_children, "date_should_be_placed", "date_left_process")
    decided = asg[(asg.date_should_be_placed <= end)
                  & (asg.date_left_process.isna() | (asg.date_left_process > end))]
    candidates = pd.Index(sorted(in_care & (ordered | set(decided.person_key))),
                          name="person_key")
    entry = entered_care(inputs, pd.Series(end, index=candidates)).rename("entry")
    matches = _match_dates(inputs).merge(entry, left_on="person_key", right_index=True,
                                         how="inner")
    ended = matches.date.le(end) & (matches.entry.isna() | matches.date.ge(matches.entry))
    return candidates.difference(pd.Index(matches.person_key[ended]))


def _match_dates(inputs: TableInputs) -> pd.DataFrame:
    """Every match date any record gives (AD1 DATE_MATCH, ASG date_matched): person, date."""
    ad1 = _dates(inputs.ad1, "DATE_MATCH")
    asg = _dates(inputs.asg_children, "date_matched")
    return pd.concat([pd.DataFrame({"person_key": ad1.person_key, "date": ad1.DATE_MATCH}),
                      pd.DataFrame({"person_key": asg.person_key, "date": asg.date_matched})],
                     ignore_index=True).dropna()


def waiting_households(inputs: TableInputs) -> pd.Index:
    """Adopter households approved by 31 March and neither matched nor left between their
    latest approval and 31 March (a household that adopted before and was approved again
    waits again). Every household the ASG adopters' records hold counts: they are counted,
    never released."""
    _, end = year_bounds(inputs.period)
    rows = _dates(inputs.asg_adopters, "date_approved", "date_matched", "date_left")
    rows = rows.merge(inputs.households[["household_key", "person_key"]], on="person_key")
    approved = rows[rows.date_approved <= end].groupby("household_key").date_approved.max()
    rows = rows.merge(approved.rename("approved"), left_on="household_key", right_index=True,
                      how="left")
    since = rows.approved.notna()
    ended = since & (rows.date_matched.between(rows.approved, end)
                     | rows.date_left.between(rows.approved, end))
    finished = set(rows.household_key[ended])
    return pd.Index(sorted(set(approved.index) - finished), name="household_key")


def waiting(inputs: TableInputs, rules: dict, national: bool) -> Released:
    """Children waiting against adopter households waiting, by ethnic group (a household of
    two adopters in different groups is its own row). Each column is protected on its own
    (a row total of children and households would mean nothing), by the major groups: the
    households waiting are too few for detailed groups."""
    groups = EthnicGroups.load(False)
    children = waiting_children(inputs)
    child_rows = groups.labels(children.to_series().map(inputs.ethnicity))
    house = _household_groups(inputs, groups).reindex(waiting_households(inputs))
    house_rows = house.label.where(house.labels.eq(1), ADOPTERS_DIFFER)
    order = [*groups.order, ADOPTERS_DIFFER]
    columns = {WAITING_CHILDREN: child_rows, WAITING_ADOPTERS: house_rows}
    parts = [protect(grid(rows, pd.Series(name, index=rows.index), order, [name],
                          "Ethnic group"), rules, national)
             for name, rows in columns.items()]
    return Released(_side_by_side(parts, list(columns)), groups.level)


def _side_by_side(parts: list[Protected], names: list[str]) -> Protected:
    """One-column protected tables joined as columns of one table (their totals kept)."""
    table = pd.concat([p.table[[name]] for p, name in zip(parts, names, strict=True)], axis=1)
    counts = pd.concat([p.counts[[name]] for p, name in zip(parts, names, strict=True)],
                       axis=1)
    hidden = pd.concat([pd.DataFrame(p.hidden[:, :1], index=p.table.index)
                        for p in parts], axis=1).to_numpy()
    actions = {name: p.actions for p, name in zip(parts, names, strict=True)}
    table.index.name = parts[0].table.index.name
    return Protected(table, actions, counts, hidden)
