"""The records family keys are built from: the family sources' tokens with each record's person.

Only the 903, ASG children and ASG adopters bundles are read (a few per cent of all records);
Bloom filters are not needed and are left on disk.
"""

import hashlib
import hmac
import math

import pandas as pd

from linkage.match.cluster import connected_components
from linkage.pseudonymise.bundle import OpenedBundle
from linkage.sources.schema import CHILD_SOURCES, RECORD_KEY, source_kind

# the children's sources and the adopters'
FAMILY_KINDS = tuple(source_kind(name) for name in (*CHILD_SOURCES, "asg_adopters"))


def family_records(bundles: list[OpenedBundle], persons: pd.DataFrame) -> pd.DataFrame:
    """Tokens and attributes of the family sources' records, each with its ``person_key``.

    ``persons`` has person_key and the record key columns (one row per record).
    """
    frames = []
    for bundle in bundles:
        if bundle.manifest["source"] in FAMILY_KINDS:
            tokens = bundle.tokens()
            frames.append(tokens.drop(columns=[c for c in tokens if c.endswith("_bloom")]))
    if not frames:
        return pd.DataFrame(columns=["person_key", *RECORD_KEY])
    tokens = pd.concat(frames, ignore_index=True)
    tokens = tokens.astype({"provider": str, "record_id": str, "period": int})
    keys = persons[["person_key", *RECORD_KEY]].astype(
        {"provider": str, "record_id": str, "period": int})
    return tokens.merge(keys, on=RECORD_KEY, how="inner")


def pupil_homes(bundles: list[OpenedBundle], persons: pd.DataFrame, children: set[str]
                ) -> pd.DataFrame:
    """The school census homes of ``children``: person_key, census period, postcode token and
    surname filter, one row per pupil record (only these columns of the pupil bundles are read).
    """
    wanted = [*RECORD_KEY, "postcode", "surname_bloom"]
    keys = persons[persons.person_key.isin(children)][["person_key", *RECORD_KEY]].astype(
        {"provider": str, "record_id": str, "period": int})
    frames = []
    for bundle in bundles:
        if bundle.manifest["source"] != "school-census":
            continue
        if not set(wanted) <= set(bundle.token_columns()):
            continue
        tokens = bundle.tokens(wanted).astype(
            {"provider": str, "record_id": str, "period": int})
        frames.append(tokens.merge(keys, on=RECORD_KEY).dropna(
            subset=["postcode", "surname_bloom"]))
    if not frames:
        return pd.DataFrame(columns=["person_key", "period", "postcode", "surname_bloom"])
    return pd.concat(frames, ignore_index=True)[["person_key", "period", "postcode",
                                                 "surname_bloom"]]


def components(nodes: pd.Series, left: pd.Series, right: pd.Series) -> pd.Series:
    """The connected component of each node (labels of any kind) joined by the edges
    ``left``-``right``: the position of its smallest member in ``nodes``."""
    position = pd.Series(range(len(nodes)), index=nodes.to_numpy())
    found = connected_components(len(nodes), position[left.to_numpy()].to_numpy(),
                                 position[right.to_numpy()].to_numpy())
    return pd.Series(found, index=nodes.index)


def column(records: pd.DataFrame, name: str) -> pd.Series:
    """A column, or an empty one where no bundle carried it."""
    return records[name] if name in records else pd.Series(pd.NA, index=records.index)


def token_sets(records: pd.DataFrame, by: str, name: str) -> pd.Series:
    """The distinct non-null values of ``name`` per ``by`` (a frozenset each)."""
    values = records[[by]].assign(value=column(records, name)).dropna()
    return values.groupby(by).value.agg(frozenset)


def first_text(records: pd.DataFrame, by: str, name: str) -> pd.Series:
    """The first non-empty text of ``name`` per ``by``, in record order."""
    values = records[[by]].assign(value=column(records, name).astype("string"))
    values = values[values.value.fillna("") != ""]
    return values.groupby(by).value.first()


def confidence(bits: float) -> float:
    """The probability that a link is true, from its log2 odds."""
    return round(1.0 / (1.0 + math.pow(2.0, -bits)), 6)


def family_key(secret: str, kind: str, members: list[str]) -> str:
    """An opaque key for a family unit: keyed by the spine's secret over its members' person
    keys (random themselves), so the same members keep the same key in the next version."""
    text = kind + "|" + "|".join(sorted(members))
    digest = hmac.new(secret.encode(), text.encode(), hashlib.sha256).hexdigest()
    return {"household": "H", "sibling_group": "S"}[kind] + digest[:16]
