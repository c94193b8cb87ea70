"""What the attacker knows besides the linkage unit's view: public lists and assumptions.

- Names: Faker's ``en_GB`` lists stand in for ONS name-frequency lists. A STRONG attacker is
  assumed: the exact frequency of each name in the population (``Knowledge.from_population``,
  counted from the synthetic world's people; aggregate counts only, never a record).
- Dates of birth: children aged 0-25, every calendar day equally likely.
- The linkage schema (``configs/linkage_schema.yaml``) is public: which transform made each
  token column (a full date, a year-month, ...). Columns it does not name are guessed from
  their names.
"""

import datetime as dt
import functools
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from faker.providers.person.en_GB import Provider

from linkage.pseudonymise.bloom import normalise_name
from linkage.pseudonymise.bundle import linkage_schema
from linkage.sources.schema import RECORD_KEY

AGE_RANGE = (0, 25)
ASSUMPTIONS = {
    "names": "Faker en_GB lists (stand-in for ONS lists) with the exact population frequency "
             "of each name (known population distribution; conservative)",
    "dates_of_birth": "children aged 0-25 at the collection year; uniform calendar",
    "schema": "the linkage schema and Bloom parameters are public (manifest, configs)",
    "key": "the linkage key is NOT known",
}


@dataclass
class Knowledge:
    """Public name frequencies (normalised names -> share) and the date range of births."""

    forenames: dict[str, pd.Series]    # 'F', 'M', 'all'
    surnames: pd.Series
    middle_names: dict[str, pd.Series]  # 'F', 'M', 'all'; the forename lists when unknown
    first_year: int
    last_year: int

    @classmethod
    def from_population(cls, persons: pd.DataFrame, last_year: int) -> "Knowledge":
        """Exact population frequencies (the strong attacker) from a people table with
        ``forename``, ``surname``, ``sex`` columns: the people the data covers."""
        names = persons.assign(forename=normalise_name(persons.forename),
                               surname=normalise_name(persons.surname),
                               middle_name=normalise_name(persons.middle_name.fillna("")))
        forenames = {sex: _shares(names.forename[names.sex == sex]) for sex in ("F", "M")}
        forenames["all"] = _shares(names.forename)
        middle = {sex: _shares(names.middle_name[names.sex == sex]) for sex in ("F", "M")}
        middle["all"] = _shares(names.middle_name)
        return cls(forenames, _shares(names.surname), middle,
                   last_year - AGE_RANGE[1] - 1, last_year)

    @classmethod
    def from_public_lists(cls, last_year: int) -> "Knowledge":
        """Only the lists (a weaker attacker): uniform forenames, Faker's surname weights."""
        female = pd.Series(1.0, index=normalise_name(pd.Series(Provider.first_names_female)))
        male = pd.Series(1.0, index=normalise_name(pd.Series(Provider.first_names_male)))
        surnames = pd.Series(Provider.last_names)
        surnames.index = normalise_name(pd.Series(surnames.index))
        forenames = {"F": _normal(female), "M": _normal(male),
                     "all": _normal(pd.concat([female, male]))}
        return cls(forenames, _normal(surnames), forenames,
                   last_year - AGE_RANGE[1] - 1, last_year)

    def names_for(self, column: str, group: str | None = None) -> pd.Series:
        """Public name shares for a filter column (surname-like or forename-like), by sex
        when ``group`` is a sex code."""
        if "surname" in column:
            return self.surnames
        lists = self.middle_names if "middle" in column else self.forenames
        return lists.get(group or "all", lists["all"])

    def all_names(self) -> pd.Series:
        """Every public name (forenames and surnames) with its share."""
        both = pd.concat([self.forenames["all"], self.surnames])
        return _normal(both.groupby(level=0).sum())

    def calendar(self) -> pd.DatetimeIndex:
        """Every possible date of birth (uniform: each equally likely)."""
        return pd.date_range(dt.date(self.first_year, 1, 1), dt.date(self.last_year, 12, 31))


def _shares(values: pd.Series) -> pd.Series:
    values = values[values != ""]
    return values.value_counts(normalize=True).sort_index().sort_values(
        ascending=False, kind="stable")


def _normal(weights: pd.Series) -> pd.Series:
    weights = weights[weights.index != ""].groupby(level=0).sum()
    return (weights / weights.sum()).sort_index().sort_values(ascending=False, kind="stable")


@functools.cache
def column_transforms() -> dict[str, str]:
    """Token column -> its transform, from the public linkage schema (Bloom columns both with
    and without their ``_bloom`` suffix)."""
    schema = linkage_schema()
    out = {}
    for name, spec in schema["tokens"].items():
        out[name] = spec["transform"]
        out[name.removesuffix("_bloom")] = spec["transform"]
    for events in schema["events"].values():
        for event in events:
            # event dates are not dates of birth: no public distribution for them
            out[f"{event}_date"] = "event_date"
            out[f"{event}_week"] = "event_week"
    out["mother_child_dob"] = "date"
    return out


def transform_of(column: str) -> str | None:
    """What a token column encodes: the schema's word for it, else a guess from its name."""
    known = column_transforms()
    if column in known:
        return known[column]
    lowered = column.lower()
    for word, transform in (("name", "bloom"), ("year_month", "year_month"),
                            ("month_day", "month_day"), ("year_day", "year_day"),
                            ("dob", "date"), ("birth", "date")):
        if word in lowered:
            return transform
    return None


def insider_school_census(world: Path) -> pd.DataFrame:
    """What a school-census insider (a DfE analyst) holds: the plaintext pupil rows, as the
    toolkit reads them (record id, period, names, date of birth, sex). Attacker knowledge for
    the membership attack only; never used by the other attacks."""
    from linkage.pipelines.delivery import provider_jobs
    from linkage.sources import read_source

    frames = []
    for kind, code, paths, _name in provider_jobs(world / "providers"):
        if kind == "school-census":
            records = read_source(kind, paths, provider=code).records
            frames.append(records.assign(row=range(len(records))))
    keep = [*RECORD_KEY, "row", "forename", "surname", "dob", "sex", "ethnicity"]
    pupils = pd.concat(frames, ignore_index=True)
    return pupils[[c for c in keep if c in pupils]]
