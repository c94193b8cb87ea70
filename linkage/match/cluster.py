"""Clustering pairs into persons, keeping apart records that cannot be one person.

Connected components join every pair kept. A component that would hold two different valid
UPNs (neither the other's former UPN), clearly different forenames, or two records of one LA
return (which lists each child once), is rebuilt greedily: its
pairs are added strongest first, and a pair that would join conflicting records is skipped.
Twins, who share a date of birth, sex, address and surname, stay apart this way.
"""

from functools import lru_cache

import numpy as np
import pandas as pd
from splink import DuckDBAPI
from splink.clustering import cluster_pairwise_predictions_at_threshold

FORENAME_CONFLICT = 0.5  # forename Dice below this: not the same child
# an LA return, and an agency's ASG file, lists each child (or adopter) once
ONE_RECORD_PER_CHILD = ["ssda903", "cin", "asg_children", "asg_adopters"]
AMBIGUITY_BITS = 1.0  # a record this close to another person as to its own is left alone


def connected_components(unique_ids: pd.Series, edges: pd.DataFrame) -> pd.Series:
    """Component id per unique id (Splink's connected components on DuckDB)."""
    clustered = cluster_pairwise_predictions_at_threshold(
        pd.DataFrame({"unique_id": unique_ids}), edges[["unique_id_l", "unique_id_r"]],
        db_api=DuckDBAPI(), node_id_column_name="unique_id").as_pandas_dataframe()
    return clustered.set_index("unique_id").cluster_id.reindex(unique_ids).reset_index(drop=True)


class _Identity:
    """What a group of records says about who it is: its UPNs, its forename filters, and its
    record in each LA return (a return lists each child once)."""

    def __init__(self, upns: set, forenames: list, returns: dict):
        self.upns, self.forenames, self.returns = upns, forenames, returns

    def conflicts(self, other: "_Identity") -> bool:
        if self.upns and other.upns and not self.upns & other.upns:
            return True
        if any(other.returns.get(key, record) != record for key, record in self.returns.items()):
            return True
        if self.forenames and other.forenames:
            return max(_dice(a, b) for a in self.forenames for b in other.forenames) < (
                FORENAME_CONFLICT)
        return False

    def merged(self, other: "_Identity") -> "_Identity":
        forenames = self.forenames + [f for f in other.forenames if f not in self.forenames]
        return _Identity(self.upns | other.upns, forenames, {**self.returns, **other.returns})


@lru_cache(maxsize=100_000)
def _bits(bloom: bytes) -> np.ndarray:
    return np.unpackbits(np.frombuffer(bloom, dtype=np.uint8)).astype(bool)


def _dice(a: bytes | str, b: bytes | str) -> float:
    """Dice of two Bloom filters, or of two plaintext names' bigram sets (the baseline)."""
    if isinstance(a, str):
        x, y = _bigram_set(a), _bigram_set(b)
        return 2.0 * len(x & y) / (len(x) + len(y)) if x or y else 1.0
    x, y = _bits(a), _bits(b)
    total = x.sum() + y.sum()
    return 2.0 * (x & y).sum() / total if total else 1.0


@lru_cache(maxsize=100_000)
def _bigram_set(name: str) -> frozenset:
    padded = f"_{name}_"
    return frozenset(padded[i:i + 2] for i in range(len(padded) - 1))


def _identities(table: pd.DataFrame) -> list[_Identity]:
    upn = table.upn if "upn" in table else pd.Series(pd.NA, index=table.index)
    former = table.former_upn if "former_upn" in table else pd.Series(pd.NA, index=table.index)
    name = next((c for c in ("forename_bloom", "forename") if c in table), None)
    blooms = table[name] if name else pd.Series(None, index=table.index)
    one_per_return = table.source.isin(ONE_RECORD_PER_CHILD).to_numpy()
    returns = table.source + "|" + table.provider.astype(str) + "|" + table.period.astype(str)
    out = []
    for u, f, b, unique, key, record in zip(upn, former, blooms, one_per_return, returns,
                                            table.record_id, strict=True):
        upns = {x for x in (u, f) if not pd.isna(x)}
        forenames = [b] if isinstance(b, bytes | str) and b else []
        out.append(_Identity(upns, forenames, {key: record} if unique else {}))
    return out


def cluster(table: pd.DataFrame, edges: pd.DataFrame) -> pd.Series:
    """A cluster id per row of ``table`` (which has unique_id, upn, former_upn and
    forename_bloom where the sources carry them); ``edges`` are the pairs kept."""
    components = connected_components(table.unique_id, edges)
    position = pd.Series(np.arange(len(table)), index=table.unique_id)
    sizes = components.map(components.value_counts())
    candidates = table[(sizes > 1).to_numpy()]
    identities = _identities(candidates)
    identity_of = dict(zip(candidates.unique_id, identities, strict=True))
    result = components.astype(str).to_numpy().astype(object)

    component_of = dict(zip(table.unique_id, components, strict=True))
    members_of = table.unique_id.groupby(components.to_numpy()).agg(list)
    edges = edges.assign(component=edges.unique_id_l.map(component_of))
    for component, group in edges.groupby("component", sort=False):
        members = members_of[component]
        if not _has_conflict([identity_of[m] for m in members]):
            continue
        labels = _constrained(members, group, identity_of)
        for member, label in labels.items():
            result[position[member]] = f"{component}-{label}"
    return pd.Series(result, index=table.index)


def _has_conflict(identities: list[_Identity]) -> bool:
    total = identities[0]
    for identity in identities[1:]:
        if total.conflicts(identity):
            return True
        total = total.merged(identity)
    return False


def _constrained(members: list, edges: pd.DataFrame, identity_of: dict) -> dict:
    """Greedy clustering of one component: strongest pairs first, no conflicting merge."""
    parent = {m: m for m in members}
    identity = {m: identity_of[m] for m in members}

    def root(x):
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    ordered = edges.assign(first=edges.get("prelinked", False)).sort_values(
        ["first", "match_weight", "unique_id_l", "unique_id_r"],
        ascending=[False, False, True, True])
    for left, right in zip(ordered.unique_id_l, ordered.unique_id_r, strict=True):
        a, b = root(left), root(right)
        if a == b or identity[a].conflicts(identity[b]):
            continue
        parent[b] = a
        identity[a] = identity[a].merged(identity[b])
    labels = {m: root(m) for m in members}
    labels = _detach_ambiguous(labels, edges)
    number = {r: i for i, r in enumerate(sorted(set(labels.values())))}
    return {m: number[labels[m]] for m in members}


def _detach_ambiguous(labels: dict, edges: pd.DataFrame) -> dict:
    """A record that matches another person's records as well as its own is left on its own:
    weak evidence gives no link rather than a guess (twins with no UPN or name, say)."""
    both = pd.concat([
        edges[["unique_id_l", "unique_id_r", "match_weight"]].set_axis(
            ["member", "other", "weight"], axis=1),
        edges[["unique_id_r", "unique_id_l", "match_weight"]].set_axis(
            ["member", "other", "weight"], axis=1)])
    both["same"] = both.member.map(labels) == both.other.map(labels)
    best = both.groupby(["member", "same"]).weight.max().unstack()
    if True not in best or False not in best:
        return labels
    ambiguous = best.index[best[False] >= best[True] - AMBIGUITY_BITS]
    return {m: (f"alone-{m}" if m in set(ambiguous) else label) for m, label in labels.items()}
