"""School census pupil files, one CSV per January census (DOMAIN.md section 4).

Older files call the sex column ``gender`` and write dates as ``2020-Apr-25 00:00:00``; newer
ones use ``sex`` and ``YYYY-MM-DD``. Ethnicity uses the extended codes.
"""

from pathlib import Path

import numpy as np
import pandas as pd

from synthetic.adoption import Adoptions
from synthetic.calendar import Calendar, dates_for, format_dates
from synthetic.errors import recorded_dob, recorded_sex, unformatted_postcodes
from synthetic.formats.files import write_csv
from synthetic.geography import Geography
from synthetic.population import Population
from synthetic.reference import PLAA_BY_REASON
from synthetic.school import Schooling, extended_ethnicity
from synthetic.social_care import SocialCare
from synthetic.upn import wrong_check_letter

COLUMNS = ["upn", "formerupn", "surname", "forename", "middlenames", "preferredsurname",
           "formersurname", "dob", "SEX", "ethnicity", "postcode", "lea", "estab", "urn",
           "ncyearactual", "enrolstatus", "fsmeligible", "senprovision", "plaa"]
OLD_STYLE_UNTIL = 2022  # files up to this year use `gender` and the long date style


def write_school_census(rng, out: Path, schooling: Schooling, population: Population,
                        care: SocialCare, adoptions: Adoptions, multiplier: pd.Series,
                        calendar: Calendar, geography: Geography, config: dict) -> pd.DataFrame:
    """Write one pupil file per census year; return the truth of every row written."""
    cfg = config["errors"]
    pupils = _with_dual_registrations(rng, schooling.pupils, cfg)
    people = population.persons.set_index("person_id").loc[pupils.person_id.to_numpy()]
    m = multiplier.reindex(pupils.person_id).to_numpy()
    frame = pd.DataFrame({"person_id": pupils.person_id.to_numpy(), "year": pupils.year})

    upn = _recorded_upns(rng, pupils, schooling, m, cfg)
    frame = pd.concat([frame, upn], axis=1)
    names = _names(rng, pupils, people, adoptions, config, m)
    frame = pd.concat([frame, names], axis=1)
    dob, frame["dob_error"] = recorded_dob(rng, people.dob.to_numpy().astype("datetime64[D]"),
                                           m, cfg, calendar.start)
    frame["dob_value"] = dob
    frame["SEX"], frame["sex_error"] = recorded_sex(rng, people.sex.to_numpy(), m, cfg)
    persistent = np.random.default_rng(rng.integers(1 << 32))
    by_person = extended_ethnicity(persistent, population.persons.ethnicity.to_numpy())
    frame["ethnicity"] = pd.Series(by_person, index=population.persons.person_id).reindex(
        pupils.person_id).to_numpy()
    frame = pd.concat([frame, _addresses(rng, pupils, population, geography, calendar, m, cfg)],
                      axis=1)
    frame["lea"] = [f"{c:03d}" for c in geography.la_codes[pupils.la_index.to_numpy()]]
    frame["estab"] = pupils.estab.astype(str).to_numpy()
    frame["urn"] = pupils.urn.astype(str).to_numpy()
    nc = pupils.nc_year.to_numpy()
    frame["ncyearactual"] = np.where(nc == 0, "R", nc.astype(str))
    frame["enrolstatus"] = pupils.enrolstatus.to_numpy()
    frame["fsmeligible"] = np.where(_person_draw(pupils, 11) < 0.22, "1", "0")
    sen = _person_draw(pupils, 12)
    frame["senprovision"] = np.select([sen < 0.03, sen < 0.15], ["E", "K"], "N")
    frame["plaa"] = _plaa(pupils, care)

    truth = []
    for year, rows in frame.groupby("year", sort=True):
        rows = rows.sort_values(["lea", "estab", "person_id", "enrolstatus"], kind="stable")
        path = f"providers/dfe/school_census/{year}_pupils.csv"
        old = year <= OLD_STYLE_UNTIL
        style = "%Y-%b-%d 00:00:00" if old else "%Y-%m-%d"
        written = rows.assign(dob=format_dates(rows.dob_value.to_numpy(), style))
        written = written.rename(columns={"SEX": "gender" if old else "sex"})
        write_csv(written[[("gender" if old else "sex") if c == "SEX" else c for c in COLUMNS]],
                  out / path)
        truth.append(rows.assign(file=path, row=np.arange(2, len(rows) + 2)))
    rows = pd.concat(truth, ignore_index=True)
    return pd.DataFrame({
        "source": "school_census", "provider": "DFE", "period": rows.year, "file": rows.file,
        # the reader's record id: year, file name without its suffix, line
        "row": rows.row, "record_id": (rows.year.astype(str) + ":" + rows.year.astype(str)
                                       + "_pupils:" + rows.row.astype(str)),
        "person_id": rows.person_id, "dob_error": rows.dob_error, "sex_error": rows.sex_error,
        "upn_error": rows.upn_error, "postcode_error": rows.postcode_error,
        "name_error": rows.name_error, "duplicate": rows.enrolstatus == "S",
    })


def _person_draw(pupils: pd.DataFrame, salt: int) -> np.ndarray:
    """A uniform number fixed per person (so FSM and SEN stay put across years)."""
    ids = pupils.person_id.to_numpy().astype(np.uint64)
    mixed = (ids * np.uint64(2654435761) + np.uint64(salt * 97)) % np.uint64(1_000_003)
    return mixed.astype(float) / 1_000_003


def _with_dual_registrations(rng, pupils: pd.DataFrame, cfg: dict) -> pd.DataFrame:
    """Some pupils are on two schools' rolls: main (M) and subsidiary (S) registrations."""
    dual = rng.random(len(pupils)) < cfg["school_dual_registration"]
    pupils = pupils.assign(enrolstatus=np.where(dual, "M", "C"))
    second = pupils[dual].assign(enrolstatus="S")
    second["estab"] = second.estab.to_numpy() + 1
    second["urn"] = second.urn.to_numpy() + 1
    return pd.concat([pupils, second], ignore_index=True)


def _recorded_upns(rng, pupils: pd.DataFrame, schooling: Schooling, m: np.ndarray,
                   cfg: dict) -> pd.DataFrame:
    standing = pupils[["person_id", "year"]].merge(schooling.upn_by_year, how="left",
                                                   on=["person_id", "year"])
    upn = standing.upn.fillna("").to_numpy().astype(object)
    former = standing.former_upn.fillna("").to_numpy().astype(object)
    temporary = schooling.upn_issues[schooling.upn_issues.temporary]
    temp_upn = pd.Series(temporary.upn.to_numpy(), index=temporary.census_row.astype(int))
    is_temp = pupils.temporary_upn.to_numpy() & (pupils.enrolstatus.to_numpy() != "S")
    rows = np.flatnonzero(is_temp)
    upn[rows] = temp_upn.reindex(pupils.index[rows]).to_numpy()
    former[rows] = ""
    wrong = (upn != "") & ~is_temp & (rng.random(len(upn)) < cfg["upn_wrong_check_letter"] * m)
    upn[wrong] = wrong_check_letter(upn[wrong], rng)
    error = np.select([is_temp, wrong], ["temporary", "check_letter"], "").astype(object)
    return pd.DataFrame({"upn": upn, "formerupn": former, "upn_error": error})


def _names(rng, pupils, people, adoptions: Adoptions, config: dict, m) -> pd.DataFrame:
    """Names as the school holds them: adopted children may take their adopters' surname."""
    n = len(pupils)
    surname = people.surname.to_numpy().astype(object)
    forename = people.forename.to_numpy().astype(object)
    census_date = (pupils.year.astype(str) + "-01-18").to_numpy().astype("datetime64[D]")
    placed = adoptions.placements.merge(adoptions.households[["household_id", "surname"]],
                                        on="household_id").set_index("person_id")
    order = dates_for(pupils.person_id, placed.adoption_order_date)
    takes = _person_draw(pupils, 13) < config["adoption"]["takes_adopters_surname"]
    renamed = takes & ~np.isnat(order) & (order <= census_date)
    former_surname = np.where(renamed & (_person_draw(pupils, 14) < 0.5), surname, "")
    surname = np.where(renamed, pupils.person_id.map(placed.surname).to_numpy(), surname)
    # a preferred surname (a step-parent's, say) belongs to the pupil, not to one census
    pool = people.surname.drop_duplicates().sort_values().to_numpy()
    other = pool[(_person_draw(pupils, 16) * len(pool)).astype(int)]
    wants = _person_draw(pupils, 15) < config["population"]["preferred_surname_share"]
    preferred = np.where(wants, other, "")
    typo = rng.random(n) < config["errors"]["name_typo"] * m
    which = rng.integers(0, 2, n)
    in_forename, in_surname = typo & (which == 0), typo & (which == 1)
    typed_forename, typed_surname = forename.copy(), surname.astype(object)
    typed_forename[in_forename] = _typo(rng, forename[in_forename])
    typed_surname[in_surname] = _typo(rng, typed_surname[in_surname])
    # a name too short to mistype is no error
    error = np.select([typed_forename != forename, typed_surname != surname],
                      ["forename", "surname"], "")
    return pd.DataFrame({
        "surname": typed_surname, "forename": typed_forename,
        "middlenames": people.middle_name.to_numpy(), "preferredsurname": preferred,
        "formersurname": former_surname, "name_error": error,
    })


def _typo(rng, names: np.ndarray) -> np.ndarray:
    """Each name with one letter dropped, doubled or changed (names under 3 letters kept)."""
    out = names.copy()
    kinds = rng.integers(0, 3, len(names))
    positions = rng.integers(1, 3, len(names))
    letters = rng.choice(list("aeiourstln"), len(names))
    for row, name in enumerate(names):
        if len(name) < 3:
            continue
        p, letter = positions[row], letters[row]
        if kinds[row] == 0:
            out[row] = name[:p] + name[p + 1:]
        elif kinds[row] == 1:
            out[row] = name[:p] + name[p] + name[p:]
        else:
            out[row] = name[:p] + (letter if name[p] != letter else "e") + name[p + 1:]
    return out


def _addresses(rng, pupils, population, geography, calendar, m, cfg) -> pd.DataFrame:
    """The home postcode, sometimes a stale one (last year's), sometimes badly formatted."""
    postcode = pupils.postcode.to_numpy().copy()
    column = pupils.year.to_numpy() - calendar.first_year
    households = population.persons.set_index("person_id").household_id.reindex(
        pupils.person_id).to_numpy().astype(np.int64)
    previous = population.home_postcode[households, column]
    stale = (previous != postcode) & (rng.random(len(pupils)) < cfg["postcode_stale"] * m)
    postcode = np.where(stale, previous, postcode)
    text = geography.postcode_text(postcode)
    unformatted = ~stale & (rng.random(len(pupils)) < cfg["postcode_unformatted"])
    text[unformatted] = unformatted_postcodes(rng, text[unformatted])
    error = np.select([stale, unformatted], ["stale", "unformatted"], "").astype(object)
    return pd.DataFrame({"postcode": text, "postcode_error": error})


def _plaa(pupils: pd.DataFrame, care: SocialCare) -> np.ndarray:
    """Previously looked after: adopted (ADP), special guardianship (SGO) or CAO, once it ended."""
    ended = care.cla_periods[care.cla_periods.reason.isin(list(PLAA_BY_REASON))]
    ended = ended.sort_values("end").drop_duplicates("person_id", keep="last")
    code = pupils.person_id.map(ended.set_index("person_id").reason.map(PLAA_BY_REASON))
    end = dates_for(pupils.person_id, ended.set_index("person_id").end)
    census_date = (pupils.year.astype(str) + "-01-18").to_numpy().astype("datetime64[D]")
    return np.where(~np.isnat(end) & (end <= census_date), code.fillna(""), "").astype(object)

