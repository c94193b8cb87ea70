"""The bundles' content parts, parsed and joined to the spine's persons."""

from io import StringIO

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from linkage.pseudonymise.bundle import OpenedBundle
from linkage.sources.schema import RECORD_KEY, source_name


def source_of(bundle: OpenedBundle) -> str:
    """The source name records carry (a bundle's kind with underscores)."""
    return source_name(bundle.manifest["source"])


def generic_datasets(bundles: list[OpenedBundle]) -> dict[str, dict[str, str]]:
    """The generic datasets the bundles hold: name -> field name -> kind, from their signed
    manifests. Bundles of one dataset (several hospitals, say) pool their fields; a field one
    mapping calls an identifier counts as an identifier for all."""
    offered: dict[str, dict[str, str]] = {}
    for bundle in bundles:
        name = bundle.manifest.get("dataset")
        if bundle.manifest["source"] != "generic" or not name:
            continue
        fields = offered.setdefault(name, {})
        for field, kind in bundle.manifest.get("field_kinds", {}).items():
            fields[field] = kind if fields.get(field, "category") == "category" else fields[field]
    return offered


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
        content = bundle.content()  # decrypted in memory with the custodian's key
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
    keys = records[["person_key", *RECORD_KEY]].astype({"provider": str, "record_id": str,
                                                  "period": int})
    return rows.merge(keys, on=RECORD_KEY, how="inner")


def record_groups(bundles: list[OpenedBundle]) -> pd.DataFrame:
    """Per record: ethnicity, sex and age band (at the end of its collection year), from the
    content parts' record table, for breakdowns by group (the data custodian's key only)."""
    from linkage.pseudonymise.events import age_band

    tables = content_tables(bundles, {source_of(b): {"record"} for b in bundles})
    if not tables:
        return pd.DataFrame(columns=[*RECORD_KEY, "ethnicity", "sex", "age_band"])
    rows = pd.concat(tables.values(), ignore_index=True)
    born = rows.birth_year_month.fillna("").astype(str)
    # the first of the month: at 31 March a child born in March has had its birthday
    dates = pd.DataFrame({"dob": (born + "-01").where(born != ""), "period": rows.period})
    return rows.assign(age_band=age_band(dates).to_numpy())[
        [*RECORD_KEY, "ethnicity", "sex", "age_band"]]
