"""Vectorised checks and harmonisation of identifier values: UPN, dates, sex, postcode, ethnicity.

Each function takes a column of raw text and returns the cleaned column plus a mask per problem
found (flag code -> boolean array), so readers can flag rows without looping over them.
"""

import re
from functools import cache

import numpy as np
import pandas as pd

from linkage.config import load_config

CHECK_ALPHABET = "ABCDEFGHJKLMNPQRTUVWXYZ"
UPN_PATTERN = r"^[A-HJ-NP-RT-Z][0-9]{11}[0-9A-HJ-NP-RT-Z]$"  # ASCII digits only
POSTCODE_PATTERN = r"^[A-Z]{1,2}[0-9][A-Z0-9]?[0-9][A-Z]{2}$"
Masks = dict[str, np.ndarray]


@cache
def source_codes() -> dict:
    """The code sets of ``configs/sources.yaml``."""
    return load_config("sources.yaml")


@cache
def la_numbers() -> frozenset[str]:
    ranges = source_codes()["upn"]["la_number_ranges"]
    return frozenset(f"{n:03d}" for low, high in ranges for n in range(low, high + 1))


def text(values) -> pd.Series:
    """Raw values as stripped text, missing values as ''."""
    series = pd.Series(values, dtype=object)
    return series.where(series.notna(), "").astype(str).str.strip()


def upn_check_letter(upns: pd.Series) -> pd.Series:
    """The check letter each well-formed 13-character UPN should start with.

    Characters 2 to 13 are weighted by their position (2 to 13); a digit counts as its value
    and a final letter as its index in the check alphabet; the sum mod 23 picks the letter.
    """
    if upns.empty:
        return pd.Series([], dtype=object, index=upns.index)
    chars = np.frombuffer("".join(upns.tolist()).encode("ascii"), dtype=np.uint8)
    chars = chars.reshape(-1, 13)[:, 1:].astype(np.int64)
    values = chars - ord("0")
    letter_value = np.full(256, 0, dtype=np.int64)
    for index, letter in enumerate(CHECK_ALPHABET):
        letter_value[ord(letter)] = index
    is_letter = chars >= ord("A")
    values[is_letter] = letter_value[chars[is_letter]]
    remainder = (values * np.arange(2, 14)).sum(axis=1) % 23
    return pd.Series(np.array(list(CHECK_ALPHABET), dtype=object)[remainder], index=upns.index)


def clean_upns(values, unknown_codes=None) -> tuple[pd.Series, pd.Series, Masks]:
    """Upper-case and validate UPNs.

    Returns the UPNs (kept even when flagged, blank for a UN code), the UN code where one was
    given instead, and the problem masks. ``unknown_codes`` may carry a separate UN code column.
    """
    upn = text(values).str.upper().str.replace(" ", "", regex=False)
    codes = set(source_codes()["upn"]["unknown_codes"])
    is_code = upn.isin(codes)
    unknown = upn.where(is_code, "")
    if unknown_codes is not None:
        given = text(unknown_codes).str.upper()
        unknown = unknown.where(unknown != "", given.where(given.isin(codes), ""))
    upn = upn.where(~is_code, "")
    present = upn != ""
    well_formed = upn.str.match(UPN_PATTERN)
    masks = {
        "upn_missing": (~present & (unknown == "")).to_numpy(),
        "upn_bad_format": (present & ~well_formed).to_numpy(),
        "upn_bad_check_letter": np.zeros(len(upn), dtype=bool),
        "upn_bad_la": (well_formed & ~upn.str.slice(1, 4).isin(la_numbers())).to_numpy(),
        "upn_temporary": (well_formed & upn.str.slice(12, 13).str.isalpha()).to_numpy(),
    }
    if well_formed.any():
        formed = upn[well_formed]
        wrong = formed.str.slice(0, 1) != upn_check_letter(formed)
        rows = np.flatnonzero(well_formed.to_numpy())[wrong.to_numpy()]
        masks["upn_bad_check_letter"][rows] = True
    for code in sorted(codes):
        masks[f"upn_unknown_{code}"] = (unknown == code).to_numpy()
    return upn, unknown, masks


def upn_is_valid(upn: pd.Series) -> np.ndarray:
    """Well-formed with the right check letter.

    An LA number missing from the list is flagged (``upn_bad_la``) but does not make the UPN
    invalid: LA codes change with reorganisations, and DOMAIN.md's own valid example
    H243278544154 carries one.
    """
    cleaned, _, masks = clean_upns(upn)
    present = (cleaned != "").to_numpy()  # a UN code is no UPN
    return present & ~(masks["upn_bad_format"] | masks["upn_bad_check_letter"])


def parse_dates(values, formats: list[str]) -> tuple[pd.Series, np.ndarray, np.ndarray]:
    """Parse dates trying each format in turn; returns dates, missing mask, unreadable mask."""
    raw = text(values)
    parsed = pd.Series(pd.NaT, index=raw.index, dtype="datetime64[s]")
    for fmt in formats:
        todo = parsed.isna() & (raw != "")
        if not todo.any():
            break
        attempt = pd.to_datetime(raw[todo], format=fmt, errors="coerce")
        parsed[todo] = attempt.astype("datetime64[s]")
    missing = (raw == "").to_numpy()
    return parsed.dt.normalize(), missing, (parsed.isna().to_numpy() & ~missing)


def harmonise_sex(values, code_set: dict) -> tuple[pd.Series, Masks]:
    """Map a collection's sex codes to M, F or U."""
    raw = text(values).str.upper()
    mapping = {str(k).upper(): v for k, v in code_set.items()}
    sex = raw.map(mapping)
    masks = {
        "sex_missing": (raw == "").to_numpy(),
        "sex_invalid": (sex.isna() & (raw != "")).to_numpy(),
        "sex_unknown": (sex == "U").to_numpy(),
    }
    return sex.fillna("U"), masks


def normalise_postcodes(values) -> tuple[pd.Series, Masks]:
    """Upper-case, single space before the inward code; invalid postcodes dropped."""
    raw = text(values)
    compact = raw.str.upper().str.replace(r"\s+", "", regex=True)
    valid = compact.str.match(POSTCODE_PATTERN)
    normal = (compact.str.slice(0, -3) + " " + compact.str.slice(-3)).where(valid, "")
    masks = {
        "postcode_invalid": ((raw != "") & ~valid).to_numpy(),
        "postcode_reformatted": (valid & (normal != raw)).to_numpy(),
    }
    return normal, masks


def harmonise_ethnicity(values) -> tuple[pd.Series, Masks]:
    """The 20 main codes; school census extended codes rolled up to their main code."""
    codes = source_codes()["ethnicity"]
    raw = text(values).str.upper()
    main = raw.where(raw.isin(codes["codes"]), raw.map(codes["extended"]))
    invalid = main.isna() & (raw != "")
    return main.fillna(""), {"ethnicity_invalid": invalid.to_numpy()}


def join_flags(masks: Masks, n: int) -> np.ndarray:
    """One ';'-separated string of flag codes per row ('' for a clean row)."""
    out = np.full(n, "", dtype=object)
    for code in sorted(masks):
        mask = masks[code]
        if mask.any():
            out[mask] = out[mask] + code + ";"
    flagged = np.flatnonzero(out != "")
    out[flagged] = [flags[:-1] for flags in out[flagged]]
    return out


def repeated_upns(upn: pd.Series, group: pd.Series, eligible: np.ndarray | None = None
                  ) -> np.ndarray:
    """Rows whose UPN appears on another eligible row of the same group (one return)."""
    key = text(upn).str.upper()
    usable = (key != "") & ~key.str.startswith("UN")
    if eligible is not None:
        usable &= eligible
    frame = pd.DataFrame({"group": text(group).to_numpy(), "upn": key.to_numpy()})[
        usable.to_numpy()]
    out = np.zeros(len(upn), dtype=bool)
    out[np.flatnonzero(usable.to_numpy())[frame.duplicated(keep=False).to_numpy()]] = True
    return out


def merge_masks(*parts: Masks) -> Masks:
    merged: Masks = {}
    for part in parts:
        for code, mask in part.items():
            merged[code] = merged[code] | mask if code in merged else mask
    return merged


def as_collection_year(value) -> int | None:
    """A collection year from 2024, "2024" or "2023-24" (the year ending 31 March 2024)."""
    text_value = str(value).strip()
    span = re.fullmatch(r"((?:19|20)[0-9]{2})[-/]([0-9]{2})", text_value)
    if span and int(span.group(2)) == (int(span.group(1)) + 1) % 100:
        return int(span.group(1)) + 1
    if re.fullmatch(r"(19|20)[0-9]{2}", text_value):
        return int(text_value)
    return None
