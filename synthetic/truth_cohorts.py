"""The outcomes-statistics cohorts counted from a synthetic world's truth files alone.

This is the answer a perfect linkage of the returns would give, written independently of the
toolkit's own cohort code (which it checks). A return for year P holds only what was open in
year P, so intervals outside the world's collection years are never seen, and a cohort is only
answered for a year whose whole look-back the world covers.

Collection year P runs 1 April P-1 to 31 March P ("day"). An interval with a blank end is still
open. "Open at day": start <= day and (end blank or end > day). "Overlaps [low, high]":
start <= high and (end blank or end >= low).

Each cohort is computed for a unit: a person (the deduplicated figure) or a (person, LA) pair,
each LA seeing only its own records (the naive national figure is the sum of the LAs' own
counts, which is the number of such pairs).
"""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from functools import cached_property
from pathlib import Path

import numpy as np
import pandas as pd

PERSON = ["person_id"]
PERSON_LA = ["person_id", "la_code"]
LOOK_BACK_YEARS = 6


class CohortRefused(ValueError):
    """A cohort the truth cannot answer right (unknown, or years the world does not cover)."""


@dataclass
class Truth:
    """The truth tables a cohort needs, each read once, limited to what the returns show."""

    folder: Path
    short_breaks: frozenset[str]

    @cached_property
    def years(self) -> list[int]:
        return sorted(pd.read_parquet(self.folder / "collection_years.parquet").year.tolist())

    @cached_property
    def window(self) -> tuple[pd.Timestamp, pd.Timestamp]:
        return _year_start(self.years[0]), _day(self.years[-1])

    def _read(self, name: str, start: str, end: str) -> pd.DataFrame:
        frame = pd.read_parquet(self.folder / f"{name}.parquet")
        for column in frame.columns:
            if column.endswith("_date") or column in {"decom", "dec", "duc"}:
                frame[column] = pd.to_datetime(frame[column])
        frame["la_code"] = frame.la_code.astype(str)
        return frame[_overlaps(frame[start], frame[end], *self.window)].reset_index(drop=True)

    @cached_property
    def care(self) -> pd.DataFrame:
        """903 episodes that make a child looked after: short breaks left out."""
        episodes = self._read("cla_episodes", "decom", "dec")
        return episodes[~episodes.ls.isin(self.short_breaks)].reset_index(drop=True)

    @cached_property
    def need(self) -> pd.DataFrame:
        return self._read("cin_episodes", "referral_date", "closure_date")

    @cached_property
    def plans(self) -> pd.DataFrame:
        """Every plan, ending no later than its CIN episode (a plan counts only while its
        episode is open), with its effective start and end as ``start`` and ``end``."""
        plans = pd.read_parquet(self.folder / "cpp_plans.parquet")
        for column in ("referral_date", "start_date", "end_date"):
            plans[column] = pd.to_datetime(plans[column])
        plans["la_code"] = plans.la_code.astype(str)
        episodes = pd.read_parquet(self.folder / "cin_episodes.parquet")
        episodes["referral_date"] = pd.to_datetime(episodes.referral_date)
        episodes["closure_date"] = pd.to_datetime(episodes.closure_date)
        episodes["la_code"] = episodes.la_code.astype(str)
        plans = plans.merge(episodes.drop_duplicates(["person_id", "la_code", "referral_date"]),
                            on=["person_id", "la_code", "referral_date"], how="left")
        end = pd.concat([plans.end_date, plans.closure_date], axis=1).min(axis=1)
        plans = plans.assign(start=plans.start_date, end=end)
        return plans[_overlaps(plans.start, plans.end, *self.window)].reset_index(drop=True)

    @cached_property
    def uasc(self) -> pd.DataFrame:
        frame = pd.read_parquet(self.folder / "uasc.parquet")
        frame["duc"] = pd.to_datetime(frame.duc)
        frame["la_code"] = frame.la_code.astype(str)
        return frame.drop_duplicates(PERSON_LA)


def truth_cohort(truth_folder: Path, name: str, period: int,
                 short_breaks: frozenset[str] | None = None) -> tuple[set[int], int]:
    """The persons in cohort ``name`` for collection year ``period``, and the naive national
    count (the sum of each LA's own count of its children in the cohort).

    ``short_breaks`` are the 903 legal statuses of short breaks (default: the synthetic world's
    config); raises :class:`CohortRefused` for an unknown cohort or a year the world does not
    cover.
    """
    if name not in COHORTS:
        raise CohortRefused(f"unknown cohort {name!r}: one of {', '.join(sorted(COHORTS))}")
    truth = Truth(Path(truth_folder), short_breaks if short_breaks is not None
                  else _configured_short_breaks())
    needed = range(period - LOOK_BACK_YEARS + 1 if name.startswith("ever_") else period,
                   period + 1)
    missing = [year for year in needed if year not in truth.years]
    if missing:
        raise CohortRefused(f"cohort {name} for {period} needs the collection year(s) "
                            f"{', '.join(map(str, missing))}, which the world does not hold")
    cohort = COHORTS[name]
    persons = cohort(truth, period, PERSON)
    pairs = cohort(truth, period, PERSON_LA)
    return set(persons.person_id.astype(int).tolist()), len(pairs)


def _configured_short_breaks() -> frozenset[str]:
    from synthetic.world import load_config

    return frozenset(load_config()["truth_cohorts"]["short_break_legal_statuses"])


def _year_start(period: int) -> pd.Timestamp:
    return pd.Timestamp(date(period - 1, 4, 1))


def _day(period: int) -> pd.Timestamp:
    return pd.Timestamp(date(period, 3, 31))


def _overlaps(start: pd.Series, end: pd.Series, low, high) -> np.ndarray:
    return ((start <= high) & (end.isna() | (end >= low))).to_numpy()


def _open_at(start: pd.Series, end: pd.Series, day) -> np.ndarray:
    return ((start <= day) & (end.isna() | (end > day))).to_numpy()


def _units(frame: pd.DataFrame, keep: np.ndarray, unit: list[str]) -> pd.DataFrame:
    return frame.loc[keep, unit].drop_duplicates().reset_index(drop=True)


def _minus(left: pd.DataFrame, right: pd.DataFrame, unit: list[str]) -> pd.DataFrame:
    """Units of ``left`` not in ``right``."""
    merged = left.merge(right.drop_duplicates(), on=unit, how="left", indicator=True)
    return merged.loc[merged["_merge"] == "left_only", unit].reset_index(drop=True)


Cohort = Callable[[Truth, int, list[str]], pd.DataFrame]
# Each kind of event as (rows, start, end): looked after, in need, on a plan.
EVENTS: dict[str, Callable[[Truth], tuple[pd.DataFrame, pd.Series, pd.Series]]] = {
    "cla": lambda t: (t.care, t.care.decom, t.care.dec),
    "cin": lambda t: (t.need, t.need.referral_date, t.need.closure_date),
    "cpp": lambda t: (t.plans, t.plans.start, t.plans.end),
}


def _in_year(kind: str) -> Cohort:
    """Units with an event of ``kind`` overlapping the year."""
    def cohort(truth: Truth, period: int, unit: list[str]) -> pd.DataFrame:
        rows, start, end = EVENTS[kind](truth)
        return _units(rows, _overlaps(start, end, _year_start(period), _day(period)), unit)
    return cohort


def _at_day(kind: str) -> Cohort:
    """Units with an event of ``kind`` open at 31 March."""
    def cohort(truth: Truth, period: int, unit: list[str]) -> pd.DataFrame:
        rows, start, end = EVENTS[kind](truth)
        return _units(rows, _open_at(start, end, _day(period)), unit)
    return cohort


def _in_six_years(kind: str) -> Cohort:
    """Units with an event of ``kind`` overlapping the six collection years to 31 March."""
    def cohort(truth: Truth, period: int, unit: list[str]) -> pd.DataFrame:
        rows, start, end = EVENTS[kind](truth)
        low = _year_start(period - LOOK_BACK_YEARS + 1)
        return _units(rows, _overlaps(start, end, low, _day(period)), unit)
    return cohort


cla_any_point, cla_31mar, ever_cla_6y = _in_year("cla"), _at_day("cla"), _in_six_years("cla")
cin_any_point, cin_31mar, ever_cin_6y = _in_year("cin"), _at_day("cin"), _in_six_years("cin")
cpp_any_point, on_plan_31mar, ever_cpp_6y = (_in_year("cpp"), _at_day("cpp"),
                                             _in_six_years("cpp"))


def cla_12m_31mar(truth: Truth, period: int, unit: list[str]) -> pd.DataFrame:
    """Looked after at day in a continuous spell that started on or before 1 April P-1."""
    spells = _spells(truth.care, unit)
    keep = _open_at(spells.start, spells.end, _day(period)) & (
        spells.start <= _year_start(period)).to_numpy()
    return _units(spells, keep, unit)


def cla_under_12m_31mar(truth: Truth, period: int, unit: list[str]) -> pd.DataFrame:
    return _minus(cla_31mar(truth, period, unit), cla_12m_31mar(truth, period, unit), unit)


def _spells(care: pd.DataFrame, unit: list[str]) -> pd.DataFrame:
    """Episodes chained into continuous spells of care (one starting the day the previous
    ended or the next day): one row per spell with its start and end (blank = open)."""
    episodes = care.sort_values([*unit, "decom", "dec"], kind="stable").reset_index(drop=True)
    far = pd.Timestamp.max.normalize()
    end = episodes.dec.fillna(far)
    # the latest end so far within the unit: an episode inside an earlier one extends nothing
    reach = end.groupby([episodes[c] for c in unit]).cummax()
    before = reach.groupby([episodes[c] for c in unit]).shift()
    new_spell = before.isna() | (episodes.decom > before + pd.Timedelta(days=1))
    spell = new_spell.cumsum()
    spells = episodes.assign(spell=spell.to_numpy(), reach=reach).groupby("spell").agg(
        **{c: (c, "first") for c in unit}, start=("decom", "min"), end=("reach", "max"))
    spells["end"] = spells.end.where(spells.end != far)
    return spells.reset_index(drop=True)


def cppo_31mar(truth: Truth, period: int, unit: list[str]) -> pd.DataFrame:
    return _minus(on_plan_31mar(truth, period, unit), cla_31mar(truth, period, unit), unit)


def cino_31mar(truth: Truth, period: int, unit: list[str]) -> pd.DataFrame:
    in_need = _minus(cin_31mar(truth, period, unit), on_plan_31mar(truth, period, unit), unit)
    return _minus(in_need, cla_31mar(truth, period, unit), unit)


def uasc_any_point(truth: Truth, period: int, unit: list[str]) -> pd.DataFrame:
    """Looked after while UASC in the year: an episode, in an LA whose UASC table lists the
    child, overlapping 1 April P-1 .. the earlier of day and DUC (blank DUC: still UASC)."""
    care = truth.care.merge(truth.uasc[["person_id", "la_code", "duc"]], on=PERSON_LA)
    high = care.duc.where(care.duc < _day(period), _day(period))
    low = _year_start(period)
    # a child who ceased to be UASC before the year began has no UASC time in it
    keep = (high >= low) & (care.decom <= high) & (care.dec.isna() | (care.dec >= low))
    return _units(care, keep.to_numpy(), unit)


COHORTS: dict[str, Cohort] = {
    "cin_31mar": cin_31mar,
    "cino_31mar": cino_31mar,
    "cppo_31mar": cppo_31mar,
    "cla_31mar": cla_31mar,
    "cla_12m_31mar": cla_12m_31mar,
    "cla_under_12m_31mar": cla_under_12m_31mar,
    "cla_any_point": cla_any_point,
    "cin_any_point": cin_any_point,
    "cpp_any_point": cpp_any_point,
    "ever_cin_6y": ever_cin_6y,
    "ever_cla_6y": ever_cla_6y,
    "ever_cpp_6y": ever_cpp_6y,
    "uasc_any_point": uasc_any_point,
}
