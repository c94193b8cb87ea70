"""Recording errors injected at configurable rates, each labelled so the truth can count them.

Rates are multiplied for groups whose identifiers real data records worse (some ethnic groups,
children who move LA), so that linkage bias can be measured.
"""

import numpy as np
import pandas as pd

from synthetic.calendar import date_parts, from_parts

NO_ERROR = ""


def group_multiplier(persons: pd.DataFrame, config: dict) -> pd.Series:
    """Per person: how much more often their identifiers are recorded wrongly."""
    groups = config["errors"]["group_multipliers"]
    by_ethnicity = persons.ethnicity.map(groups["ethnicity"]).fillna(1.0).to_numpy()
    mover = np.where(persons.moved_la.fillna(False).to_numpy(dtype=bool), groups["moved_la"], 1.0)
    return pd.Series(by_ethnicity * mover, index=persons.person_id.to_numpy())


def recorded_dob(rng, dob: np.ndarray, multiplier: np.ndarray, cfg: dict,
                 year_up_before: np.datetime64) -> tuple[np.ndarray, np.ndarray]:
    """DOBs as recorded: day and month swapped, or one component wrong; with the error's kind.

    A swap is injected only where it gives a valid, different date (both parts 12 or less). A
    year error goes up by one only where that stays before ``year_up_before`` (the window's
    start), so that no return carries a birth date after its own collection year.
    """
    n = len(dob)
    year, month, day = date_parts(dob)
    u = rng.random(n)
    swap_p = cfg["dob_swap"] * multiplier
    component_p = cfg["dob_component"] * multiplier
    swappable = (day <= 12) & (day != month)
    swap = swappable & (u < swap_p)
    component = ~swap & (u >= swap_p) & (u < swap_p + component_p)
    which = rng.integers(0, 3, n)
    new_day = np.where(component & (which == 0), (day - 1 + rng.integers(1, 28, n)) % 28 + 1, day)
    new_month = np.where(component & (which == 1), (month - 1 + rng.integers(1, 12, n)) % 12 + 1,
                         month)
    step = rng.choice([-1, 1], n)
    step = np.where(from_parts(year + 1, month, day) >= year_up_before, -1, step)
    new_year = np.where(component & (which == 2), year + step, year)
    new_day, new_month = np.where(swap, month, new_day), np.where(swap, day, new_month)
    recorded = from_parts(new_year, new_month, new_day)
    kind = np.select([swap, component & (which == 0), component & (which == 1),
                      component & (which == 2)], ["swap", "day", "month", "year"], NO_ERROR)
    # a component error that lands on the true date (a clamped day) is no error
    kind = np.where(recorded == dob, NO_ERROR, kind).astype(object)
    return recorded, kind


def recorded_sex(rng, sex: np.ndarray, multiplier: np.ndarray,
                 cfg: dict) -> tuple[np.ndarray, np.ndarray]:
    wrong = rng.random(len(sex)) < cfg["sex_wrong"] * multiplier
    flipped = np.where(sex == "F", "M", "F")
    return np.where(wrong, flipped, sex).astype(object), wrong


def unformatted_postcodes(rng, postcodes: np.ndarray) -> np.ndarray:
    """Postcodes as some systems export them: lower case, or with the space missing."""
    text = pd.Series(postcodes, dtype=object)
    lower = rng.random(len(text)) < 0.5
    out = np.where(lower, text.str.lower(), text.str.replace(" ", "", regex=False))
    return out.astype(object)
