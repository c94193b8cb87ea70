"""Sibling groups among looked-after and adopted children.

Children are siblings on the evidence the data holds: they entered care in one LA on one day
from one home postcode (903 DECOM and HOME_POST tokens), both ASG records flag a sibling group,
twins share a date of birth, one school census records them at one postcode with one surname,
and children placed together were linked to one adopter household
on one match date. Pairs scoring at least the configured confidence are joined into groups.
"""

import pandas as pd

from linkage.families.evidence import column, components, confidence, family_key, token_sets
from linkage.sources.schema import CHILD_SOURCES

GROUP_COLUMNS = ["sibling_group_key", "person_key", "confidence", "evidence", "group_size",
                 "recorded_size"]


def care_entries(records: pd.DataFrame) -> pd.DataFrame:
    """Each child's entries to care: LA, date token, home postcode token, ASG sibling flag."""
    la903 = records[records.source == "ssda903"]
    asg = records[records.source == "asg_children"]
    entries = pd.concat([
        pd.DataFrame({"person_key": la903.person_key, "la": la903.provider,
                      "entered": column(la903, "entered_care_date"),
                      "postcode": column(la903, "postcode"), "flag": ""}),
        pd.DataFrame({"person_key": asg.person_key, "la": column(asg, "la_code").astype(str),
                      "entered": column(asg, "entered_care_date"), "postcode": pd.NA,
                      "flag": column(asg, "sibling_group").fillna("").astype(str)}),
    ], ignore_index=True)
    return entries.dropna(subset=["entered"]).drop_duplicates()


def entry_pairs(entries: pd.DataFrame) -> pd.DataFrame:
    """Pairs of children who entered care in one LA on one day, with what else agrees."""
    pairs = entries.merge(entries, on=["la", "entered"], suffixes=("_l", "_r"))
    pairs = pairs[pairs.person_key_l < pairs.person_key_r]
    known = pairs.postcode_l.notna() & pairs.postcode_r.notna()
    pairs = pairs.assign(postcode_same=known & (pairs.postcode_l == pairs.postcode_r),
                         postcode_known=known,
                         asg_flags=(pairs.flag_l == "Y") & (pairs.flag_r == "Y"))
    return pairs.groupby(["person_key_l", "person_key_r"], as_index=False).agg(
        postcode_same=("postcode_same", "any"), postcode_known=("postcode_known", "any"),
        asg_flags=("asg_flags", "any"))


def shared_pupil_home(homes: pd.DataFrame) -> pd.DataFrame:
    """Pairs of children recorded in one school census at one postcode with one surname."""
    pairs = homes.merge(homes, on=["period", "postcode", "surname_bloom"],
                        suffixes=("_l", "_r"))
    pairs = pairs[pairs.person_key_l < pairs.person_key_r]
    return pairs[["person_key_l", "person_key_r"]].drop_duplicates()


def placed_together(links: pd.DataFrame) -> pd.DataFrame:
    """Pairs of children linked to the same adopter household."""
    pairs = links.merge(links, on="household_key", suffixes=("_l", "_r"))
    pairs = pairs[pairs.child_person_key_l < pairs.child_person_key_r]
    return pd.DataFrame({"person_key_l": pairs.child_person_key_l,
                         "person_key_r": pairs.child_person_key_r}).drop_duplicates()


def score_pairs(entries: pd.DataFrame, together: pd.DataFrame, pupil_home: pd.DataFrame,
                dobs: pd.Series, cfg: dict) -> pd.DataFrame:
    """Every candidate pair with its bits, confidence and evidence."""
    weights = cfg["weights"]
    pairs = entry_pairs(entries)
    for name, found in (("together", together), ("pupil_home", pupil_home)):
        pairs = pairs.merge(found.assign(**{name: True}), how="outer",
                            on=["person_key_l", "person_key_r"])
    entered = pairs.postcode_same.notna()
    pairs = pairs.fillna({"postcode_same": False, "postcode_known": False, "asg_flags": False,
                          "together": False, "pupil_home": False}).infer_objects()
    same_dob = [bool(dobs.get(left, frozenset()) & dobs.get(right, frozenset()))
                for left, right in zip(pairs.person_key_l, pairs.person_key_r, strict=True)]
    parts = {
        "same_la_same_day": entered * weights["same_la_same_day"],
        "home_postcode_same": pairs.postcode_same * weights["home_postcode"]["same"],
        "home_postcode_differ": (pairs.postcode_known & ~pairs.postcode_same)
        * weights["home_postcode"]["differ"],
        "asg_sibling_flags": pairs.asg_flags * weights["asg_sibling_flags"],
        "same_dob": pd.Series(same_dob, index=pairs.index) * weights["same_dob"],
        "placed_together": pairs.together * weights["placed_together"],
        "shared_pupil_home": pairs.pupil_home * weights["shared_pupil_home"],
    }
    pairs["bits"] = cfg["prior_bits"] + sum(part.astype(float) for part in parts.values())
    pairs["confidence"] = pairs.bits.map(confidence)
    pairs["evidence"] = [";".join(name for name, part in parts.items() if part.iloc[i] != 0)
                         for i in range(len(pairs))]
    return pairs


def sibling_groups(records: pd.DataFrame, links: pd.DataFrame, config: dict, secret: str,
                   pupil_homes: pd.DataFrame | None = None) -> pd.DataFrame:
    """The sibling groups: one row per member, with the group's key and the member's
    confidence (its strongest pair within the group). ``pupil_homes`` are the children's
    school census homes (person_key, period, postcode, surname_bloom), where known."""
    cfg = config["siblings"]
    children = records[records.source.isin(CHILD_SOURCES)]
    if pupil_homes is None:
        pupil_homes = pd.DataFrame(columns=["person_key", "period", "postcode", "surname_bloom"])
    pairs = score_pairs(care_entries(children), placed_together(links),
                        shared_pupil_home(pupil_homes),
                        token_sets(children, "person_key", "dob"), cfg)
    pairs = pairs[pairs.confidence >= cfg["min_confidence"]]
    if pairs.empty:
        return pd.DataFrame(columns=GROUP_COLUMNS)
    members = pd.Series(sorted(set(pairs.person_key_l) | set(pairs.person_key_r)))
    component = components(members, pairs.person_key_l, pairs.person_key_r)
    groups = pd.DataFrame({"person_key": members, "group": component})
    both = pd.concat([pairs[["person_key_l", "confidence", "evidence"]].set_axis(
                          ["person_key", "confidence", "evidence"], axis=1),
                      pairs[["person_key_r", "confidence", "evidence"]].set_axis(
                          ["person_key", "confidence", "evidence"], axis=1)])
    best = both.sort_values(["person_key", "confidence"], ascending=[True, False])
    best = best.groupby("person_key").head(1).set_index("person_key")
    groups["confidence"] = groups.person_key.map(best.confidence)
    groups["evidence"] = groups.person_key.map(best.evidence)
    groups["group_size"] = groups.groupby("group").person_key.transform("size")
    groups["recorded_size"] = groups.group.map(
        _recorded_sizes(children, groups)).astype("Int64")
    keys = groups.groupby("group").person_key.agg(
        lambda m: family_key(secret, "sibling_group", list(m)))
    groups["sibling_group_key"] = groups.group.map(keys)
    return groups[GROUP_COLUMNS].sort_values(["sibling_group_key", "person_key"],
                                             ignore_index=True)


def _recorded_sizes(children: pd.DataFrame, groups: pd.DataFrame) -> pd.Series:
    """The largest sibling group size that a member's ASG record implies (siblings placed
    together and apart, plus the child), per group: a check on the group found."""
    asg = children[children.source == "asg_children"]
    counts = sum(pd.to_numeric(column(asg, name), errors="coerce").fillna(0)
                 for name in ("siblings_placed_together", "siblings_placed_separately"))
    implied = (counts + 1).where(column(asg, "sibling_group") == "Y")
    implied = implied.groupby(asg.person_key).max()
    return groups.assign(implied=groups.person_key.map(implied)).groupby("group").implied.max()
