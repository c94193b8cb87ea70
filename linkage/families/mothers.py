"""Mother-child links: a looked-after mother (903 MOTHER = 1, MC_DOB) to her baby's own record,
when the baby is looked after too.

The baby's date of birth token must equal the mother's MC_DOB token (both are DOB tokens);
the same LA and the same recorded ethnicity add weight. A mother with several candidate babies
keeps them only if they are twins (one home postcode); otherwise she gets no link.
"""

import pandas as pd

from linkage.families.evidence import column, confidence

LINK_COLUMNS = ["mother_person_key", "child_person_key", "confidence", "evidence"]


def mother_child_links(records: pd.DataFrame, config: dict) -> pd.DataFrame:
    """The mother-child links: mother_person_key, child_person_key, confidence, evidence."""
    cfg = config["mother_child"]
    la903 = records[records.source == "ssda903"]
    mothers = la903[(column(la903, "mother").astype(str) == "1")
                    & column(la903, "mother_child_dob").notna()]
    mothers = pd.DataFrame({"mother_person_key": mothers.person_key,
                            "token": column(mothers, "mother_child_dob"), "la": mothers.provider,
                            "ethnicity": column(mothers, "ethnicity")}).drop_duplicates()
    babies = pd.DataFrame({"child_person_key": la903.person_key, "token": column(la903, "dob"),
                           "la": la903.provider, "ethnicity": column(la903, "ethnicity"),
                           "postcode": column(la903, "postcode")}).dropna(subset=["token"])
    pairs = mothers.merge(babies.drop_duplicates(), on="token", suffixes=("_m", "_c"))
    pairs = pairs[pairs.mother_person_key != pairs.child_person_key]
    if pairs.empty:
        return pd.DataFrame(columns=LINK_COLUMNS)
    weights = cfg["weights"]
    same_la = pairs.la_m == pairs.la_c
    known = (pairs.ethnicity_m.fillna("") != "") & (pairs.ethnicity_c.fillna("") != "")
    same_ethnicity = known & (pairs.ethnicity_m == pairs.ethnicity_c)
    pairs["bits"] = (cfg["prior_bits"] + weights["dob_is_mother_child_dob"]
                     + same_la * weights["same_la"] + same_ethnicity * weights["same_ethnicity"]
                     + (known & ~same_ethnicity) * weights["ethnicity_differs"])
    pairs["evidence"] = ("dob_is_mother_child_dob" + same_la.map({True: ";same_la", False: ""})
                         + same_ethnicity.map({True: ";same_ethnicity", False: ""}))
    best = pairs.groupby(["mother_person_key", "child_person_key"], as_index=False).agg(
        bits=("bits", "max"), evidence=("evidence", "max"),
        postcodes=("postcode", lambda p: frozenset(p.dropna())))
    return _unambiguous(best, cfg)


def _unambiguous(pairs: pd.DataFrame, cfg: dict) -> pd.DataFrame:
    """Each mother's strongest babies, kept when confident and either alone or twins."""
    pairs = pairs.assign(confidence=pairs.bits.map(confidence))
    top = pairs.bits == pairs.groupby("mother_person_key").bits.transform("max")
    pairs = pairs[top & (pairs.confidence >= cfg["min_confidence"])]
    shared = pairs.groupby("mother_person_key").postcodes.agg(
        lambda sets: bool(frozenset.intersection(*sets)) if len(sets) > 1 else True)
    pairs = pairs[pairs.mother_person_key.map(shared).astype(bool)]
    return pairs[LINK_COLUMNS].sort_values(LINK_COLUMNS[:2], ignore_index=True)
