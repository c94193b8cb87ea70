"""Accuracy of the family keys against a synthetic world's truth.

Spine persons and households are mapped to truth by the majority of their records. Each
measure counts only what the data could reveal: a child-adopter pair whose child has a care or
adoption record and whose household has adopter records; siblings (one birth mother) among
children with a 903 or ASG record; mothers and babies who both have 903 records.
"""

from collections.abc import Sequence
from itertools import combinations
from pathlib import Path

import pandas as pd

from linkage.quality.evaluate import EvaluationError
from linkage.sources.schema import CHILD_SOURCES, RECORD_KEY


def truth_person(linked: pd.DataFrame, truth_records: pd.DataFrame) -> pd.Series:
    """Each spine person's truth person id: the one most of its records belong to."""
    linked = linked.assign(period=linked.period.astype(int), record_id=linked.record_id.astype(str))
    joined = linked.merge(truth_records[[*RECORD_KEY, "person_id"]], on=RECORD_KEY)
    counts = joined.groupby(["person_key", "person_id"]).size().rename("n").reset_index()
    counts = counts.sort_values(["person_key", "n", "person_id"], ascending=[True, False, True])
    return counts.drop_duplicates("person_key").set_index("person_key").person_id


def _scores(predicted: set, actual: set, links: int | None = None) -> dict:
    correct = len(predicted & actual)
    return {"precision": round(correct / len(predicted), 6) if predicted else 1.0,
            "recall": round(correct / len(actual), 6) if actual else 1.0,
            "predicted": links if links is not None else len(predicted),
            "true": len(actual), "correct": correct}


def _holders(truth_records: pd.DataFrame, sources: Sequence[str]) -> set:
    return set(truth_records[truth_records.source.isin(sources)].person_id)


def evaluate_families(families: dict[str, pd.DataFrame], linked: pd.DataFrame,
                      truth_records: pd.DataFrame, persons: pd.DataFrame,
                      truth_dir: Path) -> dict:
    """child_adopter, siblings and mother_child precision and recall."""
    try:
        placements = pd.read_parquet(truth_dir / "placements.parquet")
        mother_child = pd.read_parquet(truth_dir / "mother_child.parquet")
    except (OSError, ValueError):
        raise EvaluationError(f"{truth_dir}: holds no family truth (placements.parquet, "
                              "mother_child.parquet)") from None
    who = truth_person(linked, truth_records)
    return {
        "child_adopter": _child_adopter(families, who, truth_records, persons, placements),
        "siblings": _siblings(families["sibling_group"], who, truth_records, persons),
        "mother_child": _mother_child(families["mother_child_link"], who, truth_records,
                                      mother_child),
    }


def _child_adopter(families, who, truth_records, persons, placements) -> dict:
    adopter_home = persons.set_index("person_id").adopter_household_id
    members = families["adopter_household"]
    house_truth = (members.assign(home=members.person_key.map(who).map(adopter_home))
                   .dropna(subset=["home"]).groupby("household_key").home
                   .agg(lambda h: h.mode().min()))
    links = families["child_adopter_link"]
    predicted = set(zip(links.child_person_key.map(who), links.household_key.map(house_truth),
                        strict=True))
    adopted = _holders(truth_records, CHILD_SOURCES)
    homes = set(persons[persons.person_id.isin(_holders(truth_records, ["asg_adopters"]))]
                .adopter_household_id.dropna())
    actual = {(c, h) for c, h in zip(placements.person_id, placements.household_id, strict=True)
              if c in adopted and h in homes}
    return _scores(predicted, actual, len(links))


def _siblings(groups, who, truth_records, persons) -> dict:
    in_scope = persons[persons.person_id.isin(_holders(truth_records, CHILD_SOURCES))]
    true_groups = [frozenset(g) for g in in_scope.groupby("family_id").person_id.agg(set)
                   if len(g) > 1]
    actual = {pair for g in true_groups for pair in combinations(sorted(g), 2)}
    found = [frozenset(g.dropna()) for _, g in
             groups.assign(pid=groups.person_key.map(who)).groupby("sibling_group_key").pid]
    predicted = {pair for g in found for pair in combinations(sorted(g), 2)}
    scores = _scores(predicted, actual)
    return {"pair_precision": scores["precision"], "pair_recall": scores["recall"],
            "predicted_pairs": scores["predicted"], "true_pairs": scores["true"],
            "groups_exact": round(len(set(true_groups) & set(found)) / len(true_groups), 6)
            if true_groups else 1.0,
            "true_groups": len(true_groups), "groups_found": len(found)}


def _mother_child(links, who, truth_records, mother_child) -> dict:
    looked_after = _holders(truth_records, ["ssda903"])
    actual = {(m, c) for m, c in zip(mother_child.mother_person_id, mother_child.child_person_id,
                                     strict=True) if m in looked_after and c in looked_after}
    predicted = set(zip(links.mother_person_key.map(who), links.child_person_key.map(who),
                        strict=True))
    return _scores(predicted, actual, len(links))
