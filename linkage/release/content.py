"""The bundles' content (content.parquet), parsed and joined to the spine's persons."""

from io import StringIO

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from linkage.pseudonymise.bundle import OpenedBundle

KEYS = ["source", "provider", "period", "record_id"]


def source_of(bundle: OpenedBundle) -> str:
    """The source name records carry (a bundle's kind with underscores)."""
    return bundle.manifest["source"].replace("-", "_")


def content_tables(bundles: list[OpenedBundle], wanted: dict[str, set[str]]
                   ) -> dict[tuple[str, str], pd.DataFrame]:
    """(source, table) -> rows with the record keys and the payload's columns, for the
    tables ``wanted`` of each source. Only those rows of each content file are parsed."""
    parts: dict[tuple[str, str], list[pd.DataFrame]] = {}
    for bundle in bundles:
        source = source_of(bundle)
        tables = wanted.get(source, set())
        if not tables:
            continue
        content = pq.read_table(bundle.folder / "content.parquet")
        content = content.filter(pc.is_in(content["table"], pa.array(sorted(tables))))
        for name, rows in content.to_pandas().groupby("table"):
            parts.setdefault((source, name), []).append(_parsed(source, rows))
    return {key: pd.concat(frames, ignore_index=True) for key, frames in parts.items()}


def _parsed(source: str, rows: pd.DataFrame) -> pd.DataFrame:
    body = pd.read_json(StringIO("\n".join(rows.payload)), lines=True, dtype=False)
    keys = pd.DataFrame({"source": source, "provider": rows.provider.astype(str).to_numpy(),
                         "period": rows.period.astype(int).to_numpy(),
                         "record_id": rows.record_id.astype(str).to_numpy()})
    return pd.concat([keys, body.reset_index(drop=True)], axis=1)


def with_persons(rows: pd.DataFrame, records: pd.DataFrame) -> pd.DataFrame:
    """``rows`` with each record's person_key from the spine (rows of unknown records drop)."""
    keys = records[["person_key", *KEYS]].astype({"provider": str, "record_id": str,
                                                  "period": int})
    return rows.merge(keys, on=KEYS, how="inner")
