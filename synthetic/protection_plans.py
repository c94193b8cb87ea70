"""Child protection plans: one or more per CIN episode, and repeat plans in a later episode.

A plan sits inside its CIN episode (from the referral to the closure); a second plan can follow
the first in the same episode, and a child whose episode closed can be referred again within two
years and go on a new plan. A small configured share of plans is left open in the return when
their episode closed (a recording slip the cohort rules must handle: the plan ends with its
episode).
"""

import numpy as np
import pandas as pd

from synthetic.calendar import DAY, Calendar, dates_of, years_between
from synthetic.randomness import weighted_choice

NAT = np.datetime64("NaT", "D")
PLAN_LENGTH_DAYS = (120, 400)   # how long a plan lasts
PLAN_START_DAYS = (10, 60)      # from the referral to the first plan
CLOSURE_AFTER_PLAN_DAYS = 90    # an episode closes up to this long after its last plan ends


def repeat_referrals(rng, cin: pd.DataFrame, calendar: Calendar, cfg: dict,
                     duration_years: float) -> pd.DataFrame:
    """New CIN episodes of children whose episode with a plan closed, each with a plan."""
    closure = dates_of(cin, "closure_date")
    eligible = cin.cpp.to_numpy() & ~np.isnat(closure)
    chosen = eligible & (rng.random(len(cin)) < cfg["repeat_referral_share"])
    again = cin.loc[chosen, ["person_id", "case_id", "la_index", "dob"]].reset_index(drop=True)
    gap = rng.integers(cfg["repeat_gap_days"]["min"], cfg["repeat_gap_days"]["max"] + 1,
                       len(again))
    referral = closure[chosen] + gap * DAY
    length = rng.exponential(duration_years * 365.25, len(again)).astype(int) + 14
    closure = referral + length * DAY
    closure[closure > calendar.end] = NAT
    again["referral_date"] = referral
    again["closure_date"] = closure
    again["closure_reason"] = np.where(np.isnat(closure), "",
                                       rng.choice(["RC8", "RC7", "RC9", "RC6"], len(again)))
    again["unborn"] = False
    again["cpp"] = True
    under_18 = years_between(dates_of(again, "dob"), referral) < 18
    return again[(referral <= calendar.end) & under_18].reset_index(drop=True)


def plans_of(rng, cin: pd.DataFrame, calendar: Calendar, cfg: dict) -> pd.DataFrame:
    """Plans of every CIN episode marked ``cpp``; episodes are closed no earlier than their last
    plan (``cin`` is changed in place). One row per plan: episode_id, person_id, la_index,
    referral_date, start_date, end_date (as the return records it), categories of abuse."""
    episodes = cin[cin.cpp.to_numpy()]
    referral = dates_of(episodes, "referral_date")
    start = referral + rng.integers(*PLAN_START_DAYS, len(episodes)) * DAY
    end = start + rng.integers(*PLAN_LENGTH_DAYS, len(episodes)) * DAY
    second = rng.random(len(episodes)) < cfg["second_plan_share"]
    gap = rng.integers(cfg["plan_gap_days"]["min"], cfg["plan_gap_days"]["max"] + 1,
                       len(episodes))
    start2 = end + gap * DAY
    end2 = start2 + rng.integers(*PLAN_LENGTH_DAYS, len(episodes)) * DAY
    plans = pd.concat([
        _plan_rows(episodes, start, end, 1),
        _plan_rows(episodes[second], start2[second], end2[second], 2),
    ], ignore_index=True)
    plans = plans[plans.start_date.to_numpy() <= calendar.end]
    plans = plans.sort_values(["episode_id", "start_date"], ignore_index=True)

    _close_after_last_plan(rng, cin, plans, calendar)
    closure = plans.episode_id.map(cin.set_index("episode_id").closure_date).to_numpy()
    end = dates_of(plans, "end_date")
    end[~np.isnat(end) & (end > calendar.end)] = NAT
    last = ~plans.episode_id.duplicated(keep="last").to_numpy()
    slip = last & ~np.isnat(closure) & (rng.random(len(plans)) < cfg["left_open_share"])
    end[slip] = NAT
    plans["end_date"] = end
    plans["left_open"] = slip
    initial = weighted_choice(rng, cfg["category_weights"], len(plans))
    changed = rng.random(len(plans)) < cfg["category_changes"]
    plans["initial_category"] = initial
    plans["latest_category"] = np.where(changed, weighted_choice(
        rng, cfg["category_weights"], len(plans)), initial)
    return plans.drop(columns="order")


def _plan_rows(episodes: pd.DataFrame, start: np.ndarray, end: np.ndarray,
               order: int) -> pd.DataFrame:
    return pd.DataFrame({
        "episode_id": episodes.episode_id.to_numpy(), "person_id": episodes.person_id.to_numpy(),
        "la_index": episodes.la_index.to_numpy(),
        "referral_date": dates_of(episodes, "referral_date"), "start_date": start,
        "end_date": end, "order": order})


def _close_after_last_plan(rng, cin: pd.DataFrame, plans: pd.DataFrame,
                           calendar: Calendar) -> None:
    """A closed episode stays open until a little after its last plan ends (or past the
    window's end, and then it is still open)."""
    if plans.empty:
        return
    last_end = plans.groupby("episode_id").end_date.max()
    needed = cin.episode_id.map(last_end).to_numpy().astype("datetime64[D]")
    closure = dates_of(cin, "closure_date")
    late = ~np.isnat(closure) & ~np.isnat(needed) & (closure < needed)
    moved = needed + rng.integers(0, CLOSURE_AFTER_PLAN_DAYS, len(cin)) * DAY
    closure = np.where(late, moved, closure)
    beyond = late & (closure > calendar.end)
    closure[beyond] = NAT
    cin["closure_date"] = closure
    cin.loc[beyond, "closure_reason"] = ""


def previous_plans(plans: pd.DataFrame) -> np.ndarray:
    """How many plans the child had before each plan, as the LA's records show."""
    ordered = plans.sort_values(["person_id", "la_index", "start_date"], kind="stable")
    count = ordered.groupby(["person_id", "la_index"]).cumcount()
    return count.reindex(plans.index).to_numpy()

