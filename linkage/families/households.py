"""Adopter households: ASG adopter records grouped by household.

Within an agency, adopters sharing a ``household_ref`` are one household. The same adopter
(one person on the spine) in two agencies' files, or in two quarters, joins those households
into one, so a household that adopts again elsewhere keeps one key.
"""

import pandas as pd

from linkage.families.evidence import column, components, family_key, first_text, token_sets

SINGLE_CODES = {"M": "M1", "F": "F1"}


def adopter_households(records: pd.DataFrame, secret: str) -> pd.DataFrame:
    """One row per household: household_key, members (adopter person keys), adopters (count),
    sexes (an AD1 SEX_ADOPTR code: M1, F1, MM, FF, MF), relationship_status, children
    (matched with it, over all its approvals), agencies, and its matched and placed date and
    week tokens."""
    adopters = records[records.source == "asg_adopters"].copy()
    if adopters.empty:
        return pd.DataFrame(columns=["household_key", "members", "adopters", "sexes",
                                     "relationship_status", "children", "agencies"])
    ref = column(adopters, "household_ref").fillna("").astype(str)
    own = "record|" + adopters.provider + "|" + adopters.record_id
    adopters["node"] = ("household|" + adopters.provider + "|" + ref).where(ref != "", own)
    person_node = "person|" + adopters.person_key
    nodes = pd.Series(sorted(set(adopters.node) | set(person_node)))
    component = components(nodes, adopters.node, person_node)
    adopters["household"] = adopters.node.map(dict(zip(nodes, component, strict=True)))

    by = "household"
    people = adopters.drop_duplicates([by, "person_key"])
    houses = pd.DataFrame({"members": people.groupby(by).person_key.agg(sorted)})
    houses["adopters"] = houses.members.map(len)
    houses["sexes"] = people.groupby(by).sex.agg(_sex_code)
    houses["relationship_status"] = first_text(adopters, by, "relationship_status")
    # each approval (one household reference) states its own children; a household that
    # adopted again took the children of both, so approvals add up (a quarter's repeat of one
    # approval does not)
    children = pd.to_numeric(column(adopters, "children_matched"), errors="coerce")
    per_approval = children.groupby([adopters[by], adopters.node]).max()
    houses["children"] = per_approval.groupby(level=0).sum().reindex(houses.index).fillna(
        0).astype(int)
    houses["agencies"] = adopters.groupby(by).provider.agg(frozenset)
    for name in ("matched_date", "placed_date", "matched_week", "placed_week"):
        houses[name] = token_sets(adopters, by, name)
        houses[name] = houses[name].apply(lambda v: v if isinstance(v, frozenset)
                                          else frozenset())
    houses["household_key"] = [family_key(secret, "household", m) for m in houses.members]
    return houses.reset_index(drop=True)


def _sex_code(sexes: pd.Series) -> str:
    """The adopters' sexes as AD1 writes them: M1 or F1 for one adopter; MM, FF or MF."""
    known = sorted(s for s in sexes.astype(str) if s in ("M", "F"))
    if len(known) != len(sexes):
        return ""
    if len(known) == 1:
        return SINGLE_CODES[known[0]]
    if len(known) == 2:
        return "MF" if known == ["F", "M"] else "".join(known)
    return ""
