"""National cohorts of the outcomes statistics (docs/researchers.md) on linked persons,
deduplicated across LAs.

Each cohort is computed twice: per LA, as each LA counts its own children (the naive national
figure is their sum), and per person across LAs (the deduplicated figure).
"""

from dataclasses import dataclass

import pandas as pd

RESPITE = {"V3", "V4"}   # short breaks only: removed from CLA cohorts


@dataclass
class CareEvents:
    """Per record: looked-after episodes, CIN episodes, child protection plans and UASC
    status, with dates parsed, one row per event (the latest return's account of it)."""

    episodes: pd.DataFrame   # person_key, provider, record_id, DECOM, DEC, LS
    cin: pd.DataFrame        # person_key, provider, record_id, CINreferralDate, CINclosureDate
    plans: pd.DataFrame      # person_key, provider, record_id, CPPstartDate, plan_end
    uasc: pd.DataFrame       # person_key, provider, record_id, DUC


def year_bounds(period: int) -> tuple[pd.Timestamp, pd.Timestamp]:
    """The collection year ending 31 March ``period``."""
    return pd.Timestamp(period - 1, 4, 1), pd.Timestamp(period, 3, 31)


def _dates(frame: pd.DataFrame, *columns: str) -> pd.DataFrame:
    out = frame.copy()
    for column in columns:
        values = out[column] if column in out else pd.Series(None, index=out.index)
        out[column] = pd.to_datetime(values, errors="coerce")
    return out


def care_events(episodes: pd.DataFrame, cin: pd.DataFrame, plans: pd.DataFrame | None = None,
                uasc: pd.DataFrame | None = None) -> CareEvents:
    """The events cohorts are counted from, from the 903 episodes and UASC tables and the CIN
    details and plans (each as content rows joined to the spine's persons)."""
    episodes = _dates(episodes, "DECOM", "DEC")
    episodes = episodes[~episodes.get("LS", pd.Series("", index=episodes.index))
                        .isin(RESPITE)].dropna(subset=["DECOM"])
    # each return repeats the episodes still open; the latest return knows how they ended
    episodes = _latest(episodes, ["provider", "record_id", "DECOM"])
    cin = _dates(cin, "CINreferralDate", "CINclosureDate")
    cin = _latest(cin.dropna(subset=["CINreferralDate"]),
                  ["provider", "record_id", "CINreferralDate"])
    return CareEvents(episodes, cin, _plans_within_episodes(plans, cin), _uasc(uasc))


# The content tables (source, table) care events come from, in care_events' order.
EVENT_TABLES = (("ssda903", "episodes"), ("cin", "cin_details"), ("cin", "child_protection_plans"),
                ("ssda903", "uasc"))


def events_of(content: dict[tuple[str, str], pd.DataFrame]) -> CareEvents:
    """The care events of content tables joined to persons (absent tables: no events)."""
    empty = pd.DataFrame(columns=["person_key", "provider", "record_id"])
    return care_events(*(content.get(key, empty) for key in EVENT_TABLES))


def _plans_within_episodes(plans: pd.DataFrame | None, cin: pd.DataFrame) -> pd.DataFrame:
    """Every plan, ending at the latest of its own end and its CIN episode's closure: a plan
    counts only while its episode is open (a plan left open in a closed episode has ended)."""
    columns = ["person_key", "provider", "record_id", "CINreferralDate", "CPPstartDate",
               "CPPendDate"]
    plans = _dates(plans if plans is not None else pd.DataFrame(columns=columns),
                   "CINreferralDate", "CPPstartDate", "CPPendDate")
    plans = _latest(plans.dropna(subset=["CPPstartDate"]),
                    ["provider", "record_id", "CINreferralDate", "CPPstartDate"])
    episode = ["provider", "record_id", "CINreferralDate"]
    plans = plans.merge(cin[[*episode, "CINclosureDate"]], on=episode, how="inner")
    closed_first = plans.CINclosureDate.notna() & (
        plans.CPPendDate.isna() | (plans.CINclosureDate < plans.CPPendDate))
    return plans.assign(plan_end=plans.CPPendDate.mask(closed_first, plans.CINclosureDate))


def _uasc(uasc: pd.DataFrame | None) -> pd.DataFrame:
    """Per record: the date the child ceased to be UASC (blank: still UASC)."""
    uasc = _dates(uasc if uasc is not None
                  else pd.DataFrame(columns=["person_key", "provider", "record_id", "DUC"]),
                  "DUC")
    return _latest(uasc, ["provider", "record_id"])


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
    ep, cin, plans = events.episodes, events.cin, events.plans
    spans = {
        "cla": (ep, ep.DECOM, ep.DEC),
        "cin": (cin, cin.CINreferralDate, cin.CINclosureDate),
        "cpp": (plans, plans.CPPstartDate, plans.plan_end),
    }
    out = [rows[by].assign(**{f"{name}_any": _overlaps(start, end, low, high),
                              f"{name}_end": _open_at(start, end, high),
                              f"{name}_6y": _overlaps(start, end, six_years, high)})
           for name, (rows, start, end) in spans.items()]
    out.append(_uasc_episodes(ep, events.uasc, low, high)[by].assign(uasc_any=True))
    units = pd.concat(out, ignore_index=True).fillna(False)
    units = units.groupby(by).max().astype(bool)
    a_year = _looked_after_a_year(ep, by, high)
    units["cla_12m"] = a_year.reindex(units.index).fillna(False).astype(bool)
    return units


def _uasc_episodes(ep: pd.DataFrame, uasc: pd.DataFrame, low, high) -> pd.DataFrame:
    """The episodes in which a child was looked after as UASC at some time in the year: the
    LA's own UASC table says so, up to the day the child ceased to be UASC."""
    rows = ep.merge(uasc[["provider", "record_id", "DUC"]], on=["provider", "record_id"])
    ceased_first = rows.DUC.notna() & (rows.DEC.isna() | (rows.DUC < rows.DEC))
    # an episode that began after the child ceased to be UASC holds no UASC time
    began_as_uasc = rows.DUC.isna() | (rows.DECOM <= rows.DUC)
    return rows[began_as_uasc & _overlaps(rows.DECOM, rows.DEC.mask(ceased_first, rows.DUC),
                                          low, high)]


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
YEARS_SPANNED = {"ever_cin_6y": 6, "ever_cla_6y": 6, "ever_cpp_6y": 6}

COHORTS = {
    "cla_any_point": lambda f: f.cla_any,
    "cla_31mar": lambda f: f.cla_end,
    "cla_12m_31mar": lambda f: f.cla_end & f.cla_12m,
    "cla_under_12m_31mar": lambda f: f.cla_end & ~f.cla_12m,
    "cin_any_point": lambda f: f.cin_any,
    "cin_31mar": lambda f: f.cin_end,
    "cpp_any_point": lambda f: f.cpp_any,
    "cppo_31mar": lambda f: f.cpp_end & ~f.cla_end,
    "cino_31mar": lambda f: f.cin_end & ~f.cpp_end & ~f.cla_end,
    "ever_cin_6y": lambda f: f.cin_6y,
    "ever_cla_6y": lambda f: f.cla_6y,
    "ever_cpp_6y": lambda f: f.cpp_6y,
    "uasc_any_point": lambda f: f.uasc_any,
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
