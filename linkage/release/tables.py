"""The summary tables an extract carries, as counts before disclosure control.

Ethnicity is shown by major group (DOMAIN.md section 2) so that tables are not mostly
suppressed cells. A two-adopter household whose adopters' groups differ is its own column:
its ethnicity is never forced into one value.
"""

import pandas as pd

from linkage.release.cohorts import year_bounds

MAJOR_GROUPS = {"W": "White", "M": "Mixed", "A": "Asian", "B": "Black", "C": "Other",
                "O": "Other"}
ROUTES = {"E11": "adoption", "E12": "adoption", "E41": "child arrangements order",
          "E43": "special guardianship order", "E44": "special guardianship order",
          "E45": "special guardianship order", "E46": "special guardianship order",
          "E47": "special guardianship order", "E48": "special guardianship order",
          "E4A": "returned home", "E4B": "returned home"}
NOT_AN_EXIT = {"", "X1", "E3"}  # an episode followed by another, or a move to another LA


def major_group(ethnicity: pd.Series) -> pd.Series:
    """WBRI -> White, and so on; refused, not obtained and blank -> Unknown."""
    codes = ethnicity.fillna("").astype(str).str.upper()
    group = codes.str[:1].map(MAJOR_GROUPS).fillna("Unknown")
    return group.where(~codes.isin(["REFU", "NOBT", ""]), "Unknown")


def _grid(rows: pd.Series, columns: pd.Series, column_order: list[str]) -> pd.DataFrame:
    grid = pd.crosstab(rows, columns)
    grid = grid.reindex(columns=column_order, fill_value=0)
    grid.index.name, grid.columns.name = None, None
    return grid


def adoption_ethnicity(links: pd.DataFrame, households: pd.DataFrame,
                       ethnicity: pd.Series) -> pd.DataFrame:
    """Children adopted, by their ethnic group and their adopters' groups: same as the child,
    different, or a two-adopter household whose adopters differ."""
    adopters = households.assign(group=major_group(households.person_key.map(ethnicity)))
    groups = adopters.groupby("household_key").group.agg(lambda g: frozenset(g))
    child_group = major_group(links.child_person_key.map(ethnicity))
    theirs = links.household_key.map(groups)

    def relation(child: str, adopters) -> str:
        if not isinstance(adopters, frozenset) or not adopters:
            return "adopters unknown"
        if len(adopters) > 1:
            return "adopters differ from each other"
        return "same as child" if child in adopters else "different from child"

    relations = pd.Series([relation(c, a) for c, a in zip(child_group, theirs, strict=True)],
                          index=links.index)
    return _grid(child_group, relations, ["same as child", "different from child",
                                          "adopters differ from each other",
                                          "adopters unknown"])


def sibling_placements(groups: pd.DataFrame, links: pd.DataFrame,
                       ethnicity: pd.Series) -> pd.DataFrame:
    """Sibling groups by whether all members share an ethnic group, and whether they were
    placed for adoption together, apart, or not at all."""
    household = groups.person_key.map(links.groupby("child_person_key").household_key.first())
    members = groups.assign(group=major_group(groups.person_key.map(ethnicity)),
                            household=household)
    summary = members.groupby("sibling_group_key").agg(
        groups=("group", "nunique"), placed=("household", "count"),
        households=("household", "nunique"), size=("person_key", "size"))
    shared = summary.groups.eq(1).map({True: "share an ethnic group",
                                       False: "ethnic groups differ"})
    placement = pd.Series("not placed for adoption", index=summary.index)
    placement[summary.placed > 0] = "placed apart"
    placement[(summary.placed == summary["size"]) & (summary.households == 1)] = (
        "placed together")
    return _grid(shared, placement, ["placed together", "placed apart",
                                     "not placed for adoption"])


def routes_out_of_care(episodes: pd.DataFrame, period: int, ethnicity: pd.Series
                       ) -> pd.DataFrame:
    """Children who left care in the year, by ethnic group and route (their last exit)."""
    low, high = year_bounds(period)
    exits = episodes[episodes.DEC.between(low, high)
                     & ~episodes.REC.fillna("").isin(NOT_AN_EXIT)]
    last = exits.sort_values(["person_key", "DEC"]).groupby("person_key").tail(1)
    route = last.REC.map(ROUTES).fillna("other")
    return _grid(major_group(last.person_key.map(ethnicity)), route,
                 ["adoption", "special guardianship order", "child arrangements order",
                  "returned home", "other"])
