"""National cohorts (DOMAIN.md section 7) on linked persons, deduplicated across LAs.

Each cohort is computed twice: per LA, as each LA counts its own children (the naive national
figure is their sum), and per person across LAs (the deduplicated figure).
"""

from dataclasses import dataclass

import pandas as pd

RESPITE = {"V3", "V4"}   # short breaks only: removed from CLA cohorts


@dataclass
class CareEvents:
    """Per record: looked-after episodes and CIN episodes, with dates parsed."""

    episodes: pd.DataFrame   # person_key, provider, record_id, DECOM, DEC, LS
    cin: pd.DataFrame        # person_key, provider, record_id, CINreferralDate, ...


def year_bounds(period: int) -> tuple[pd.Timestamp, pd.Timestamp]:
    """The collection year ending 31 March ``period``."""
    return pd.Timestamp(period - 1, 4, 1), pd.Timestamp(period, 3, 31)


def _dates(frame: pd.DataFrame, *columns: str) -> pd.DataFrame:
    out = frame.copy()
    for column in columns:
        values = out[column] if column in out else pd.Series(None, index=out.index)
        out[column] = pd.to_datetime(values, errors="coerce")
    return out


def care_events(episodes: pd.DataFrame, cin: pd.DataFrame) -> CareEvents:
    episodes = _dates(episodes, "DECOM", "DEC")
    episodes = episodes[~episodes.get("LS", pd.Series("", index=episodes.index))
                        .isin(RESPITE)].dropna(subset=["DECOM"])
    # each return repeats the episodes still open; the latest return knows how they ended
    episodes = _latest(episodes, ["provider", "record_id", "DECOM"])
    cin = _dates(cin, "CINreferralDate", "CINclosureDate", "CPPstartDate", "CPPendDate")
    cin = _latest(cin.dropna(subset=["CINreferralDate"]),
                  ["provider", "record_id", "CINreferralDate", "CPPstartDate"])
    return CareEvents(episodes, cin)


def _latest(rows: pd.DataFrame, key: list[str]) -> pd.DataFrame:
    """One row per ``key``: the one from the latest return."""
    if "period" not in rows:
        return rows.drop_duplicates(key)
    return rows.sort_values("period", kind="stable").drop_duplicates(key, keep="last")


def _overlaps(start: pd.Series, end: pd.Series, low, high) -> pd.Series:
    return (start <= high) & (end.isna() | (end >= low))


def _open_at(start: pd.Series, end: pd.Series, day) -> pd.Series:
    return (start <= day) & (end.isna() | (end > day))


def unit_flags(events: CareEvents, period: int, by: list[str]) -> pd.DataFrame:
    """Per unit (``by``: person_key for persons, person_key and provider for LA counts):
    which conditions hold in the year."""
    low, high = year_bounds(period)
    six_years = pd.Timestamp(period - 6, 4, 1)
    ep, cin = events.episodes, events.cin
    flags = {
        "cla_any": _overlaps(ep.DECOM, ep.DEC, low, high),
        "cla_end": _open_at(ep.DECOM, ep.DEC, high),
        "cla_6y": _overlaps(ep.DECOM, ep.DEC, six_years, high),
    }
    out = [ep[by].assign(**flags)]
    cin_flags = {
        "cin_any": _overlaps(cin.CINreferralDate, cin.CINclosureDate, low, high),
        "cin_end": _open_at(cin.CINreferralDate, cin.CINclosureDate, high),
        "cin_6y": _overlaps(cin.CINreferralDate, cin.CINclosureDate, six_years, high),
        "cpp_end": _open_at(cin.CPPstartDate, cin.CPPendDate, high),
    }
    out.append(cin[by].assign(**cin_flags))
    units = pd.concat(out, ignore_index=True).fillna(False)
    units = units.groupby(by).max().astype(bool)
    units["cla_12m"] = _looked_after_a_year(ep, by, high).reindex(units.index).fillna(False)
    return units


def _looked_after_a_year(ep: pd.DataFrame, by: list[str], day) -> pd.Series:
    """Whether the unit was looked after continuously for the 12 months up to ``day``."""
    year_ago = day - pd.DateOffset(years=1) + pd.Timedelta(days=1)
    started = ep.DECOM
    ep = ep[started.le(day)].assign(stop=ep.DEC.fillna(day + pd.Timedelta(days=1)))
    ep = ep.sort_values([*by, "DECOM"])
    reach = ep.groupby(by).stop.cummax()
    previous = reach.groupby([ep[c] for c in by]).shift()
    new_spell = previous.isna() | ep.DECOM.gt(previous + pd.Timedelta(days=1))
    spell = new_spell.cumsum()
    spells = ep.assign(spell=spell).groupby([*by, "spell"]).agg(
        start=("DECOM", "min"), stop=("stop", "max"))
    current = spells[(spells.start <= year_ago) & (spells.stop > day)]
    return current.reset_index().groupby(by).size().gt(0)


# The sources whose returns give the care events every cohort but "all" is counted from.
CARE_EVENT_SOURCES = ("ssda903", "cin")
# Collection years a cohort looks back over, counting its own (1 unless listed): a cohort is
# counted right only when the spine holds the returns of every one of them.
YEARS_SPANNED = {"ever_cin_6y": 6, "ever_cla_6y": 6}

COHORTS = {
    "cla_any_point": lambda f: f.cla_any,
    "cla_31mar": lambda f: f.cla_end,
    "cla_12m_31mar": lambda f: f.cla_end & f.cla_12m,
    "cin_any_point": lambda f: f.cin_any,
    "cin_31mar": lambda f: f.cin_end,
    "cppo_31mar": lambda f: f.cpp_end & ~f.cla_end,
    "cino_31mar": lambda f: f.cin_end & ~f.cpp_end & ~f.cla_end,
    "ever_cin_6y": lambda f: f.cin_6y,
    "ever_cla_6y": lambda f: f.cla_6y,
}


def periods_needed(name: str, period: int) -> list[int]:
    """The collection years whose returns cohort ``name`` of ``period`` is counted from."""
    return list(range(period - YEARS_SPANNED.get(name, 1) + 1, period + 1))


def cohort(events: CareEvents, name: str, period: int, everyone: pd.Series
           ) -> tuple[pd.Index, pd.Series]:
    """The cohort's persons (deduplicated) and each LA's own count of it."""
    if name == "all":
        return pd.Index(sorted(set(everyone)), name="person_key"), pd.Series(dtype=int)
    persons = unit_flags(events, period, ["person_key"])
    members = persons.index[COHORTS[name](persons).to_numpy()]
    per_la = unit_flags(events, period, ["person_key", "provider"])
    counted = per_la[COHORTS[name](per_la).to_numpy()].reset_index()
    return members, counted.groupby("provider").size().rename("children")
