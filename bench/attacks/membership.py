"""Care status: which pupils are looked after, guessed by a school-census insider.

The insider (a school or DfE analyst, no key) holds the census's plaintext rows and the
linkage unit's view. If any pupil row can be tied to its tokens row, the spine tells whether
that person also has an SSDA903 (looked-after) record: membership disclosure, the attack that
matters most for children's social care (Shokri et al.'s membership inference, applied to a
linked spine; Vatsalan et al., "Privacy-preserving record linkage for big data", 2016, on
linkage units learning membership).

Ways to tie a pupil row to a tokens row, tried in order; the first that the plain attributes
confirm (sex, ethnicity agree on at least ``CONFIRM`` of the rows) is used:

1. the record id, if it travels in the clear;
2. file order within each census, if rows are not shuffled;
3. names and date of birth decoded by the other attacks, where they single out one record.
"""

from dataclasses import dataclass

import numpy as np
import pandas as pd

from bench.attacks.view import View
from linkage.pseudonymise.bloom import normalise_name

CONFIRM = 0.9


@dataclass
class Membership:
    """Per pupil row: whether it is flagged as looked after, and how rows were tied."""

    flags: pd.Series
    method: str
    tied_share: float


def membership_attack(view: View, pupils: pd.DataFrame, decoded_names: dict[str, pd.Series],
                      decoded_dob: pd.Series) -> Membership:
    """Flag the insider's pupil rows whose person on the spine has a looked-after record."""
    census = view.tokens[view.tokens.source.astype(str).str.contains("school")]
    person = view.person_keys()[census.index]
    cared = _looked_after_people(view)
    ties = {"record id": lambda: _tie_on(census, pupils, ["period", "record_id"]),
            "file order": lambda: _tie_on(census, pupils, ["period", "row"]),
            "decoded names and date of birth": lambda: _tie_on_decoded(
                census, pupils, decoded_names, decoded_dob)}
    for method, tie in ties.items():  # noqa: B007 (the method used is reported)
        tied = tie()  # tokens row index per pupil row (-1 where untied)
        if _confirmed(census, pupils, tied):
            break
    flags = pd.Series(False, index=pupils.index)
    found = tied >= 0
    flags[found] = person.reindex(tied[found]).isin(cared).to_numpy()
    return Membership(flags, method, round(float(found.mean()), 4))


def _looked_after_people(view: View) -> set:
    """Person keys with any SSDA903 record on the spine."""
    spine = view.person_record
    return set(spine.person_key[spine.source.astype(str).str.contains("903")])


def _tie_on(census: pd.DataFrame, pupils: pd.DataFrame, keys: list[str]) -> np.ndarray:
    """Tokens row per pupil row, joined on ``keys`` where both sides carry them."""
    if not all(k in census and k in pupils for k in keys):
        return np.full(len(pupils), -1)
    left = pupils[keys].astype(str).reset_index(drop=True)
    right = census[keys].astype(str).assign(tokens_row=census.index)
    right = right.drop_duplicates(keys, keep=False)
    joined = left.merge(right, on=keys, how="left")
    return joined.tokens_row.fillna(-1).astype(int).to_numpy()


def _tie_on_decoded(census: pd.DataFrame, pupils: pd.DataFrame,
                    decoded_names: dict[str, pd.Series], decoded_dob: pd.Series
                    ) -> np.ndarray:
    """Tokens row per pupil row, on decoded forename, surname and date of birth (or birth
    year when the date is unknown) within a census year; only where one record matches."""
    forename = _decoded(decoded_names, "forename", census.index)
    surname = _decoded(decoded_names, "surname", census.index)
    dob = decoded_dob.reindex(census.index).astype(object)
    decoded = pd.DataFrame({"period": census.period.astype(str), "forename": forename,
                            "surname": surname, "dob": dob, "tokens_row": census.index})
    plain = pd.DataFrame({
        "period": pupils.period.astype(str).to_numpy(),
        "forename": normalise_name(pupils.forename.fillna("")).to_numpy(),
        "surname": normalise_name(pupils.surname.fillna("")).to_numpy(),
        "dob": pd.to_datetime(pupils.dob, errors="coerce").dt.strftime("%Y-%m-%d").to_numpy()})
    tied = np.full(len(pupils), -1)
    for keys in (["period", "forename", "surname", "dob"], ["period", "forename", "surname"]):
        right = decoded.dropna(subset=keys).drop_duplicates(keys, keep=False)
        joined = plain.merge(right[[*keys, "tokens_row"]], on=keys, how="left")
        rows = joined.tokens_row.fillna(-1).astype(int).to_numpy()
        tied = np.where(tied >= 0, tied, rows)
    return tied


def _decoded(decoded: dict[str, pd.Series], word: str, index: pd.Index) -> pd.Series:
    """The decoded names of the first filter column whose name starts with ``word``."""
    for column, values in decoded.items():
        if column.startswith(word):
            return values.reindex(index)
    return pd.Series(None, index=index, dtype=object)


def _confirmed(census: pd.DataFrame, pupils: pd.DataFrame, tied: np.ndarray) -> bool:
    """Whether the tie is right: plain attributes both sides hold agree on nearly all tied
    rows (a wrong tie agrees only by chance)."""
    found = tied >= 0
    if found.mean() < 0.5:
        return False
    agree = []
    for column in ("sex", "ethnicity"):
        if column in census and column in pupils:
            theirs = census[column].reindex(tied[found]).astype(str).to_numpy()
            ours = pupils[column].astype(str).to_numpy()[found]
            agree.append((theirs == ours).mean())
    return bool(agree) and min(agree) >= CONFIRM
