"""Children in need and looked after: family referrals, periods of care, episodes, transfers.

A referral covers a household's children, so siblings share CIN episodes and come into care
together on the same day from the same home: the evidence later used to find sibling groups.
"""

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from synthetic.adoption import adoption_timelines
from synthetic.calendar import DAY, Calendar, birthday, dates_of, years_between
from synthetic.geography import Geography
from synthetic.population import Population, append_children
from synthetic.protection_plans import plans_of, repeat_referrals
from synthetic.randomness import weighted_choice
from synthetic.reference import (
    FFA_PLACEMENTS,
    FOSTER_PLACEMENTS,
    LEGAL_STATUS_LATER,
    LEGAL_STATUS_START,
    OTHER_PLACEMENTS,
    PRIMARY_NEED,
    PRIMARY_NEED_WEIGHTS,
)
from synthetic.uasc import uasc_arrivals, uasc_periods, uasc_table

NAT = np.datetime64("NaT", "D")
REENTRY_CASE_BASE = -2_000_000  # re-entries are cases of their own, below the arrivals' ids
CLOSURE_REASON = {"E11": "RC1", "E12": "RC1", "E3": "RC5", "E41": "RC3", "E45": "RC4"}


@dataclass
class SocialCare:
    cin_episodes: pd.DataFrame   # one row per child per CIN episode, in one LA
    cla_periods: pd.DataFrame    # one row per period of care in one LA
    cla_episodes: pd.DataFrame   # the 903 episodes of each period
    adoption_route: pd.DataFrame  # children with a decision that they should be placed for adoption
    mother_child: pd.DataFrame   # looked-after mothers and their babies
    cpp_plans: pd.DataFrame = field(default_factory=pd.DataFrame)  # plans of CIN episodes
    uasc: pd.DataFrame = field(default_factory=pd.DataFrame)  # UASC child per LA, with DUC
    oc2: pd.DataFrame = field(default_factory=pd.DataFrame)   # 903 OC2 rows, every year
    oc3: pd.DataFrame = field(default_factory=pd.DataFrame)   # 903 OC3 rows, every year


def days(values) -> np.ndarray:
    return np.round(np.asarray(values)).astype(int) * DAY


def build_social_care(rng: np.random.Generator, population: Population, calendar: Calendar,
                      geography: Geography, config: dict, factor: float) -> SocialCare:
    """Simulate referrals, care and the start of the adoption pathway for the whole population."""
    care_cfg = config["social_care"]
    cases = _referrals(rng, population, calendar, care_cfg)
    members = _case_members(rng, population, cases, care_cfg)
    entrants = _entrants(rng, members, cases, population, calendar, care_cfg, factor)
    periods = _periods(rng, entrants, calendar, config, factor)

    babies, mothers = _babies_of_looked_after_mothers(rng, population, periods, calendar,
                                                      geography, care_cfg, factor)
    if len(babies):
        periods = pd.concat([periods, _periods(rng, babies, calendar, config, factor)],
                            ignore_index=True)
    arrivals = uasc_arrivals(rng, population, calendar, geography, config["uasc"], factor)
    if len(arrivals):
        periods = pd.concat([periods, uasc_periods(
            rng, _periods(rng, arrivals, calendar, config, factor), calendar, config["uasc"])],
            ignore_index=True)
    periods = _marked_uasc(periods)
    reentrants = _reentrants(rng, periods, population, calendar, config["reentry"])
    if len(reentrants):
        periods = _marked_uasc(pd.concat(
            [periods, _periods(rng, reentrants, calendar, config, factor)], ignore_index=True))
    periods = _transfers(rng, periods, calendar, geography, care_cfg, factor)
    periods["period_id"] = np.arange(len(periods))

    episodes = _episodes(rng, periods, calendar, geography, care_cfg)
    entered = members.merge(entrants[["case_id", "person_id"]], how="left", indicator=True)
    not_in_care = (entered["_merge"] == "left_only").to_numpy()
    cin, plans = _cin_with_plans(rng, members[not_in_care], cases, periods, calendar, config)
    adoption_route = periods[periods.decision_date.notna()].copy()
    return SocialCare(cin, periods, episodes, adoption_route, mothers, plans,
                      uasc_table(rng, periods, config["uasc"]))


def _cin_with_plans(rng, members: pd.DataFrame, cases: pd.DataFrame, periods: pd.DataFrame,
                    calendar: Calendar, config: dict) -> tuple[pd.DataFrame, pd.DataFrame]:
    """CIN episodes (of referred children, of looked-after children, and repeat referrals of
    children whose plan ended) and the child protection plans within them."""
    care_cfg, plan_cfg = config["social_care"], config["protection_plans"]
    cin = pd.concat([_cin_of_members(rng, members, cases, calendar, care_cfg),
                     _cin_of_periods(rng, periods, calendar)], ignore_index=True)
    again = repeat_referrals(rng, cin, calendar, plan_cfg, care_cfg["cin_duration_years"])
    cin = pd.concat([cin, _with_cin_details(rng, again)], ignore_index=True)
    cin["episode_id"] = np.arange(len(cin))
    plans = plans_of(rng, cin, calendar, plan_cfg)
    return cin, plans


def _marked_uasc(periods: pd.DataFrame) -> pd.DataFrame:
    """Every period marked UASC or not, with the legal status a UASC period keeps ('' for
    others: their episodes draw theirs)."""
    periods = periods.copy()
    periods["uasc"] = periods.get("uasc", pd.Series(False, index=periods.index)).fillna(
        False).astype(bool)
    periods["legal_status"] = periods.get("legal_status", pd.Series("", index=periods.index)
                                          ).fillna("")
    return periods


def _reentrants(rng, periods: pd.DataFrame, population: Population, calendar: Calendar,
                cfg: dict) -> pd.DataFrame:
    """Children who left care other than permanently and come back: siblings of one case
    together, into the care of the LA where their home is by then."""
    end = dates_of(periods, "end")
    eligible = (periods.reason.isin(cfg["exits"]).to_numpy() & ~np.isnat(end)
                & periods.decision_date.isna().to_numpy() & ~periods.uasc.to_numpy()
                & (years_between(dates_of(periods, "dob"), end) < 17))
    leaving = periods[eligible]
    case_codes, case_of = np.unique(leaving.case_id.to_numpy(), return_inverse=True)
    back = (rng.random(len(case_codes)) < cfg["rate"])[case_of]
    gap = rng.integers(cfg["gap_days"]["min"], cfg["gap_days"]["max"] + 1,
                       len(case_codes))[case_of]
    case_end = leaving.groupby("case_id").end.transform("max").to_numpy().astype(
        "datetime64[D]")
    start = case_end + gap * DAY
    back &= (start <= calendar.end) & (years_between(dates_of(leaving, "dob"), start) < 18)
    again = leaving[back].copy()
    again["case_id"] = REENTRY_CASE_BASE - case_of[back]
    again["start"] = start[back]
    household = population.persons.set_index("person_id").household_id.reindex(
        again.person_id).to_numpy().astype(np.int64)
    year = 1 + calendar.year_index(start[back])
    again["la_index"] = population.home_la[household, year]
    again["home_postcode"] = population.home_postcode[household, year]
    columns = ["case_id", "person_id", "dob", "sex", "start", "la_index", "home_postcode"]
    return again[columns].sort_values(["start", "person_id"], ignore_index=True)


def _referrals(rng, population: Population, calendar: Calendar, cfg: dict) -> pd.DataFrame:
    """Referrals of families: a Poisson number per family over the window, each on one date."""
    children = population.persons[population.persons.kind == "child"]
    first_dob = children.groupby("family_id").dob.min().to_numpy().astype("datetime64[D]")
    n_fam = len(first_dob)
    count = rng.poisson(cfg["referral_rate"] * calendar.years, n_fam)
    family_id = np.repeat(np.arange(n_fam), count)
    low = np.maximum(first_dob[family_id] - 150 * DAY, calendar.start)
    span = np.maximum((calendar.end - low).astype(int), 0)
    referral = low + days(rng.random(len(family_id)) * span)
    keep = low <= calendar.end
    cases = pd.DataFrame({"family_id": family_id[keep], "referral_date": referral[keep]})
    cases = cases.sort_values(["family_id", "referral_date"], kind="stable", ignore_index=True)
    cases["case_id"] = np.arange(len(cases))
    year = 1 + calendar.year_index(dates_of(cases, "referral_date"))
    fam = cases.family_id.to_numpy()  # the family's own household has the family's id
    cases["la_index"] = population.home_la[fam, year]
    cases["home_postcode"] = population.home_postcode[fam, year]
    cases["duration_days"] = rng.exponential(cfg["cin_duration_years"] * 365.25, len(cases)) + 14
    cases["cpp"] = rng.random(len(cases)) < cfg["cpp_share"]
    return cases


def _case_members(rng, population: Population, cases: pd.DataFrame, cfg: dict) -> pd.DataFrame:
    """The children of the referred household: born, or due within six months; under 18."""
    persons = population.persons
    at_home = persons[(persons.kind == "child") & (persons.household_id == persons.family_id)]
    members = cases[["case_id", "family_id", "referral_date"]].merge(
        at_home[["person_id", "family_id", "dob"]], on="family_id")
    referral, dob = dates_of(members, "referral_date"), dates_of(members, "dob")
    unborn = dob > referral
    under_18 = years_between(dob, referral) < 18
    due_soon = (dob - referral).astype(int) <= 180
    keep_unborn = rng.random(len(members)) < cfg["unborn_share"]
    keep = np.where(unborn, due_soon & keep_unborn, under_18)
    members = members[keep].copy()
    members["unborn"] = unborn[keep]
    return members.sort_values(["case_id", "person_id"], ignore_index=True)


def _entrants(rng, members: pd.DataFrame, cases: pd.DataFrame, population: Population,
              calendar: Calendar, cfg: dict, factor: float) -> pd.DataFrame:
    """Children who come into care: whole cases, one spell of care per child."""
    risk = cases.family_id.map(
        pd.Series(population.persons.drop_duplicates("family_id").set_index("family_id")
                  .ethnicity).map(lambda e: cfg["ethnicity_risk"].get(e, 1.0)))
    p_care = np.minimum(cfg["cla_share"] * factor * risk.to_numpy(), 0.9)
    in_care = rng.random(len(cases)) < p_care
    decom = dates_of(cases, "referral_date") + days(rng.uniform(7, 120, len(cases)))
    care_cases = cases.assign(start=decom)[in_care & (decom <= calendar.end)]
    entrants = members.merge(care_cases[["case_id", "start", "la_index", "home_postcode"]],
                             on="case_id")
    start, dob = dates_of(entrants, "start"), dates_of(entrants, "dob")
    enters = (dob <= start) & (years_between(dob, start) < 18)
    enters &= rng.random(len(entrants)) < cfg["cla_child_enters"]
    entrants = entrants[enters].sort_values(["start", "person_id"], ignore_index=True)
    entrants = entrants.drop_duplicates("person_id", keep="first")
    persons = population.persons.set_index("person_id")
    entrants["sex"] = entrants.person_id.map(persons.sex)
    return entrants[["case_id", "person_id", "dob", "sex", "start", "la_index", "home_postcode"]]


def _periods(rng, entrants: pd.DataFrame, calendar: Calendar, config: dict,
             factor: float) -> pd.DataFrame:
    """One period of care per entrant, ending in adoption, another outcome, or still open."""
    cfg = config["social_care"]
    periods = entrants.reset_index(drop=True).copy()
    n = len(periods)
    start, dob = dates_of(periods, "start"), dates_of(periods, "dob")
    # siblings in one case share their draws, so they tend to share their route out of care
    case_codes, case_of = np.unique(periods.case_id.to_numpy(), return_inverse=True)
    case_u = rng.random(len(case_codes))[case_of]
    case_outcome = weighted_choice(rng, cfg["outcome_weights"], len(case_codes))[case_of]
    case_duration = rng.exponential(cfg["cla_duration_years"] * 365.25, len(case_codes))[case_of]

    age = years_between(dob, start)
    adopt = case_u < _adoption_probability(age, config["adoption"], factor)
    end = start + days(case_duration * rng.uniform(0.9, 1.1, n) + 1)
    reason = case_outcome.astype(object)
    reason[reason == "open"] = ""
    end[reason == ""] = NAT

    timelines = adoption_timelines(rng, periods, adopt, config["adoption"])
    periods = pd.concat([periods, timelines], axis=1)
    order = dates_of(periods, "adoption_order_date")
    reversed_on = dates_of(periods, "reversed_date")
    end = np.where(adopt & ~np.isnat(order), order, end)
    reason = np.where(adopt & ~np.isnat(order),
                      np.where(rng.random(n) < 0.15, "E12", "E11"), reason)
    reversed_ = adopt & ~np.isnat(reversed_on)
    end = np.where(reversed_, reversed_on + 60 * DAY, end)
    reason = np.where(reversed_, np.where(rng.random(n) < 0.5, "E45", "E4A"), reason)

    eighteen = birthday(dob, 18)
    ages_out = np.isnat(end) | (end > eighteen)
    end = np.where(ages_out & (eighteen <= calendar.end), eighteen, end)
    reason = np.where(ages_out & (eighteen <= calendar.end), "E8", reason)
    late = ~np.isnat(end) & (end > calendar.end)
    end[late] = NAT
    reason[late | np.isnat(end)] = ""
    periods["end"] = end
    periods["reason"] = reason
    # what has not happened by the end of the window is not known to anyone
    for column in timelines.columns:
        if column.endswith("_date"):
            future = dates_of(periods, column) > calendar.end
            periods.loc[future, column] = pd.NaT
    return periods


def _adoption_probability(age: np.ndarray, cfg: dict, factor: float) -> np.ndarray:
    table = sorted((int(k), v) for k, v in cfg["adoption_share_by_age"].items())
    bounds = np.array([k for k, _ in table])
    shares = np.array([v for _, v in table])
    share = shares[np.searchsorted(bounds, age, side="right") - 1]
    return np.minimum(share * factor, cfg["max_share"])


def _babies_of_looked_after_mothers(rng, population: Population, periods: pd.DataFrame,
                                    calendar: Calendar, geography: Geography, cfg: dict,
                                    factor: float) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Looked-after girls of 14 to 17 who have a baby; some babies come into care too.

    The babies are appended to the population; the entrants returned are the babies in care.
    """
    girls = periods[periods.sex == "F"]
    dob, start = dates_of(girls, "dob"), dates_of(girls, "start")
    end = np.where(np.isnat(dates_of(girls, "end")), calendar.end, dates_of(girls, "end"))
    low = np.maximum(start, birthday(dob, 14))
    high = np.minimum(end, birthday(dob, 18) - DAY)
    span = (high - low).astype(int)
    mother = (span > 60) & (rng.random(len(girls)) < min(cfg["mother_rate"] * factor, 0.5))
    mothers = girls[mother]
    n = len(mothers)
    baby_dob = low[mother] + days(rng.random(n) * span[mother])

    mother_rows = population.persons.set_index("person_id").loc[mothers.person_id.to_numpy()]
    la = mothers.la_index.to_numpy()
    sex = np.where(rng.random(n) < 0.49, "F", "M")
    babies = append_children(rng, population, geography, la, baby_dob, sex,
                             mother_rows.ethnicity.to_numpy(), mother_rows.surname.to_numpy())
    pairs = pd.DataFrame({"mother_person_id": mothers.person_id.to_numpy(),
                          "child_person_id": babies.person_id.to_numpy(),
                          "child_dob": baby_dob})

    in_care = rng.random(n) < cfg["mother_baby_looked_after"]
    entrants = babies[in_care].assign(
        case_id=-1 - np.arange(int(in_care.sum())),
        start=baby_dob[in_care] + days(rng.uniform(0, 60, int(in_care.sum()))),
        la_index=la[in_care],
    )
    entrants = entrants[dates_of(entrants, "start") <= calendar.end]
    columns = ["case_id", "person_id", "dob", "sex", "start", "la_index", "home_postcode"]
    return entrants[columns].reset_index(drop=True), pairs


def _transfers(rng, periods: pd.DataFrame, calendar: Calendar, geography: Geography,
               cfg: dict, factor: float) -> pd.DataFrame:
    """Some periods of care are taken over by another LA (E3): the child gets a new CHILD id."""
    start, end = dates_of(periods, "start"), dates_of(periods, "end")
    stop = np.where(np.isnat(end), calendar.end, end)
    length = (stop - start).astype(int)
    eligible = periods.decision_date.isna().to_numpy() & (length > 60)
    moves = eligible & (rng.random(len(periods)) < min(cfg["transfer_rate"] * factor, 0.5))
    on = start + days(rng.uniform(0.2, 0.8, len(periods)) * length)
    first = periods.copy()
    first.loc[moves, "end"] = on[moves]
    first.loc[moves, "reason"] = "E3"
    second = periods[moves].copy()
    second["start"] = on[moves]
    shift = rng.integers(1, max(geography.n_las, 2), int(moves.sum()))
    second["la_index"] = (second.la_index.to_numpy() + shift) % geography.n_las
    second["transferred_in"] = True
    first["transferred_in"] = False
    out = pd.concat([first, second], ignore_index=True)
    return out.sort_values(["person_id", "start"], kind="stable", ignore_index=True)


def _episodes(rng, periods: pd.DataFrame, calendar: Calendar, geography: Geography,
              cfg: dict) -> pd.DataFrame:
    """Split each period into 903 episodes at changes of placement or legal status."""
    start, end = dates_of(periods, "start"), dates_of(periods, "end")
    placed = dates_of(periods, "placed_date")
    stop = np.where(np.isnat(end), calendar.end, end)
    random_until = np.where(~np.isnat(placed) & (placed < stop), placed, stop)
    length = np.maximum((random_until - start).astype(int), 0)
    n_changes = rng.poisson(cfg["placement_change_rate"] * length / 365.25)

    pid = np.arange(len(periods))
    change_of = np.repeat(pid, n_changes)
    change_on = start[change_of] + days(rng.random(len(change_of)) * length[change_of])
    order_on = dates_of(periods, "placement_order_date")[change_of]
    after_order = ~np.isnat(order_on) & (change_on >= order_on)
    change_kind = np.where((rng.random(len(change_of)) < 0.7) | after_order, "P", "L")
    events = [
        pd.DataFrame({"period": pid, "date": start, "rne": "S", "seq": 0}),
        pd.DataFrame({"period": change_of, "date": change_on, "rne": change_kind, "seq": 4}),
    ]
    for column, rne in (("placement_order_date", "L"), ("placed_date", "P")):
        on = dates_of(periods, column)
        has = ~np.isnat(on) & (on < stop) & (on > start)
        events.append(pd.DataFrame({"period": pid[has], "date": on[has], "rne": rne,
                                    "seq": 2 if rne == "L" else 3}))
    ev = pd.concat(events, ignore_index=True).sort_values(["period", "date", "seq"],
                                                          kind="stable", ignore_index=True)
    # one event a day: the start first, then the adoption steps, then random changes
    ev = ev.drop_duplicates(["period", "date"], keep="first", ignore_index=True)
    ev = ev[ev.date <= pd.Series(stop[ev.period.to_numpy()])].reset_index(drop=True)
    return _episode_attributes(rng, ev, periods, calendar, geography)


def _episode_attributes(rng, ev: pd.DataFrame, periods: pd.DataFrame, calendar: Calendar,
                        geography: Geography) -> pd.DataFrame:
    n = len(ev)
    p = ev.period.to_numpy()
    adoption_event = np.isin(ev.seq.to_numpy(), [2, 3])
    first = ev.rne.to_numpy() == "S"
    new_place = first | (ev.rne.to_numpy() == "P")
    new_status = first | (ev.rne.to_numpy() == "L")
    ffa = periods.ffa.to_numpy()[p]

    ls = np.where(first, weighted_choice(rng, LEGAL_STATUS_START, n),
                  weighted_choice(rng, LEGAL_STATUS_LATER, n)).astype(object)
    ls[adoption_event & (ev.seq.to_numpy() == 2)] = "E1"
    ls[~new_status] = None
    foster = rng.random(n) < 0.75
    place = np.where(foster, rng.choice(FOSTER_PLACEMENTS, n), rng.choice(OTHER_PLACEMENTS, n))
    place = place.astype(object)
    place[first & ffa] = rng.choice(FFA_PLACEMENTS, int((first & ffa).sum()))
    to_adopters = ev.seq.to_numpy() == 3
    place[to_adopters] = periods.adoption_placement.to_numpy()[p][to_adopters]
    place[~new_place] = None
    la = periods.la_index.to_numpy()[p]
    out_of_area = rng.random(n) < 0.2
    pl_la = np.where(out_of_area, rng.integers(0, geography.n_las, n), la)
    pl_post = geography.random_postcodes(rng, pl_la).astype(float)
    pl_post[~new_place] = np.nan

    ev = ev.assign(ls=ls, place=place, pl_post=pl_post)
    ev[["ls", "place", "pl_post"]] = ev.groupby("period")[["ls", "place", "pl_post"]].ffill()
    # a UASC period keeps one legal status throughout (mostly V2, accommodated under s20)
    fixed = periods.legal_status.to_numpy()[p]
    ev["ls"] = np.where(fixed != "", fixed, ev.ls.to_numpy())
    nxt = ev.groupby("period").date.shift(-1).to_numpy().astype("datetime64[D]")
    period_end = dates_of(periods, "end")[p]
    has_next = ~np.isnat(nxt)
    ev["dec"] = np.where(has_next, nxt, period_end)
    ev["rec"] = np.where(has_next, "X1", periods.reason.to_numpy()[p])
    ev["reason_place_change"] = np.where(
        (ev.rne.to_numpy() == "P") & (ev.seq.to_numpy() == 4),
        rng.choice(["CARPL", "CLOSE", "ALLEG", "STAND", "APPRR", "CREQB", "LAREQ", "OTHER"], n),
        "")
    ev["place_provider"] = np.where(pd.Series(ev.place).str.startswith("U"),
                                    np.where(rng.random(n) < 0.6, "PR1", "PR4"),
                                    np.where(rng.random(n) < 0.5, "PR1", "PR3"))
    ev["person_id"] = periods.person_id.to_numpy()[p]
    ev["la_index"] = la
    ev["home_postcode"] = periods.home_postcode.to_numpy()[p]
    ev["pl_post"] = ev.pl_post.astype(np.int64)
    return ev.rename(columns={"date": "decom", "period": "period_id"}).drop(columns="seq")


def _cin_of_members(rng, members: pd.DataFrame, cases: pd.DataFrame, calendar: Calendar,
                    cfg: dict) -> pd.DataFrame:
    """CIN episodes of children referred with their household who do not come into care."""
    cin = members.merge(cases[["case_id", "la_index", "duration_days", "cpp"]], on="case_id")
    referral = dates_of(cin, "referral_date")
    closure = referral + days(cin.duration_days.to_numpy())
    closure[closure > calendar.end] = NAT
    cin["closure_date"] = closure
    cin["closure_reason"] = np.where(np.isnat(closure), "",
                                     rng.choice(["RC8", "RC7", "RC9", "RC6"], len(cin)))
    return _with_cin_details(rng, cin)


def _cin_of_periods(rng, periods: pd.DataFrame, calendar: Calendar) -> pd.DataFrame:
    """Every looked-after child is in need: one CIN episode per period of care, in its LA."""
    cin = periods[["person_id", "case_id", "la_index", "dob"]].copy()
    start = dates_of(periods, "start")
    # a child taken over from another LA, or arriving from abroad, is referred on the day
    arrived = periods.transferred_in.to_numpy() | periods.uasc.to_numpy()
    referral = np.where(arrived, start, start - days(rng.uniform(7, 120, len(periods))))
    cin["referral_date"] = np.where(referral < dates_of(periods, "dob"),
                                    dates_of(periods, "dob"), referral)
    end = dates_of(periods, "end")
    closure = end + days(rng.uniform(0, 60, len(periods)))
    closure[np.isnat(end) | (closure > calendar.end)] = NAT
    cin["closure_date"] = closure
    reason = periods.reason.map(lambda r: CLOSURE_REASON.get(r, "RC8")).to_numpy()
    cin["closure_reason"] = np.where(np.isnat(closure), "", reason)
    cin["unborn"] = False
    cin["cpp"] = False
    return _with_cin_details(rng, cin)


def _with_cin_details(rng, cin: pd.DataFrame) -> pd.DataFrame:
    n = len(cin)
    cin = cin.reset_index(drop=True)
    cin["referral_source"] = rng.choice(["1A", "1B", "2A", "3A", "3B", "5A", "5B", "6", "10"], n)
    cin["primary_need"] = rng.choice(PRIMARY_NEED, n, p=PRIMARY_NEED_WEIGHTS)
    referral = dates_of(cin, "referral_date")
    cin["assessment_start"] = referral + days(rng.uniform(0, 10, n))
    return cin
