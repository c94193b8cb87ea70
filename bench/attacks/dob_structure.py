"""Date-of-birth structure recovery: keyed part tokens rebuild the calendar.

A date of birth travels as several keyed tokens (the date; year-month; year-day; month-day;
sex-year; the date with day and month swapped). Each alone is a random number, but records
that share a part share that part's value, so the parts form a graph (the structural attack on
"field-level" encodings in Vidanage, Ranbaduge, Christen and Schnell, "Efficient pattern
mining based cryptanalysis for privacy-preserving record linkage", ICDE 2019, and the graph
matching attacks of Culnane, Rubinstein and Teague, 2017):

- year classes: year-month and year-day (and sex-year) tokens joined through records;
- month classes: year-month and month-day tokens; day classes: year-day and month-day tokens.

Classes are then named: from any plain column (birth year-month, year, age band and
collection year), from the calendar's shape (day 31 meets 7 months, day 30 meets 11, February
meets no day 30), and from the swapped-date token, which equals the date token of (year, day,
month): day class d is month class d for days up to 12. What stays ambiguous is guessed and
counted as candidate dates.
"""

import numpy as np
import pandas as pd

from bench.attacks.knowledge import Knowledge, transform_of
from bench.attacks.view import View
from linkage.match.components import connected_components

MONTH_DAYS = {1: 31, 2: 29, 3: 31, 4: 30, 5: 31, 6: 30, 7: 31, 8: 31, 9: 30, 10: 31, 11: 30,
              12: 31}
AGE_BANDS = {"unborn": (-1, -1), "under 1": (0, 0), "1-4": (1, 4), "5-9": (5, 9),
             "10-15": (10, 15), "16-17": (16, 17), "18+": (18, 25)}


def dob_structure_attack(view: View, knowledge: Knowledge) -> pd.DataFrame:
    """Per record: ``guess`` (ISO date or None) and ``candidates`` (dates still possible)."""
    tokens = view.tokens
    parts = _part_columns(view)
    out = pd.DataFrame({"guess": None, "candidates": np.nan}, index=tokens.index)
    if "date" not in parts:
        return out
    has_date = tokens[parts["date"]].notna().to_numpy()
    frame = tokens.loc[has_date]
    year_class = _classes(frame, parts, [("year_month", "year_day"), ("year_month", "sex_year"),
                                         ("year_day", "sex_year")], fallback=parts["date"])
    month_class = _classes(frame, parts, [("year_month", "month_day")])
    day_class = _classes(frame, parts, [("year_day", "month_day")])
    years, year_choices = _year_labels(frame, view, year_class, knowledge)
    months, month_choices = _month_labels(frame, view, month_class, day_class)
    days, day_choices = _day_labels(frame, parts, month_class, day_class, months)
    guess, candidates = _assemble(years, months, days, year_choices, month_choices,
                                  day_choices)
    # records with one date token are one date: give them all the most common guess
    guess = _per_token_mode(frame[parts["date"]], guess)
    out.loc[has_date, "guess"] = guess.to_numpy()
    out.loc[has_date, "candidates"] = candidates.to_numpy()
    return out


def _part_columns(view: View) -> dict[str, str]:
    """Transform -> token column for the date of birth's tokens present in the view (the
    full date is the most widely carried 'date' column: not a mother's child's date)."""
    found: dict[str, list[str]] = {}
    for column in view.token_columns():
        transform = transform_of(column)
        if transform in ("date", "date_swapped", "year_month", "year_day", "month_day",
                         "sex_date", "sex_year"):
            found.setdefault(transform, []).append(column)
    counts = view.tokens.notna().sum()
    return {t: max(columns, key=lambda c: counts[c]) for t, columns in found.items()}


def _classes(frame: pd.DataFrame, parts: dict[str, str], edges: list[tuple[str, str]],
             fallback: str | None = None) -> pd.Series:
    """Class of each record: connected components of the part tokens joined on records (-1
    where the parts are missing); by ``fallback`` token alone when no edge can be built."""
    usable = [(a, b) for a, b in edges if a in parts and b in parts]
    if not usable:
        if fallback is None:
            return pd.Series(-1, index=frame.index)
        codes, _ = pd.factorize(frame[fallback])
        return pd.Series(codes, index=frame.index)
    names = sorted({p for edge in usable for p in edge})
    offsets, codes = {}, {}
    total = 0
    for name in names:
        codes[name], uniques = pd.factorize(frame[parts[name]])
        offsets[name] = total
        total += len(uniques)
    left, right = [], []
    for a, b in usable:
        both = (codes[a] >= 0) & (codes[b] >= 0)
        left.append(codes[a][both] + offsets[a])
        right.append(codes[b][both] + offsets[b])
    component = connected_components(total, np.concatenate(left), np.concatenate(right))
    first = names[0]
    return pd.Series(np.where(codes[first] >= 0, component[codes[first] + offsets[first]], -1),
                     index=frame.index)


def _plain_date_prefix(frame: pd.DataFrame, view: View, width: int) -> pd.Series | None:
    """A plain column of 'YYYY-MM' (width 7) or 'YYYY' (width 4) values, if one exists."""
    pattern = r"^\d{4}-\d{2}$" if width == 7 else r"^\d{4}(-\d{2})?$"
    for column in view.plain_columns():
        values = frame[column].dropna().astype(str)
        if len(values) and values.iloc[:1000].str.match(pattern).mean() > 0.9:
            return frame[column].astype(str).str.slice(0, width).where(frame[column].notna())
    return None


def _vote(classes: pd.Series, values: pd.Series) -> pd.Series:
    """The most common value per class (ignoring missing values and class -1)."""
    rows = pd.DataFrame({"c": classes, "v": values}).dropna()
    rows = rows[(rows.c >= 0) & (rows.v != "")]
    if not len(rows):
        return pd.Series(dtype=object)
    counts = rows.groupby(["c", "v"]).size().rename("n").reset_index()
    counts = counts.sort_values(["c", "n", "v"], ascending=[True, False, True])
    return counts.drop_duplicates("c").set_index("c").v


def _year_labels(frame: pd.DataFrame, view: View, classes: pd.Series, knowledge: Knowledge
                 ) -> tuple[pd.Series, pd.Series]:
    """Birth year per record, and how many years remain possible."""
    plain = _plain_date_prefix(frame, view, 4)
    if plain is not None:
        label = _vote(classes, plain)
        years = pd.to_numeric(classes.map(label), errors="coerce")
        return years, pd.Series(np.where(years.notna(), 1, np.nan), index=frame.index)
    return _years_from_age_band(frame, classes, knowledge)


def _years_from_age_band(frame: pd.DataFrame, classes: pd.Series, knowledge: Knowledge
                         ) -> tuple[pd.Series, pd.Series]:
    """Age band at the end of the collection year (31 March) bounds the birth year; a class
    takes the year most of its records allow, and the years tied with it remain possible."""
    bands = [c for c in frame.columns if c.lower() == "age_band"]
    period = pd.to_numeric(frame.get("period"), errors="coerce")
    if not bands or period is None:
        span = knowledge.last_year - knowledge.first_year + 1
        middle = (knowledge.first_year + knowledge.last_year) // 2
        return pd.Series(middle, index=frame.index), pd.Series(span, index=frame.index)
    bounds = frame[bands[0]].astype(str).map(AGE_BANDS)
    known = bounds.notna()
    low_age = bounds.where(known, None).map(lambda b: b[0] if b else np.nan).astype(float)
    high_age = bounds.where(known, None).map(lambda b: b[1] if b else np.nan).astype(float)
    earliest, latest = period - high_age - 1, period - low_age
    support = {}
    for year in range(knowledge.first_year, knowledge.last_year + 1):
        allows = ((earliest <= year) & (year <= latest)).astype(int)
        support[year] = allows.groupby(classes).sum()
    table = pd.DataFrame(support)
    best = table.max(axis=1)
    tied = table.eq(best, axis=0) & (best > 0).to_numpy()[:, None]
    ordered = np.array(table.columns)
    # the middle of the tied years: the likeliest under a uniform calendar
    middle = tied.apply(lambda row: int(np.median(ordered[row.to_numpy()]))
                        if row.any() else np.nan, axis=1)
    return classes.map(middle), classes.map(tied.sum(axis=1))


def _month_labels(frame: pd.DataFrame, view: View, months: pd.Series, days: pd.Series
                  ) -> tuple[pd.Series, pd.Series]:
    """Month per record and how many months remain possible: from a plain year-month
    column, else from the calendar's shape (February, 30-day and 31-day months)."""
    plain = _plain_date_prefix(frame, view, 7)
    if plain is not None:
        label = pd.to_numeric(_vote(months, plain.str.slice(5, 7)), errors="coerce")
        month = months.map(label)
        return month, pd.Series(np.where(month.notna(), 1, np.nan), index=frame.index)
    shape = _month_shape(months, days)
    month = months.map(shape.label)
    return month, months.map(shape.choices)


def _month_shape(months: pd.Series, days: pd.Series) -> pd.DataFrame:
    """Name month classes by how many day classes they meet: the fewest is February, the
    next four the 30-day months; the others have 31 days. Within a kind, arbitrary."""
    pairs = pd.DataFrame({"m": months, "d": days})
    pairs = pairs[(pairs.m >= 0) & (pairs.d >= 0)].drop_duplicates()
    days_met = pairs.groupby("m").size().sort_values(kind="stable")
    kinds = [[2], [4, 6, 9, 11], [1, 3, 5, 7, 8, 10, 12]]
    labels, choices, start = {}, {}, 0
    for kind in kinds:
        for offset, month_class in enumerate(days_met.index[start:start + len(kind)]):
            labels[month_class] = kind[offset % len(kind)]
            choices[month_class] = len(kind)
        start += len(kind)
    return pd.DataFrame({"label": labels, "choices": choices})


def _day_labels(frame: pd.DataFrame, parts: dict[str, str], months: pd.Series,
                days: pd.Series, month_labels: pd.Series) -> tuple[pd.Series, pd.Series]:
    """Day per record and how many days remain possible: days up to 12 from the swapped
    date (day class d is month class d), 29-31 from how many months they meet."""
    pairs = pd.DataFrame({"m": months, "d": days})
    pairs = pairs[(pairs.m >= 0) & (pairs.d >= 0)].drop_duplicates()
    months_met = pairs.groupby("d").size().sort_values(kind="stable")
    labels: dict[int, int] = {}
    # the fewest months met: day 31 (7 months), then 30 (11), then 29 (12, Feb only leap)
    for day, day_class in zip((31, 30), months_met.index[:2], strict=False):
        labels[day_class] = day
    labels.update(_days_from_swaps(frame, parts, months, days, month_labels, set(labels)))
    rest = [d for d in months_met.index if d not in labels]
    free = [d for d in range(1, 32) if d not in labels.values()]
    for day_class, day in zip(rest, free, strict=False):
        labels[day_class] = day  # arbitrary: nothing tells these days apart
    choices = {c: (1 if c not in rest else len(rest)) for c in labels}
    return days.map(labels), days.map(choices)


def _days_from_swaps(frame: pd.DataFrame, parts: dict[str, str], months: pd.Series,
                     days: pd.Series, month_labels: pd.Series, taken: set) -> dict[int, int]:
    """Day class -> day for days up to 12: a record's swapped token is the date token of
    records whose month is this record's day."""
    if "date_swapped" not in parts:
        return {}
    month_of_date = pd.DataFrame({"token": frame[parts["date"]], "month": month_labels})
    month_of_date = month_of_date.dropna().drop_duplicates("token").set_index("token").month
    swapped = pd.DataFrame({"token": frame[parts["date_swapped"]], "d": days}).dropna()
    swapped["month"] = swapped.token.map(month_of_date)
    votes = swapped.dropna().groupby(["d", "month"]).size().rename("n").reset_index()
    votes = votes.sort_values(["d", "n"], ascending=[True, False]).drop_duplicates("d")
    votes = votes[~votes.d.isin(taken)].drop_duplicates("month")
    return dict(zip(votes.d.astype(int), votes.month.astype(int), strict=True))


def _assemble(years: pd.Series, months: pd.Series, days: pd.Series, year_choices: pd.Series,
              month_choices: pd.Series, day_choices: pd.Series) -> tuple[pd.Series, pd.Series]:
    """ISO dates from the labels (None where a part is unknown or the date impossible), and
    the number of candidate dates (365 per unknown year, 12 per unknown month...)."""
    year = pd.to_numeric(years, errors="coerce")
    month = pd.to_numeric(months, errors="coerce").fillna(7)      # unknown: mid-year
    day = pd.to_numeric(days, errors="coerce").fillna(1)
    text = (year.astype("Int64").astype(str) + "-" + month.astype(int).astype(str).str.zfill(2)
            + "-" + day.astype(int).astype(str).str.zfill(2))
    valid = pd.to_datetime(text.where(year.notna()), errors="coerce", format="%Y-%m-%d")
    guess = text.where(valid.notna(), None)
    candidates = (year_choices.fillna(26) * month_choices.fillna(12) * day_choices.fillna(31))
    return guess, candidates


def _per_token_mode(date_tokens: pd.Series, guess: pd.Series) -> pd.Series:
    """Every record with the same date token gets that token's most common guess."""
    label = _vote(pd.Series(pd.factorize(date_tokens)[0], index=date_tokens.index), guess)
    codes = pd.Series(pd.factorize(date_tokens)[0], index=date_tokens.index)
    return codes.map(label).where(lambda s: s.notna(), None)
