"""Pairwise precision, recall and F1 of clusters against truth, and connected components."""

import numpy as np
import pandas as pd


def pair_count(sizes: pd.Series) -> int:
    """Pairs within groups of the given sizes: sum of n(n-1)/2."""
    n = sizes.to_numpy(dtype=np.int64)
    return int((n * (n - 1) // 2).sum())


def pairwise_scores(clusters: pd.DataFrame, truth: pd.DataFrame) -> dict:
    """Every pair of records within one cluster against every pair within one person.

    ``clusters`` has record_id and cluster_id, ``truth`` record_id and person_id; a truth
    record missing from ``clusters`` counts as a cluster of its own (a missed record)."""
    joined = truth[["record_id", "person_id"]].merge(
        clusters[["record_id", "cluster_id"]], on="record_id", how="left")
    lost = joined.cluster_id.isna()
    joined["cluster_id"] = joined.cluster_id.astype(object).where(
        ~lost, "missing:" + joined.record_id.astype(str))
    predicted = pair_count(joined.groupby("cluster_id").size())
    actual = pair_count(joined.groupby("person_id").size())
    correct = pair_count(joined.groupby(["cluster_id", "person_id"]).size())
    precision = correct / predicted if predicted else 1.0
    recall = correct / actual if actual else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": round(precision, 6), "recall": round(recall, 6), "f1": round(f1, 6),
            "true_pairs": actual, "predicted_pairs": predicted, "correct_pairs": correct,
            "records_missing": int(lost.sum())}


def connected_components(ids: pd.Series, left: np.ndarray, right: np.ndarray) -> pd.DataFrame:
    """Clusters (record_id, cluster_id) joining every edge ``left[i]``-``right[i]``: union-find
    over positions, the cluster named by its smallest record's position (deterministic)."""
    position = pd.Series(np.arange(len(ids)), index=ids.to_numpy())
    parent = np.arange(len(ids))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for a, b in zip(position[left].to_numpy(), position[right].to_numpy(), strict=True):
        ra, rb = root(a), root(b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)
    roots = np.array([root(i) for i in range(len(ids))])
    return pd.DataFrame({"record_id": ids.to_numpy(), "cluster_id": roots})
