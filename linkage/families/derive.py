"""All family keys for one spine version, from the family sources' tokens and the persons."""

from dataclasses import dataclass

import pandas as pd

from linkage.config import load_config
from linkage.families.child_adopter import LINK_COLUMNS as CHILD_ADOPTER_COLUMNS
from linkage.families.child_adopter import link_children
from linkage.families.evidence import family_records, pupil_homes
from linkage.families.households import adopter_households
from linkage.families.mothers import LINK_COLUMNS as MOTHER_CHILD_COLUMNS
from linkage.families.mothers import mother_child_links
from linkage.families.siblings import GROUP_COLUMNS as SIBLING_COLUMNS
from linkage.families.siblings import sibling_groups
from linkage.pseudonymise.bundle import OpenedBundle
from linkage.sources.schema import CHILD_SOURCES

EMPTY = [["household_key", "person_key", "adopters", "sexes", "relationship_status"],
         CHILD_ADOPTER_COLUMNS, SIBLING_COLUMNS, MOTHER_CHILD_COLUMNS]


@dataclass
class Families:
    adopter_household: pd.DataFrame    # household_key, person_key, adopters, sexes, status
    child_adopter_link: pd.DataFrame   # child_person_key, household_key, confidence, evidence
    sibling_group: pd.DataFrame        # sibling_group_key, person_key, confidence, ...
    mother_child_link: pd.DataFrame    # mother_person_key, child_person_key, confidence, ...

    def tables(self) -> dict[str, pd.DataFrame]:
        """The spine's family tables, by name."""
        return dict(vars(self))

    def counts(self) -> dict:
        return {"adopter_households": int(self.adopter_household.household_key.nunique()),
                "child_adopter_links": len(self.child_adopter_link),
                "sibling_groups": int(self.sibling_group.sibling_group_key.nunique()),
                "children_in_sibling_groups": len(self.sibling_group),
                "mother_child_links": len(self.mother_child_link)}


def derive_families(bundles: list[OpenedBundle], persons: pd.DataFrame, secret: str,
                    config: dict | None = None) -> Families:
    """Households, child-adopter links, sibling groups and mother-child links.

    ``persons`` has person_key and the record key columns, one row per record.
    """
    config = config or load_config("families.yaml")
    records = family_records(bundles, persons)
    if records.empty:  # no 903 or ASG bundle: no family evidence
        return Families(*(pd.DataFrame(columns=columns) for columns in EMPTY))
    households = adopter_households(records, secret)
    links = link_children(records, households, config)
    members = households[["household_key", "members", "adopters", "sexes",
                          "relationship_status"]].explode("members").rename(
        columns={"members": "person_key"})
    return Families(
        adopter_household=members.sort_values(["household_key", "person_key"],
                                              ignore_index=True),
        child_adopter_link=links,
        sibling_group=sibling_groups(records, links, config, secret, pupil_homes(
            bundles, persons, set(records.person_key[records.source.isin(CHILD_SOURCES)]))),
        mother_child_link=mother_child_links(records, config),
    )
