"""Per record: the event dates family keys need, and the plain attributes linkage needs.

Both come from a reader's content tables, joined back to the canonical records by provider,
period and record id.
"""

import numpy as np
import pandas as pd

from linkage.sources.schema import SourceData, source_name

KEYS = ["provider", "period", "record_id"]
ADOPTION_PLACEMENTS = ["A3", "A4", "A5", "A6"]


def _per_record(records: pd.DataFrame, values: pd.Series) -> pd.Series:
    """``values`` (indexed by provider, period, record id) aligned to the records."""
    index = pd.MultiIndex.from_frame(records[KEYS].astype({"period": int}))
    values = values[~values.index.duplicated()]
    return pd.Series(values.reindex(index).to_numpy(), index=records.index)


def _first(table: pd.DataFrame, column: str, where=None) -> pd.Series:
    rows = table if where is None else table[where]
    rows = rows.assign(_value=pd.to_datetime(rows[column], errors="coerce"))
    return rows.dropna(subset=["_value"]).groupby(KEYS)._value.min()


def event_dates(data: SourceData) -> dict[str, pd.Series]:
    """Event name -> date per record (NaT where the record has none)."""
    records, content = data.records, data.content
    if data.kind == "ssda903":
        episodes = content.get("episodes", pd.DataFrame(columns=[*KEYS, "DECOM", "DEC", "RNE",
                                                                  "PLACE", "REC"]))
        ad1 = content.get("ad1", pd.DataFrame(columns=[*KEYS, "DATE_MATCH"]))
        header = content["header"]
        started = episodes.RNE.astype(str).str.upper() == "S"
        return {
            "entered_care": _per_record(records, _first(episodes, "DECOM", started)),
            "matched": _per_record(records, _first(ad1, "DATE_MATCH")),
            "placed": _per_record(records, _first(
                episodes, "DECOM", episodes.PLACE.isin(ADOPTION_PLACEMENTS))),
            "adoption_order": _per_record(records, _first(
                episodes, "DEC", episodes.REC.isin(["E11", "E12"]))),
            "mother_child_dob": _per_record(records, _first(header, "MC_DOB")),
        }
    if data.kind == "cin":
        return {"referral": _per_record(records, _first(content["cin_details"],
                                                        "CINreferralDate"))}
    if data.kind in ("asg-children", "asg-adopters"):
        table = content[source_name(data.kind)]
        columns = {"entered_care": "date_entered_care", "matched": "date_matched",
                   "placed": "date_placed", "adoption_order": "date_adoption_order",
                   "approved": "date_approved"}
        return {event: _per_record(records, _first(table, column))
                for event, column in columns.items() if column in table}
    return {}


def attributes(data: SourceData) -> dict[str, pd.Series]:
    """Plain, non-identifying attributes per record (strings; '' where absent)."""
    records, content = data.records, data.content
    out = {
        "ethnicity": records.ethnicity.astype(str),
        "sex": records.sex.astype(str),
        "age_band": age_band(records),
        "flags": records["flags"].astype(str),
    }
    if data.kind == "ssda903":
        header = content["header"].set_index(KEYS)
        ad1 = content.get("ad1")
        out["mother"] = _text(records, header.MOTHER)
        for name, column in (("nb_adopters", "NB_ADOPTR"), ("sex_adopters", "SEX_ADOPTR"),
                             ("ls_adopters", "LS_ADOPTR")):
            out[name] = (_text(records, ad1.set_index(KEYS)[column]) if ad1 is not None
                         else pd.Series("", index=records.index))
    elif data.kind in ("asg-children", "asg-adopters"):
        table = content[source_name(data.kind)].set_index(KEYS)
        wanted = {"asg-children": ["sibling_group", "siblings_placed_together",
                                   "siblings_placed_separately", "la_code"],
                  "asg-adopters": ["household_ref", "adopter_number", "relationship_status",
                                   "children_matched", "children_placed"]}[data.kind]
        for column in wanted:
            out[column] = _text(records, table[column]) if column in table else ""
    return out


def _text(records: pd.DataFrame, values: pd.Series) -> pd.Series:
    return _per_record(records, values.astype(str)).fillna("").astype(str)


def age_band(records: pd.DataFrame) -> pd.Series:
    """Age at the end of the collection year, banded as in published tables."""
    dob = pd.to_datetime(records.dob, errors="coerce")
    period = pd.to_numeric(records.period, errors="coerce")
    end = pd.to_datetime(period.where(period.between(1900, 2100)).astype("Int64").astype(str)
                         + "-03-31", errors="coerce")
    age = (end.dt.year - dob.dt.year) - ((end.dt.month * 100 + end.dt.day)
                                         < (dob.dt.month * 100 + dob.dt.day))
    bands = pd.cut(age, [-np.inf, -0.5, 0.5, 4.5, 9.5, 15.5, 17.5, np.inf],
                   labels=["unborn", "under 1", "1-4", "5-9", "10-15", "16-17", "18+"])
    return bands.astype(str).where(age.notna(), "unknown")
