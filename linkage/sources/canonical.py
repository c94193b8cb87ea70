"""Turn a reader's raw identifier columns into canonical records with their flags."""

import numpy as np
import pandas as pd

from linkage.sources.schema import RECORD_COLUMNS
from linkage.sources.values import (
    Masks,
    clean_upns,
    harmonise_ethnicity,
    harmonise_sex,
    join_flags,
    merge_masks,
    normalise_postcodes,
    parse_dates,
    source_codes,
    text,
    upn_is_valid,
)

NAME_COLUMNS = ["forename", "middle_names", "surname", "preferred_surname", "former_surname"]


def collection_end(period: pd.Series) -> pd.Series:
    """31 March of each record's collection year."""
    return pd.to_datetime(period.astype(int).astype(str) + "-03-31")


def canonical_records(kind: str, base: pd.DataFrame, raw: dict[str, pd.Series],
                      extra: Masks | None = None,
                      dob_formats: list[str] | None = None) -> pd.DataFrame:
    """Canonical records from ``base`` (source, provider, record_id, period, file, row) and
    the raw identifier text in ``raw`` (any of upn, upn_unknown, former_upn, dob, sex, postcode,
    ethnicity and the name columns); ``extra`` adds flags a reader found itself. A period of 0
    means the collection year is not known: then DOBs are not checked against it.
    """
    n = len(base)
    codes = source_codes()
    blank = pd.Series("", index=base.index)

    def column(name: str) -> pd.Series:
        return text(raw[name]).set_axis(base.index) if name in raw else blank

    records = base.reset_index(drop=True).copy()
    masks: Masks = {"record_id_missing": (text(records.record_id) == "").to_numpy()}

    upn, unknown, upn_masks = clean_upns(column("upn"), raw.get("upn_unknown"))
    if "upn" not in raw:
        upn_masks = {}
    former = text(column("former_upn")).str.upper().str.replace(" ", "", regex=False)
    former_valid = upn_is_valid(former)
    masks["former_upn_invalid"] = ((former != "").to_numpy() & ~former_valid)
    records["upn"] = upn.to_numpy()
    records["former_upn"] = former.where(former_valid, "").to_numpy()
    records["upn_unknown"] = unknown.to_numpy()

    formats = dob_formats or codes["date_formats"].get(kind, ["%Y-%m-%d"])
    dob, dob_missing, dob_invalid = parse_dates(column("dob"), formats)
    masks["dob_missing"] = dob_missing if "dob" in raw else np.zeros(n, dtype=bool)
    masks["dob_invalid"] = dob_invalid
    period = pd.to_numeric(records.period, errors="coerce").fillna(0).astype(int)
    has_period = period.between(1900, 2100).to_numpy()  # 0: the period is not known
    if has_period.any():
        end = collection_end(period.where(has_period, 2000)).to_numpy()
        known = dob.notna().to_numpy() & has_period
        masks["dob_after_collection"] = known & (dob.to_numpy() > end)
        oldest = end - np.timedelta64(int(codes["max_child_age"] * 365.25), "D")
        masks["dob_over_25"] = known & (dob.to_numpy() < oldest) & kind_is_child(kind)
    records["dob"] = dob.dt.date.to_numpy()

    harmonisers = {
        "sex": lambda values: harmonise_sex(values, codes["sex"][kind]),
        "postcode": normalise_postcodes,
        "ethnicity": harmonise_ethnicity,
    }
    field_masks: list[Masks] = []
    for field, harmonise in harmonisers.items():
        records[field] = ""
        if field in raw:
            values, found = harmonise(column(field))
            records[field] = values.to_numpy()
            field_masks.append(found)
    for name in NAME_COLUMNS:
        records[name] = column(name).str.replace(r"\s+", " ", regex=True).to_numpy()

    all_masks = merge_masks(masks, upn_masks, *field_masks, extra or {})
    records["flags"] = join_flags(all_masks, n)
    return records[RECORD_COLUMNS]


def kind_is_child(kind: str) -> bool:
    return kind != "asg-adopters"
