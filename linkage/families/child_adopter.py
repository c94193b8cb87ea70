"""Child-adopter links: each child placed for adoption to the adopter household matched with them.

Candidates share a match or placement date (or its week) with a household. Each is scored in
bits from the evidence (configs/families.yaml): the dates, the agency, the 903 AD1 description
of the adopters against the household's composition, and the number of children the household
took against the child's siblings placed together. A child gets its best household only when
that is confident and clearly better than the next; a household takes no more children than
it was matched with.
"""

import pandas as pd

from linkage.families.evidence import column, confidence, first_text, token_sets

DATES = ("matched", "placed")
LINK_COLUMNS = ["child_person_key", "household_key", "confidence", "evidence"]


def adopted_children(records: pd.DataFrame) -> pd.DataFrame:
    """Per child on the adoption pathway: date tokens, agencies, AD1 and sibling counts."""
    dated = column(records, "matched_date").notna() | column(records, "placed_date").notna()
    pathway = records[(records.source == "asg_children")
                      | ((records.source == "ssda903") & dated)]
    by = "person_key"
    children = pd.DataFrame(index=pd.Index(sorted(set(pathway.person_key)), name=by))
    for event in DATES:
        for grain in ("date", "week"):
            name = f"{event}_{grain}"
            children[name] = token_sets(pathway, by, name).reindex(children.index).apply(
                lambda v: v if isinstance(v, frozenset) else frozenset())
    asg = pathway[pathway.source == "asg_children"]
    children["agencies"] = asg.groupby(by).provider.agg(frozenset).reindex(children.index)
    la903 = pathway[pathway.source == "ssda903"]
    for name in ("nb_adopters", "sex_adopters", "ls_adopters"):
        children[name] = first_text(la903, by, name).reindex(children.index)
    flag = first_text(asg, by, "sibling_group").reindex(children.index)
    together = pd.to_numeric(column(asg, "siblings_placed_together"), errors="coerce")
    together = together.groupby(asg[by]).max().reindex(children.index)
    children["expected_children"] = (together.where(flag == "Y", 0).where(flag.notna()) + 1)
    return children


def candidates(children: pd.DataFrame, households: pd.DataFrame) -> pd.DataFrame:
    """Child and household pairs that share a match or placement date or week token."""
    def long(frame: pd.DataFrame, key: str) -> pd.DataFrame:
        parts = []
        for name in (f"{e}_{g}" for e in DATES for g in ("date", "week")):
            part = frame[name].explode().dropna()
            parts.append(pd.DataFrame({key: part.index, "kind": name, "token": part.values}))
        return pd.concat(parts, ignore_index=True)

    if children.empty or households.empty:
        return pd.DataFrame(columns=["child_person_key", "household"])
    child_tokens = long(children, "child_person_key")
    house_tokens = long(households, "household")
    pairs = child_tokens.merge(house_tokens, on=["kind", "token"])
    return pairs[["child_person_key", "household"]].drop_duplicates().sort_values(
        ["child_person_key", "household"], ignore_index=True)


def link_children(records: pd.DataFrame, households: pd.DataFrame, config: dict
                  ) -> pd.DataFrame:
    """The child-adopter links: child_person_key, household_key, confidence, evidence."""
    cfg = config["child_adopter"]
    children = adopted_children(records)
    pairs = candidates(children, households)
    if pairs.empty:
        return pd.DataFrame(columns=LINK_COLUMNS)
    scored = [score_pair(children.loc[child], households.loc[house], cfg)
              for child, house in zip(pairs.child_person_key, pairs.household, strict=True)]
    pairs["bits"] = [bits for bits, _ in scored]
    pairs["evidence"] = [";".join(evidence) for _, evidence in scored]
    return _assign(pairs, households, cfg)


def score_pair(child: pd.Series, house: pd.Series, cfg: dict) -> tuple[float, list[str]]:
    """The evidence for one child and household, in bits, and what it was."""
    weights = cfg["weights"]
    bits, evidence = float(cfg["prior_bits"]), []
    for event in DATES:
        days, weeks = child[f"{event}_date"], child[f"{event}_week"]
        if not days or not house[f"{event}_date"]:
            continue
        if days & house[f"{event}_date"]:
            outcome = "same"
        elif weeks & house[f"{event}_week"]:
            outcome = "same_week"
        else:
            outcome = "differ"
        bits += weights[f"{event}_date"][outcome]
        evidence.append(f"{event}_date={outcome}")
    if isinstance(child.agencies, frozenset) and child.agencies & house.agencies:
        bits += weights["same_agency"]
        evidence.append("same_agency")
    for name, agrees in _composition(child, house, cfg["legal_status"]).items():
        if agrees is not None:
            bits += weights[name]["agree" if agrees else "differ"]
            evidence.append(f"{name}={'agree' if agrees else 'differ'}")
    return bits, evidence


def _composition(child: pd.Series, house: pd.Series, legal_status: dict) -> dict:
    """Whether the AD1 description and the sibling counts agree with the household
    (None where either side is not recorded)."""
    def known(value) -> bool:
        return isinstance(value, str) and value != ""

    count = child.nb_adopters
    status = child.ls_adopters
    expected = child.expected_children
    return {
        "adopters_count": (str(house.adopters) == count) if known(count) else None,
        "adopters_sex": ((house.sexes == child.sex_adopters)
                         if known(child.sex_adopters) and house.sexes else None),
        "adopters_status": ((house.relationship_status in legal_status.get(status, []))
                            if known(status) and known(house.relationship_status) else None),
        "children_count": ((house.children == expected)
                           if pd.notna(expected) and house.children > 0 else None),
    }


def _assign(pairs: pd.DataFrame, households: pd.DataFrame, cfg: dict) -> pd.DataFrame:
    """Each child's best household when it is confident and clearly ahead of the next one;
    households then take their strongest children up to the number they were matched with."""
    pairs = pairs.sort_values(["child_person_key", "bits", "household"],
                              ascending=[True, False, True])
    rank = pairs.groupby("child_person_key").cumcount()
    runner_up = pairs[rank == 1].set_index("child_person_key").bits
    best = pairs[rank == 0].set_index("child_person_key")
    best["margin"] = best.bits - runner_up.reindex(best.index).fillna(-1e9).to_numpy()
    best["confidence"] = best.bits.map(confidence)
    best = best[(best.confidence >= cfg["min_confidence"])
                & (best.margin >= cfg["min_margin_bits"])].reset_index()
    best = best.sort_values(["bits", "child_person_key"], ascending=[False, True])
    capacity = households.children.where(households.children > 0, len(best) + 1)
    taken = best.groupby("household").cumcount() < best.household.map(capacity)
    best = best[taken.to_numpy()]
    best["household_key"] = best.household.map(households.household_key)
    return best[LINK_COLUMNS].sort_values(LINK_COLUMNS[:2], ignore_index=True)
