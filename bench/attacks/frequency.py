"""Frequency alignment: the most common encoding is the most common public value, and so on.

The classic attack on deterministic encodings (Kuzu, Kantarcioglu, Durham and Malin, "A
constraint satisfaction cryptanalysis of Bloom filters in private record linkage", PETS 2011;
Christen, Schnell, Vatsalan and Ranbaduge, "Efficient cryptanalysis of Bloom filters for
privacy-preserving record linkage", PAKDD 2017): rank the distinct encodings of a column by
how many people carry them, rank the public values by their known population share, and give
each encoding the value of the same rank. Run on every token and filter column for which a
public distribution exists, and again within groups (per salt token, per sex, per plain
year-month or year) where the group narrows the public distribution.
"""

import functools
import re

import numpy as np
import pandas as pd

from bench.attacks.knowledge import Knowledge, transform_of
from bench.attacks.view import View
from linkage.pseudonymise.tokens import date_part

DATE_TRANSFORMS = {"date", "date_swapped", "year", "year_month", "year_day", "month_day",
                   "sex_date", "sex_year"}
DATE_PREFIX = re.compile(r"^\d{4}(-\d{2})?$")


def frequency_attack(view: View, knowledge: Knowledge, seed: int = 0
                     ) -> dict[str, dict[str, pd.Series]]:
    """Per attacked column, per strategy ('global', 'by <column>'): the guessed plaintext of
    every row (aligned with ``view.tokens``; None where no guess)."""
    people = _counting_unit(view)
    out = {}
    for column in view.bloom_columns() + view.token_columns():
        if _public_values(column, knowledge, None) is None:
            continue  # no public distribution (UPNs, postcodes, event dates)
        strategies = {"global": None}
        strategies.update({f"by {g}": g for g in grouping_columns(view, column)})
        out[column] = {name: align(view.tokens, people, column, group, knowledge, seed)
                       for name, group in strategies.items()}
    return out


def chosen_strategy(column: str, strategies: dict[str, pd.Series]) -> str:
    """The strategy an attacker picks without knowing the truth: a salt group first, then a
    group that narrows the public distribution (sex for forenames, a date prefix for dates)."""
    names = list(strategies)
    for want in ("salt", "birth_year_month", "sex"):
        for name in names:
            if want in name and name != "global":
                if want == "sex" and ("surname" in column or transform_of(column) != "bloom"):
                    continue
                return name
    return "global"


def grouping_columns(view: View, column: str) -> list[str]:
    """Columns that split ``column``'s records into groups the attacker can use: tokens
    named as salts, plain sex, and plain year-month or year columns (for dates)."""
    tokens = view.tokens
    groups = [c for c in view.token_columns() if "salt" in c.lower() and c != column]
    for plain in view.plain_columns():
        values = tokens[plain].dropna().astype(str)
        if not len(values):
            continue
        sample = values.iloc[: 1000]
        forename_like = transform_of(column) == "bloom" and "surname" not in column
        is_sex = set(sample.unique()) <= {"M", "F", "U", ""}
        is_date_prefix = sample.str.match(DATE_PREFIX.pattern).mean() > 0.9
        if (is_sex and forename_like) or (is_date_prefix and
                                          transform_of(column) in DATE_TRANSFORMS):
            groups.append(plain)
    return groups


def _counting_unit(view: View) -> pd.Series:
    """Who carries an encoding: the spine's person where known (population frequencies count
    people, not records), else the record itself."""
    people = view.person_keys()
    fallback = pd.Series("r" + view.tokens.index.astype(str), index=view.tokens.index)
    return people.where(people.notna(), fallback)


def align(tokens: pd.DataFrame, people: pd.Series, column: str, group: str | None,
          knowledge: Knowledge, seed: int) -> pd.Series:
    """Rank-align ``column``'s encodings (within ``group`` values) with public values."""
    rows = pd.DataFrame({"code": tokens[column], "person": people,
                         "group": tokens[group].astype(str) if group else ""})
    rows = rows[rows.code.notna()]
    counts = rows.drop_duplicates(["group", "code", "person"]).groupby(
        ["group", "code"], sort=False).size().rename("count").reset_index()
    # ties broken at random (seeded), not by the encoding's bytes
    counts["tie"] = np.random.default_rng(seed).random(len(counts))
    counts = counts.sort_values(["group", "count", "tie"], ascending=[True, False, True])
    counts["rank"] = counts.groupby("group").cumcount()
    public = _public_ranked(column, counts.group.unique(), knowledge, group)
    guessed = counts.merge(public, on=["group", "rank"], how="left")
    lookup = guessed.set_index(["group", "code"]).value
    index = pd.MultiIndex.from_arrays([rows.group, rows.code])
    out = pd.Series(None, index=tokens.index, dtype=object)
    out[rows.index] = lookup.reindex(index).to_numpy()
    return out.where(out.notna(), None)


def _public_ranked(column: str, groups: np.ndarray, knowledge: Knowledge,
                   group_column: str | None) -> pd.DataFrame:
    """(group, rank, value): the public values of each group, most common first."""
    transform = transform_of(column)
    prefixed = [g for g in groups if DATE_PREFIX.match(str(g))] if group_column else []
    if transform in DATE_TRANSFORMS and prefixed:
        return _date_values_by_prefix(transform, knowledge, prefixed)
    frames = []
    for value in groups:
        shares = _public_values(column, knowledge, value if group_column else None)
        if shares is None or not len(shares):
            continue
        frames.append(pd.DataFrame({"group": value, "rank": np.arange(len(shares)),
                                    "value": shares.index.to_numpy(dtype=object)}))
    if not frames:
        return pd.DataFrame({"group": [], "rank": [], "value": []})
    return pd.concat(frames, ignore_index=True)


def _date_values_by_prefix(transform: str, knowledge: Knowledge, prefixes: list[str]
                           ) -> pd.DataFrame:
    """Ranked public values of a date transform among the dates of each prefix, all groups
    at once (a uniform calendar: counts differ only where the calendar makes them)."""
    table = _calendar_values(transform, knowledge.first_year, knowledge.last_year)
    frames = []
    for width in sorted({len(p) for p in prefixes}):
        wanted = [p for p in prefixes if len(p) == width]
        rows = table.assign(group=table.iso.str.slice(0, width))
        rows = rows[rows.group.isin(wanted)]
        counts = rows.groupby(["group", "value"]).size().rename("n").reset_index()
        counts = counts.sort_values(["group", "n", "value"], ascending=[True, False, True])
        counts["rank"] = counts.groupby("group").cumcount()
        frames.append(counts[["group", "rank", "value"]])
    return pd.concat(frames, ignore_index=True)


@functools.lru_cache(maxsize=16)
def _calendar_values(transform: str, first_year: int, last_year: int) -> pd.DataFrame:
    """Every calendar date (ISO) with the transform's value(s) of it."""
    dates = pd.Series(_calendar(first_year, last_year))
    iso = dates.dt.strftime("%Y-%m-%d")
    if transform in ("sex_date", "sex_year"):
        part = date_part("date" if transform == "sex_date" else "year", dates)
        return pd.DataFrame({"iso": pd.concat([iso, iso], ignore_index=True),
                             "value": pd.concat(["F|" + part, "M|" + part],
                                                ignore_index=True)})
    table = pd.DataFrame({"iso": iso, "value": date_part(transform, dates)})
    return table[table.value != ""]


def _public_values(column: str, knowledge: Knowledge, group: str | None
                   ) -> pd.Series | None:
    """Public values of ``column`` (index) by share, most common first; narrowed by the
    group's value where it means something (a sex, a date prefix)."""
    transform = transform_of(column)
    if transform == "bloom":
        return knowledge.names_for(column, group if group in ("F", "M") else None)
    if transform not in DATE_TRANSFORMS:
        return None
    return date_values(transform, knowledge, group if group and DATE_PREFIX.match(group)
                       else None)


def date_values(transform: str, knowledge: Knowledge, prefix: str | None = None
                ) -> pd.Series:
    """Shares of a date transform's values under the uniform calendar, optionally only
    dates starting with ``prefix`` ('2010' or '2010-10')."""
    table = _calendar_values(transform, knowledge.first_year, knowledge.last_year)
    if prefix:
        table = table[table.iso.str.startswith(prefix)]
    shares = table.value.value_counts(normalize=True)
    return shares.sort_index().sort_values(ascending=False, kind="stable")


@functools.lru_cache(maxsize=4)
def _calendar(first_year: int, last_year: int) -> pd.DatetimeIndex:
    return pd.date_range(f"{first_year}-01-01", f"{last_year}-12-31")
