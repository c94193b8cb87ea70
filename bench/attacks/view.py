"""The linkage unit's view: the ONE place that knows the bundle and spine formats.

Every attack reads only a ``View``. When the bundle format changes (content encrypted away,
record ids pseudonymised, rows shuffled, salted filters, part tokens dropped), only
``linkage_unit_view`` below needs editing; the attacks discover columns by their type:

- bytes values          -> a Bloom filter column
- integer values        -> a keyed token column
- text values           -> a plain attribute (what the linkage unit reads in the clear)

Record keys (``source``, ``provider``, ``period``, ``record_id``, ``bundle``) are neither.
"""

from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd

from linkage.pseudonymise.bundle import open_bundles
from linkage.sources.schema import RECORD_KEY

RECORD_KEYS = RECORD_KEY
NOT_ATTRIBUTES = {*RECORD_KEYS, "bundle", "row"}


@dataclass
class View:
    """What the linkage unit holds: tokens of all bundles, the spine's records, manifests."""

    tokens: pd.DataFrame               # one row per record, all bundles, plus ``bundle``
    person_record: pd.DataFrame        # person_key per record (the spine's latest version)
    manifests: list[dict] = field(default_factory=list)

    def bloom_columns(self) -> list[str]:
        """Columns whose values are bytes: Bloom filters."""
        return [c for c in self.tokens.columns if c not in NOT_ATTRIBUTES
                and _first_value_type(self.tokens[c]) is bytes]

    def token_columns(self) -> list[str]:
        """Columns whose values are integers: keyed tokens."""
        return [c for c in self.tokens.columns if c not in NOT_ATTRIBUTES
                and pd.api.types.is_integer_dtype(self.tokens[c].dtype)]

    def plain_columns(self) -> list[str]:
        """Text columns the linkage unit reads in the clear (attributes, opened content)."""
        return [c for c in self.tokens.columns if c not in NOT_ATTRIBUTES
                and _first_value_type(self.tokens[c]) is str]

    def person_keys(self) -> pd.Series:
        """The spine's person key of each tokens row (missing where the spine has none)."""
        keys = self.tokens[RECORD_KEYS].astype({"period": "int64", "provider": str})
        spine = self.person_record[[*RECORD_KEYS, "person_key"]].astype(
            {"period": "int64", "provider": str}).drop_duplicates(RECORD_KEYS)
        joined = keys.merge(spine, on=RECORD_KEYS, how="left")
        return pd.Series(joined.person_key.to_numpy(), index=self.tokens.index)


def _first_value_type(column: pd.Series) -> type | None:
    values = column.dropna()
    return type(values.iloc[0]) if len(values) else None


def linkage_unit_view(bundle_paths: list[Path], spine_path: Path | None,
                      keys=None) -> View:
    """The linkage unit's view of ``bundle_paths`` and the spine at ``spine_path``: each
    bundle's linkage part, opened with the linkage unit's keys (``keys``, a
    ``LinkageUnitKeys``; by default from LINKAGE_UNIT_KEY and LINKAGE_REGISTER). The content
    part is sealed to the custodian, so the linkage unit cannot join it on."""
    from linkage.pseudonymise.roles import unit_keys

    bundles = open_bundles(list(bundle_paths), keys or unit_keys())
    frames = []
    for bundle in bundles:
        tokens = bundle.tokens()
        tokens["bundle"] = Path(bundle.name).name
        tokens["row"] = np.arange(len(tokens))  # file order, which an attacker also sees
        if len(tokens):  # an empty bundle would turn token columns into objects
            frames.append(tokens)
    tokens = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(
        columns=[*RECORD_KEYS, "bundle", "row"])
    return View(_normalised(tokens), _person_record(spine_path),
                [b.manifest for b in bundles])


def _normalised(tokens: pd.DataFrame) -> pd.DataFrame:
    """One spelling of 'missing' whatever the bundles' order: concatenating bundles that lack
    a column leaves NaN; filters keep None, text gets '' (as bundles write absent text)."""
    for column in tokens.columns:
        if column in ("period", "row") or pd.api.types.is_integer_dtype(tokens[column].dtype):
            continue
        values = tokens[column].astype(object)
        if _first_value_type(values) is bytes:
            tokens[column] = values.where(values.notna(), None)
        else:
            tokens[column] = values.where(values.notna(), "").astype(str)
    return tokens


def _person_record(spine_path: Path | None) -> pd.DataFrame:
    if spine_path is None:
        return pd.DataFrame(columns=[*RECORD_KEYS, "person_key"])
    with duckdb.connect(str(spine_path), read_only=True) as con:
        return con.execute(
            f"SELECT person_key, {', '.join(RECORD_KEYS)} FROM person_record "
            "WHERE version = (SELECT max(version) FROM person_record)").df()
