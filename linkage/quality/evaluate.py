"""Accuracy of the spine against truth files (a synthetic world's ``truth/``), read from disk.

Pairwise precision, recall and F1 count pairs of records put in one person; B-cubed scores each
record by how much of its person and of its cluster agree; split and merged persons count what
went wrong; recall is broken down by source pair and by group (ethnicity, sex, age band, moved
LA), because linkage error that differs by group biases the disparities researchers measure.
"""

from pathlib import Path

import numpy as np
import pandas as pd

from linkage.sources.schema import RECORD_KEY


class EvaluationError(Exception):
    pass


def pairs(counts: pd.Series) -> int:
    counts = counts.to_numpy(dtype=np.int64)
    return int((counts * (counts - 1) // 2).sum())


def load_truth(truth_dir: Path, key: bytes | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A synthetic world's truth. The spine names records by keyed pseudonyms of the
    providers' ids, so with the world's linkage ``key`` the truth's ids are given the same
    pseudonyms (an evaluation on synthetic data, whose key is a test key: the linkage unit
    never holds a real one)."""
    try:
        records = pd.read_parquet(truth_dir / "records.parquet")
        persons = pd.read_parquet(truth_dir / "persons.parquet")
    except (OSError, ValueError):
        raise EvaluationError(f"{truth_dir}: holds no readable truth (records.parquet, "
                              "persons.parquet)") from None
    records["period"] = records.period.astype(int)
    if key is not None:
        from linkage.pseudonymise.bundle import record_pseudonyms

        records["record_id"] = record_pseudonyms(records.provider, records.record_id, key)
    return records, persons


def evaluate(linked: pd.DataFrame, truth_records: pd.DataFrame,
             persons: pd.DataFrame) -> dict:
    """``linked`` has person_key and RECORD_KEY; the truth names each record's person."""
    linked = linked.assign(period=linked.period.astype(int), record_id=linked.record_id.astype(str))
    joined = linked.merge(truth_records[[*RECORD_KEY, "person_id"]], on=RECORD_KEY, how="inner")
    if joined.empty:
        raise EvaluationError("no linked record matches a truth record: a truth folder of "
                              "another world, or no --key (the world's linkage key, which "
                              "gives the truth's ids the spine's pseudonyms)?")
    _check_coverage(linked, truth_records, len(joined))
    cluster_sizes = joined.groupby("person_key").size()
    true_sizes = joined.groupby("person_id").size()
    both = joined.groupby(["person_key", "person_id"]).size()
    predicted, actual, correct = pairs(cluster_sizes), pairs(true_sizes), pairs(both)
    precision = correct / predicted if predicted else 1.0
    recall = correct / actual if actual else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0

    shared = joined.merge(both.rename("shared").reset_index(), on=["person_key", "person_id"])
    b3_precision = (shared.shared / shared.person_key.map(cluster_sizes)).mean()
    b3_recall = (shared.shared / shared.person_id.map(true_sizes)).mean()
    people_per_cluster = joined.groupby("person_key").person_id.nunique()
    clusters_per_person = joined.groupby("person_id").person_key.nunique()
    return {
        "records_evaluated": len(joined),
        "records_linked_not_in_truth": int(len(linked) - len(joined)),
        "pairwise": {"precision": round(precision, 6), "recall": round(recall, 6),
                     "f1": round(f1, 6), "true_pairs": actual, "predicted_pairs": predicted,
                     "correct_pairs": correct},
        "b_cubed": {"precision": round(float(b3_precision), 6),
                    "recall": round(float(b3_recall), 6)},
        "persons": int(true_sizes.size),
        "clusters": int(cluster_sizes.size),
        "persons_split": int((clusters_per_person > 1).sum()),
        "persons_merged": int(people_per_cluster[people_per_cluster > 1].sum()),
        "twins_merged": _twins_merged(joined, persons),
        "recall_by_source_pair": _recall_by_source_pair(joined),
        "recall_by_group": _recall_by_group(joined, persons),
    }


def _check_coverage(linked: pd.DataFrame, truth_records: pd.DataFrame, matched: int) -> None:
    """Refuse a truth that does not describe the spine: record ids repeat between worlds, so
    another world's truth matches many records by chance and scores nonsense (precision 0.0064
    once, printed without a warning). Both the spine's records found in the truth and the
    truth's records (of the sources, providers and years the spine holds) found in the spine
    must reach ``truth_min_coverage`` of configs/evaluation.yaml."""
    from linkage.config import load_config

    least = load_config("evaluation.yaml")["truth_min_coverage"]
    groups = ["source", "provider", "period"]
    held = truth_records[groups].merge(linked[groups].drop_duplicates(), on=groups)
    shares = {"of the spine's records are in the truth": matched / len(linked),
              "of the truth's records (of the spine's sources, providers and years) are in "
              "the spine": matched / max(len(held), 1)}
    for what, share in shares.items():
        if share < least:
            raise EvaluationError(
                f"the truth does not describe this spine: {share:.1%} {what}, below the "
                f"{least:.0%} of truth_min_coverage (configs/evaluation.yaml). Give the truth "
                "of the world the bundles were hashed from, and that world's --key")


def _twins_merged(joined: pd.DataFrame, persons: pd.DataFrame) -> int:
    twins = persons[persons.get("multiple_birth", False)][["person_id", "maternity_id"]]
    keyed = joined[["person_key", "person_id"]].drop_duplicates().merge(twins, on="person_id")
    together = keyed.groupby(["maternity_id", "person_key"]).person_id.nunique()
    return int((together * (together - 1) // 2).sum())


def _recall_by_source_pair(joined: pd.DataFrame) -> dict:
    per_person = joined.groupby(["person_id", "source"]).size().unstack(fill_value=0)
    per_both = joined.groupby(["person_id", "person_key", "source"]).size().unstack(fill_value=0)
    out = {}
    sources = sorted(per_person.columns)
    for i, first in enumerate(sources):
        for second in sources[i:]:
            true = _pair_count(per_person, first, second)
            linked = _pair_count(per_both, first, second)
            if true:
                out[f"{first}~{second}"] = {"true_pairs": true,
                                            "recall": round(linked / true, 6)}
    return out


def _pair_count(counts: pd.DataFrame, first: str, second: str) -> int:
    a = counts[first].to_numpy(dtype=np.int64)
    if first == second:
        return int((a * (a - 1) // 2).sum())
    return int((a * counts[second].to_numpy(dtype=np.int64)).sum())


def _recall_by_group(joined: pd.DataFrame, persons: pd.DataFrame) -> dict:
    """Pairwise recall and precision per group of the true person. A linked pair belongs to
    its true person's group; a predicted pair to the group of its cluster's largest true
    person (the one the cluster stands for)."""
    from linkage.release.ethnic_groups import EthnicGroups

    people = persons.set_index("person_id")
    dob = pd.to_datetime(people.dob, errors="coerce")
    age = (pd.Timestamp("2025-03-31") - dob).dt.days // 365
    groups = {
        "ethnic_group": EthnicGroups.load(detailed=False).labels(people.ethnicity),
        "ethnicity": people.ethnicity,
        "sex": people.sex,
        "age_band": pd.cut(age, [-1, 4, 9, 15, 17, 200],
                           labels=["0-4", "5-9", "10-15", "16-17", "18+"]).astype(str),
        "moved_la": people.moved_la.map({True: "moved", False: "did not move"}),
    }
    true_sizes = joined.groupby("person_id").size()
    both = joined.groupby(["person_id", "person_key"]).size()
    true_pairs = true_sizes * (true_sizes - 1) // 2
    linked_pairs = (both * (both - 1) // 2).groupby(level=0).sum()
    largest = both.sort_values(ascending=False, kind="stable").reset_index().drop_duplicates(
        "person_key")
    cluster_sizes = joined.groupby("person_key").size()
    predicted = (cluster_sizes * (cluster_sizes - 1) // 2).groupby(
        largest.set_index("person_key").person_id).sum()
    out = {}
    for name, labels in groups.items():
        table = pd.DataFrame({"true": true_pairs,
                              "linked": linked_pairs.reindex(true_pairs.index).fillna(0),
                              "predicted": predicted.reindex(true_pairs.index).fillna(0)})
        summary = table.groupby(labels.reindex(true_pairs.index).to_numpy()).sum()
        out[name] = {str(k): {"true_pairs": int(v.true),
                              "recall": round(float(v.linked / v.true), 6) if v.true else None,
                              "precision": (round(float(v.linked / v.predicted), 6)
                                            if v.predicted else None)}
                     for k, v in summary.iterrows()}
    return out
