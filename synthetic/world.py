"""Build a synthetic England and write it: every source in its real format, plus the truth."""

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from linkage.config import config_path, read_config
from synthetic.adoption import Adoptions, match_households
from synthetic.calendar import Calendar
from synthetic.errors import group_multiplier
from synthetic.formats.asg import write_asg
from synthetic.formats.attainment import write_attainment
from synthetic.formats.cin_census import write_cin
from synthetic.formats.files import write_parquet
from synthetic.formats.school_census import write_school_census
from synthetic.formats.ssda903 import write_ssda903
from synthetic.geography import Geography, build_geography
from synthetic.la_records import build_registrations
from synthetic.names import NamePools
from synthetic.outcomes import oc2_rows, oc3_rows
from synthetic.population import Population, build_population
from synthetic.randomness import stream
from synthetic.school import Schooling, build_schooling
from synthetic.social_care import REENTRY_CASE_BASE, SocialCare, build_social_care

Progress = Callable[[str], None]


@dataclass
class World:
    """Everything simulated, before any file is written."""

    seed: int
    people: int
    config: dict
    calendar: Calendar
    geography: Geography
    population: Population
    care: SocialCare
    adoptions: Adoptions
    schooling: Schooling
    oversample: float


def load_config(path: Path | None = None) -> dict:
    """The synthetic world's rates: ``configs/synthetic.yaml`` (or the site config folder's copy)
    unless another file is given; validated either way (``ConfigError`` naming file and field).
    """
    return read_config(path or default_config_path(), "synthetic.yaml")


def default_config_path() -> Path:
    """The synthetic.yaml in force: the site config folder's if it has one, else the packaged."""
    return config_path("synthetic.yaml")


def oversample_factor(people: int, config: dict) -> float:
    """How much the rare paths (care, adoption, looked-after mothers) are scaled up."""
    cfg = config["oversample"]
    return float(np.clip((cfg["reference_people"] / people) ** cfg["exponent"], 1.0, cfg["max"]))


def build_world(people: int, seed: int, config: dict,
                progress: Progress = lambda _: None) -> World:
    """Simulate the population and its contacts with services over the collection years."""
    calendar = Calendar(config["calendar"]["first_year"], config["calendar"]["years"])
    pop_cfg = config["population"]
    names = NamePools(pop_cfg["forename_zipf_exponent"], pop_cfg["surname_zipf_exponent"])
    factor = oversample_factor(people, config)
    progress("population")
    geography = build_geography(stream(seed, "geography"), people, config)
    population = build_population(stream(seed, "population"), people, calendar, geography,
                                  config, names)
    progress("social care")
    care = build_social_care(stream(seed, "social care"), population, calendar, geography,
                             config, factor)
    outcomes_rng = stream(seed, "outcomes")
    care.oc2 = oc2_rows(outcomes_rng, care.cla_periods, calendar, config["outcomes"])
    care.oc3 = oc3_rows(outcomes_rng, care.cla_periods, calendar, config["outcomes"])
    progress("adoption")
    adoptions = match_households(stream(seed, "adoption"), care.adoption_route,
                                 population.persons, calendar, geography, config, names)
    _placements_with_adopters(care, adoptions)
    adopters = adoptions.adopters.assign(kind="adopter", moved_la=False)
    population.persons = pd.concat([population.persons, adopters[
        ["person_id", "kind", "household_id", "dob", "sex", "ethnicity", "moved_la"]].rename(
        columns={"household_id": "adopter_household_id"})], ignore_index=True)
    for column in ("family_id", "household_id", "maternity_id", "father", "adopter_household_id"):
        population.persons[column] = population.persons[column].astype("Int64")
    population.persons["uasc"] = population.persons.uasc.fillna(False).astype(bool)
    _mark_transferred_as_movers(population, care)
    progress("schools")
    multiplier = group_multiplier(population.persons, config)
    schooling = build_schooling(seed, population, care, adoptions, calendar, geography, config,
                                multiplier)
    return World(seed, people, config, calendar, geography, population, care, adoptions,
                 schooling, factor)


def _placements_with_adopters(care: SocialCare, adoptions: Adoptions) -> None:
    """Episodes placed with adopters take the adopters' postcode."""
    postcode = adoptions.placements.merge(adoptions.households[["household_id", "postcode"]],
                                          on="household_id").set_index("person_id").postcode
    episodes = care.cla_episodes
    with_adopters = episodes.place.isin(["A3", "A4", "A5", "A6"]) & episodes.person_id.isin(
        postcode.index)
    episodes.loc[with_adopters, "pl_post"] = episodes.person_id[with_adopters].map(postcode)


def _mark_transferred_as_movers(population: Population, care: SocialCare) -> None:
    transferred = care.cla_periods.person_id[care.cla_periods.transferred_in]
    persons = population.persons
    persons["moved_la"] = persons.moved_la.fillna(False).astype(bool) | persons.person_id.isin(
        transferred)


def write_world(world: World, out: Path, progress: Progress = lambda _: None) -> dict:
    """Write every provider's files, the truth and ``world.json``; return the summary."""
    out.mkdir(parents=True, exist_ok=True)
    seed, config = world.seed, world.config
    errors = config["errors"]
    multiplier = group_multiplier(world.population.persons, config)
    registrations = build_registrations(stream(seed, "registrations"), world.care,
                                        world.population.persons, world.calendar,
                                        world.geography, multiplier, errors)
    upns = world.schooling.upn_by_year
    args = (world.calendar, world.geography)
    progress("SSDA903 returns")
    records = [write_ssda903(stream(seed, "ssda903"), out, world.care, world.adoptions,
                             registrations, upns, multiplier, *args, errors)]
    progress("CIN census")
    records.append(write_cin(stream(seed, "cin"), out, world.care, registrations, upns,
                             multiplier, *args, errors))
    progress("school census")
    records.append(write_school_census(stream(seed, "school census"), out, world.schooling,
                                       world.population, world.care, world.adoptions,
                                       multiplier, *args, config))
    progress("ASG")
    records.append(write_asg(stream(seed, "asg"), out, world.care, world.adoptions,
                             world.population.persons, multiplier, *args, errors))
    progress("attainment")
    records.append(write_attainment(stream(seed, "attainment"), out, records[2], world.care,
                                    config["attainment"]))
    progress("truth")
    truth_records = _truth_records(records)
    _write_truth(world, truth_records, out / "truth")
    summary = summarise(world, truth_records)
    (out / "world.json").write_text(json.dumps(summary, indent=2, sort_keys=True) + "\n",
                                    encoding="utf-8")
    return summary


def _truth_records(records: list[pd.DataFrame]) -> pd.DataFrame:
    frame = pd.concat([r for r in records if len(r)], ignore_index=True)
    for column in ("dob_error", "upn_error", "un_code", "postcode_error", "name_error"):
        frame[column] = frame.get(column, pd.Series(index=frame.index)).fillna("").astype(str)
    for column in ("sex_error", "unborn", "duplicate"):
        values = frame.get(column, pd.Series(False, index=frame.index))
        frame[column] = values.fillna(False).astype(bool)
    frame["period"] = frame.period.astype(int)
    frame["row"] = frame.row.astype(int)
    frame["person_id"] = frame.person_id.astype(np.int64)
    return frame


def _write_truth(world: World, records: pd.DataFrame, folder: Path) -> None:
    persons = world.population.persons.copy()
    persons["dob"] = pd.to_datetime(persons.dob).dt.date  # stored as a Parquet date
    maternity_size = persons.groupby("maternity_id").person_id.transform("size")
    persons["multiple_birth"] = (persons.kind == "child") & (maternity_size > 1)
    write_parquet(persons, folder / "persons.parquet")
    write_parquet(records, folder / "records.parquet")

    care, adoptions = world.care, world.adoptions
    codes = np.append(world.geography.agencies.agency_code.to_numpy(), "")  # -1: no agency
    households = adoptions.households.assign(
        agency_code=codes[adoptions.households.agency_row.to_numpy()],
        again_agency_code=codes[adoptions.households.again_agency_row.to_numpy()]).drop(
        columns=["agency_row", "again_agency_row"])
    write_parquet(households, folder / "adopter_households.parquet")
    write_parquet(adoptions.placements, folder / "placements.parquet")
    write_parquet(sibling_groups(care, adoptions), folder / "sibling_groups.parquet")
    write_parquet(care.mother_child, folder / "mother_child.parquet")
    periods = care.cla_periods.drop(columns=["dob", "sex"]).assign(
        la_code=world.geography.la_codes[care.cla_periods.la_index.to_numpy()])
    write_parquet(periods, folder / "cla_periods.parquet")
    write_parquet(world.schooling.upn_issues.drop(columns=["u", "phase"]),
                  folder / "upn_issues.parquet")
    _write_care_truth(world, folder)


def _write_care_truth(world: World, folder: Path) -> None:
    """CIN episodes, plans, 903 episodes, UASC and outcomes as the returns show them, and the
    collection years (what a truth cohort may be asked about)."""
    care, codes = world.care, world.geography.la_codes
    write_parquet(pd.DataFrame({"year": world.calendar.collection_years}),
                  folder / "collection_years.parquet")
    tables = {
        "cin_episodes": care.cin_episodes[
            ["person_id", "la_index", "referral_date", "closure_date"]],
        "cpp_plans": care.cpp_plans[
            ["person_id", "la_index", "referral_date", "start_date", "end_date"]],
        "cla_episodes": care.cla_episodes[
            ["person_id", "la_index", "decom", "dec", "ls", "place", "rec", "rne"]],
        "uasc": care.uasc[["person_id", "la_index", "duc"]],
        "outcomes_oc2": care.oc2.rename(columns={"year": "period"}),
        "outcomes_oc3": care.oc3.rename(columns={"year": "period"}),
    }
    for name, frame in tables.items():
        frame = frame.assign(la_code=[f"{c:03d}" for c in codes[frame.la_index.to_numpy()]])
        frame = frame.drop(columns="la_index")
        for column in frame.columns:
            if pd.api.types.is_datetime64_any_dtype(frame[column]):
                frame[column] = frame[column].dt.date  # stored as a Parquet date
        front = ["person_id", "la_code"]
        write_parquet(frame[front + [c for c in frame.columns if c not in front]],
                      folder / f"{name}.parquet")


def sibling_groups(care: SocialCare, adoptions: Adoptions) -> pd.DataFrame:
    """Children of one referral who are on the adoption pathway together (two or more)."""
    route = care.adoption_route[["case_id", "person_id"]]
    size = route.groupby("case_id").person_id.transform("size")
    groups = route[size > 1].sort_values(["case_id", "person_id"], ignore_index=True)
    groups["sibling_group_id"] = np.unique(groups.case_id.to_numpy(), return_inverse=True)[1] + 1
    household = groups.person_id.map(adoptions.placements.set_index("person_id").household_id)
    groups["household_id"] = household.astype("Int64")
    return groups.drop(columns="case_id")


def summarise(world: World, records: pd.DataFrame) -> dict:
    """Counts of the world: people, records per source, and injected errors by kind."""
    persons = world.population.persons
    care = world.care
    children = persons[persons.kind == "child"]
    twins = children.groupby("maternity_id").size()
    error_counts = {}
    for source, rows in records.groupby("source"):
        counts = {}
        for column in ("dob_error", "upn_error", "postcode_error", "name_error"):
            for kind, n in rows[column].value_counts().items():
                if kind:
                    counts[f"{column.removesuffix('_error')}_{kind}"] = int(n)
        for column in ("sex_error", "unborn", "duplicate"):
            if rows[column].any():
                counts[column.removesuffix("_error")] = int(rows[column].sum())
        for code, n in rows.un_code.value_counts().items():
            if code:
                counts[f"upn_unknown_{code}"] = int(n)
        error_counts[source] = dict(sorted(counts.items()))
    orders = care.cla_periods.reason.isin(["E11", "E12"])
    return {
        "seed": world.seed,
        "people": world.people,
        "config_sha256": hashlib.sha256(
            json.dumps(world.config, sort_keys=True).encode()).hexdigest(),
        "collection_years": world.calendar.collection_years,
        "oversample_factor": round(world.oversample, 4),
        "persons": {
            "children": len(children) - len(care.mother_child) - int(children.uasc.sum()),
            "babies_of_looked_after_mothers": len(care.mother_child),
            "unaccompanied_asylum_seeking_children": int(children.uasc.sum()),
            "adopters": int((persons.kind == "adopter").sum()),
            "twin_or_multiple_births": int((twins > 1).sum()),
            "moved_la": int(children.moved_la.sum()),
        },
        "local_authorities": [f"{c:03d}" for c in world.geography.la_codes],
        "adoption_agencies": world.geography.agencies.agency_code.tolist(),
        "services": {
            "children_in_need": int(care.cin_episodes.person_id.nunique()),
            "looked_after": int(care.cla_periods.person_id.nunique()),
            "transfers_between_las": int(care.cla_periods.transferred_in.sum()),
            "adoption_decisions": len(care.adoption_route),
            "adopted": int(orders.sum()),
            "adopter_households": len(world.adoptions.households),
            "sibling_groups_on_adoption_pathway": int(
                sibling_groups(care, world.adoptions).sibling_group_id.nunique()),
            "looked_after_mothers": len(care.mother_child),
            "re_entries_to_care": int(((care.cla_periods.case_id <= REENTRY_CASE_BASE)
                                        & ~care.cla_periods.transferred_in).sum()),
            "child_protection_plans": len(care.cpp_plans),
            "plans_left_open_after_closure": int(care.cpp_plans.left_open.sum()),
        },
        "records": {k: int(v) for k, v in records.source.value_counts().sort_index().items()},
        "injected_errors": error_counts,
    }
