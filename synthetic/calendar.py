"""Dates as whole days (numpy datetime64[D]) and the collection years of the world."""

from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

DAY = np.timedelta64(1, "D")


@dataclass(frozen=True)
class Calendar:
    """Collection years ending 31 March: year Y spans Y-1-04-01 .. Y-03-31."""

    first_year: int
    years: int

    @property
    def collection_years(self) -> list[int]:
        return list(range(self.first_year, self.first_year + self.years))

    @property
    def start(self) -> np.datetime64:
        return np.datetime64(f"{self.first_year - 1}-04-01")

    @property
    def end(self) -> np.datetime64:
        return np.datetime64(f"{self.first_year + self.years - 1}-03-31")

    def year_start(self, year: int) -> np.datetime64:
        return np.datetime64(f"{year - 1}-04-01")

    def year_end(self, year: int) -> np.datetime64:
        return np.datetime64(f"{year}-03-31")

    def year_index(self, dates: np.ndarray) -> np.ndarray:
        """Index of the collection year holding each date (clipped to the window)."""
        bounds = np.array([self.year_start(y) for y in self.collection_years[1:]])
        return np.searchsorted(bounds, dates, side="right")


def dates_of(frame: pd.DataFrame, column: str) -> np.ndarray:
    """A frame's date column as whole days (NaT where missing)."""
    return frame[column].to_numpy().astype("datetime64[D]")


def dates_for(keys, dates: pd.Series) -> np.ndarray:
    """Look up each key's date in ``dates`` (indexed by key, unique); NaT where absent."""
    looked_up = dates.astype("datetime64[s]").reindex(np.asarray(keys))
    return looked_up.to_numpy().astype("datetime64[D]")


def years_between(earlier: np.ndarray, later: np.ndarray) -> np.ndarray:
    """Whole years of age at ``later`` for a birth date ``earlier`` (vectorised)."""
    e = earlier.astype("datetime64[D]")
    lt = later.astype("datetime64[D]")
    ey, ly = e.astype("datetime64[Y]").astype(int), lt.astype("datetime64[Y]").astype(int)
    # compare month and day, not day of year, so that leap years do not shift birthdays
    return ly - ey - (_month_day(lt) < _month_day(e))


def _month_day(d: np.ndarray) -> np.ndarray:
    month = d.astype("datetime64[M]").astype(int) % 12 + 1
    day = (d - d.astype("datetime64[M]")).astype(int) + 1
    return month * 100 + day


def birthday(dob: np.ndarray, years: int) -> np.ndarray:
    """The date each person turns ``years`` (29 February birthdays fall on 28 February)."""
    year, month, day = date_parts(dob)
    return from_parts(year + years, month, day)


def school_entry_year(dob: np.ndarray) -> np.ndarray:
    """The calendar year whose September a child starts reception (the year they turn 5)."""
    year, month, _ = date_parts(dob)
    return np.where(month >= 9, year, year - 1) + 5


def add_days(dates: np.ndarray, days: np.ndarray) -> np.ndarray:
    return dates + np.round(days).astype(int) * DAY


def date_parts(dates: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Year, month and day of each date."""
    d = dates.astype("datetime64[D]")
    year = d.astype("datetime64[Y]").astype(int) + 1970
    month = d.astype("datetime64[M]").astype(int) % 12 + 1
    day = (d - d.astype("datetime64[M]")).astype(int) + 1
    return year, month, day


def from_parts(year: np.ndarray, month: np.ndarray, day: np.ndarray) -> np.ndarray:
    """Dates from parts; a day past the month's end is clamped to its last day."""
    first = (
        (np.asarray(year) - 1970) * 12 + np.asarray(month) - 1
    ).astype("datetime64[M]").astype("datetime64[D]")
    next_first = (first.astype("datetime64[M]") + 1).astype("datetime64[D]")
    length = (next_first - first).astype(int)
    return first + (np.minimum(np.asarray(day), length) - 1) * DAY


def format_dates(dates: np.ndarray, fmt: str) -> np.ndarray:
    """Format dates with ``fmt`` (strftime); NaT becomes an empty string."""
    arr = pa.array(dates.astype("datetime64[D]"), type=pa.date32())
    text = pc.strftime(pc.cast(arr, pa.timestamp("s")), format=fmt)
    return np.asarray(pc.fill_null(text, "").to_numpy(zero_copy_only=False), dtype=object)
