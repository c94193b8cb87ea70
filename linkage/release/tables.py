"""The summary tables an extract carries: the ones the looked-after children data strategy asks
for, each by the child's ethnic group (detailed where counts allow, else GSS major groups),
counted on linked persons and passed through disclosure control.

This module holds what the tables are counted from, the care tables (routes out of care,
placement moves) and :func:`strategy_tables`, which builds, protects and names them all; the
adoption tables are in :mod:`linkage.release.adoption_tables`.
"""

from dataclasses import dataclass

import numpy as np
import pandas as pd

from linkage.config import load_config
from linkage.release.cohorts import year_bounds
from linkage.release.disclosure import Protected, percentages
from linkage.release.ethnic_groups import EthnicGroups, by_ethnic_group, grid

CHILD_ROWS = "Ethnic group of the child"


@dataclass
class TableInputs:
    """What the tables are counted from, keyed by the spine's person keys (never released)."""

    members: set            # the cohort's persons
    period: int             # the collection year ending 31 March
    ethnicity: pd.Series    # person_key -> ETHNIC code (the most common over their records)
    episodes: pd.DataFrame  # looked-after episodes, dates parsed (cohorts.care_events)
    links: pd.DataFrame     # child_adopter_link, every child
    households: pd.DataFrame       # adopter_household, every household
    sibling_groups: pd.DataFrame   # sibling_group, groups with a member in the cohort
    ad1: pd.DataFrame              # SSDA903 AD1 rows (DATE_MATCH)
    placed_adoption: pd.DataFrame  # SSDA903 PlacedAdoption rows (DATE_PLACED)
    asg_children: pd.DataFrame     # ASG children's dates
    asg_adopters: pd.DataFrame     # ASG adopters' dates (counts only: no row is released)


@dataclass
class Released:
    """One released table: its protected counts, an optional percentage companion, and the
    ethnic grouping chosen."""

    protected: Protected
    level: str
    percent: bool = False


def routes_out_of_care(inputs: TableInputs, groups: EthnicGroups) -> pd.DataFrame:
    """Children of the cohort who left care in the year, by ethnic group and route (the
    reason their last episode of the year ceased; E4A and E4B apart)."""
    config = load_config("tables.yaml")
    low, high = year_bounds(inputs.period)
    episodes = _of_members(inputs.episodes, inputs)
    rec = episodes.get("REC", pd.Series("", index=episodes.index)).fillna("").astype(str)
    exits = episodes[episodes.DEC.between(low, high) & rec.ne("")
                     & ~rec.isin(config["not_an_exit"])]
    last = exits.sort_values(["person_key", "DEC"]).groupby("person_key").tail(1)
    routes = {code: r["label"] for r in config["routes"] for code in r["codes"]}
    route = last.REC.map(routes).fillna(config["other_route"])
    columns = [*dict.fromkeys(r["label"] for r in config["routes"]), config["other_route"]]
    return grid(groups.labels(last.person_key.map(inputs.ethnicity)), route, groups.order,
                columns, CHILD_ROWS)


def placement_moves(inputs: TableInputs, groups: EthnicGroups) -> pd.DataFrame:
    """Children of the cohort looked after in the year, by ethnic group and number of
    placement changes in the year (episodes starting in it with a placement-change RNE)."""
    config = load_config("tables.yaml")
    low, high = year_bounds(inputs.period)
    episodes = _of_members(inputs.episodes, inputs)
    in_care = episodes[episodes.DECOM.le(high) & (episodes.DEC.isna() | episodes.DEC.ge(low))]
    children = pd.Index(sorted(set(in_care.person_key)), name="person_key")
    rne = episodes.get("RNE", pd.Series("", index=episodes.index)).fillna("")
    moves = episodes[episodes.DECOM.between(low, high) & rne.isin(
        config["placement_change_rne"])].groupby("person_key").size()
    changes = moves.reindex(children, fill_value=0)
    band = band_labels(changes, config["placement_change_bands"], "", one="placement change",
                       many="placement changes")
    return grid(groups.labels(children.to_series().map(inputs.ethnicity)), band, groups.order,
                band.cat.categories.tolist(), CHILD_ROWS)


def band_labels(values: pd.Series, starts: list[int], unit: str, one: str = "",
                many: str = "") -> pd.Series:
    """Values in bands starting at ``starts`` (the last open-ended): a band of one value is
    named by it ("1 placement change"), a wider one by its range ("6 to 11 months")."""
    names = []
    for k, start in enumerate(starts):
        word = (one if start == 1 else many) or unit
        if k == len(starts) - 1:
            names.append(f"{start} {word} or more")
        elif starts[k + 1] - start == 1:
            names.append(f"{start} {word}")
        else:
            names.append(f"{start} to {starts[k + 1] - 1} {word}")
    edges = [*starts, np.inf]
    return pd.cut(values, edges, right=False, labels=names)


def _of_members(frame: pd.DataFrame, inputs: TableInputs) -> pd.DataFrame:
    return frame[frame.person_key.isin(inputs.members)]


def table_builders() -> dict[str, tuple]:
    """Each table counted by ethnic group: name -> (builder, whether a percentage companion
    helps). A builder takes the inputs and an :class:`EthnicGroups` and returns counts."""
    from linkage.release import adoption_tables as adoption

    return {
        "adoption_ethnicity": (adoption.adoption_ethnicity, True),
        "sibling_groups": (adoption.sibling_placements, False),
        "routes_out_of_care": (routes_out_of_care, True),
        "placement_moves": (placement_moves, True),
        **{f"time_to_{name}": (adoption.time_to(name), False) for name in adoption.MILESTONES},
    }


def released_tables(inputs: TableInputs, rules: dict, national: bool = True
                    ) -> dict[str, Released]:
    """Every strategy table, protected (national figures rounded after suppression)."""
    from linkage.release import adoption_tables as adoption

    released = {name: _released(lambda groups, b=build: b(inputs, groups), rules, national,
                                percent)
                for name, (build, percent) in table_builders().items()}
    released["children_and_adopters_waiting"] = adoption.waiting(inputs, rules, national)
    return released


def strategy_tables(inputs: TableInputs, rules: dict, national: bool = True
                    ) -> tuple[dict[str, pd.DataFrame], dict[str, dict]]:
    """Every strategy table as ``tables/<name>.csv`` frames (and ``_percent`` companions),
    and, per table, what disclosure control did (for the manifest)."""
    return _frames(released_tables(inputs, rules, national), rules)


def _released(build, rules: dict, national: bool, percent: bool) -> Released:
    _, protected, level = by_ethnic_group(build, rules, national)
    return Released(protected, level, percent)


def _frames(released: dict[str, Released], rules: dict
            ) -> tuple[dict[str, pd.DataFrame], dict[str, dict]]:
    csvs, disclosure = {}, {}
    for name, table in released.items():
        csvs[f"tables/{name}.csv"] = first_column(table.protected.table)
        disclosure[name] = {**table.protected.actions, "ethnic_groups": table.level}
        if table.percent:
            csvs[f"tables/{name}_percent.csv"] = first_column(
                percentages(table.protected, rules))
            disclosure[name]["percentages"] = (
                f"{name}_percent.csv: row shares of the unrounded counts, whole percent, "
                f"{rules['hidden_percentage']} where the count or its row total is suppressed")
    return csvs, disclosure


def first_column(table: pd.DataFrame) -> pd.DataFrame:
    """The table with its row labels named (the CSV's first column header: never blank)."""
    return table.rename_axis(table.index.name or "Rows")
