"""Keyed tokens: HMAC-SHA256 of normalised values, truncated to 64 bits.

Values repeat a great deal (dates of birth, postcodes, sexes), so each distinct value is hashed
once and the token mapped back to every record that holds it.
"""

import hashlib
import hmac

import numpy as np
import pandas as pd

from linkage.sources.values import upn_is_valid

TOKEN_BYTES = 8


def keyed_tokens(values: pd.Series, key: bytes) -> pd.Series:
    """One signed 64-bit token per value (HMAC-SHA256 with ``key``); missing where value is ''."""
    codes, uniques = pd.factorize(values.fillna("").to_numpy(dtype=object), sort=False)
    keyed = hmac.new(key, digestmod=hashlib.sha256)  # keyed once; copied for each value

    def token(value: str) -> int:
        mac = keyed.copy()
        mac.update(value.encode("utf-8"))
        return int.from_bytes(mac.digest()[:TOKEN_BYTES], "big", signed=True)

    uniques = list(uniques)
    tokens = np.array([token(value) if value else 0 for value in uniques], dtype=np.int64)
    missing = np.array([value == "" for value in uniques], dtype=bool)
    out = pd.array(tokens[codes], dtype="Int64")
    out[missing[codes]] = pd.NA
    return pd.Series(out, index=values.index)


def _dates(dob: pd.Series) -> pd.Series:
    return pd.to_datetime(dob, errors="coerce")


def on_distinct(columns: list[pd.Series], function) -> pd.Series:
    """``function`` applied to each distinct row of ``columns`` once, mapped back to all rows."""
    codes = np.zeros(len(columns[0]), dtype=np.int64)
    for column in columns:
        column_codes, _ = pd.factorize(column.astype(object), use_na_sentinel=False)
        codes = codes * (column_codes.max() + 1 if len(column_codes) else 1) + column_codes
    combined, first = np.unique(codes, return_index=True)
    rows = np.searchsorted(combined, codes)
    distinct = [column.iloc[first].reset_index(drop=True) for column in columns]
    result = function(distinct)
    return pd.Series(result.to_numpy()[rows], index=columns[0].index)


def transform(name: str, columns: list[pd.Series]) -> pd.Series:
    """The normalised text a token is made from ('' where there is nothing to hash)."""
    return on_distinct(columns, lambda distinct: _transform(name, distinct))


def salt_text(spec: dict, records: pd.DataFrame, schema: dict) -> pd.Series | None:
    """The salt of a salted token: the text its ``salt`` token is made from ('' where there
    is none, and for every record of a source without the salt's fields); None if unsalted."""
    if "salt" not in spec:
        return None
    salt = schema["tokens"][spec["salt"]]
    if not all(field in records for field in salt["fields"]):
        return pd.Series("", index=records.index, dtype=object)
    return transform(salt["transform"], [records[field] for field in salt["fields"]])


def _transform(name: str, columns: list[pd.Series]) -> pd.Series:
    if name == "upn":
        upn = columns[0].fillna("").astype(str)
        # a UN code, an invalid UPN or a temporary one (a year's stopgap) gives no token
        permanent = upn.str.slice(-1).str.isdigit()
        return upn.where(upn_is_valid(upn) & permanent.to_numpy(), "")
    if name == "text":
        return columns[0].fillna("").astype(str)
    if name == "postcode_sector":
        postcode = columns[0].fillna("").astype(str)
        return postcode.str.slice(0, -2).where(postcode != "", "")
    if name == "sex_date":
        sex = columns[0].fillna("").astype(str)
        part = _transform("date", [columns[1]])
        # sex never stands alone: two values would give themselves away by their frequency
        return (sex + "|" + part).where(sex.isin(["M", "F"]) & (part != ""), "")
    return date_part(name, _dates(columns[0]))


def date_part(name: str, dates: pd.Series) -> pd.Series:
    known = dates.notna()
    year = dates.dt.year.astype("Int64").astype(str).str.zfill(4)
    month = dates.dt.month.astype("Int64").astype(str).str.zfill(2)
    day = dates.dt.day.astype("Int64").astype(str).str.zfill(2)
    if name == "date":
        text = year + "-" + month + "-" + day
    elif name == "date_swapped":
        # the same date with day and month exchanged, where that is another valid date
        swappable = known & (dates.dt.day <= 12) & (dates.dt.day != dates.dt.month)
        return (year + "-" + day + "-" + month).where(swappable, "").fillna("")
    elif name == "date_unordered":
        # the year and the unordered pair (day, month): a date and its day/month swap alike,
        # so a swap typo keeps the salt of a record's name filters
        low = np.minimum(dates.dt.day, dates.dt.month).astype("Int64").astype(str).str.zfill(2)
        high = np.maximum(dates.dt.day, dates.dt.month).astype("Int64").astype(str).str.zfill(2)
        text = year + "|" + low + "|" + high
    elif name == "iso_week":
        iso = dates.dt.isocalendar()
        text = iso.year.astype(str) + "-W" + iso.week.astype(str).str.zfill(2)
    else:
        raise ValueError(f"unknown token transform {name}")
    return text.where(known, "").fillna("")
