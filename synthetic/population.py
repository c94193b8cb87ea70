"""Children born into families, households with address histories, and moves between LAs."""

from dataclasses import dataclass

import numpy as np
import pandas as pd

from synthetic.calendar import DAY, Calendar
from synthetic.geography import Geography
from synthetic.grouping import cumsum_within, rank_within
from synthetic.names import NamePools
from synthetic.randomness import weighted_choice
from synthetic.reference import MIXED_CODES


@dataclass
class Population:
    """People (children, then adopters and babies appended later) and where their homes are.

    ``home_la`` and ``home_postcode`` hold one column per collection year plus one for the year
    before the window, row per household.
    """

    persons: pd.DataFrame
    home_la: np.ndarray
    home_postcode: np.ndarray


def build_population(rng: np.random.Generator, people: int, calendar: Calendar,
                     geography: Geography, config: dict, names: NamePools) -> Population:
    """Draw families of children until ``people`` children exist, with homes over time."""
    fam_cfg, pop_cfg = config["families"], config["population"]
    maternities = _maternities(rng, people, fam_cfg)
    children = _children_of(rng, maternities, fam_cfg)[:people].reset_index(drop=True)
    children = _place_births(rng, children, calendar, fam_cfg)

    n = len(children)
    children["person_id"] = np.arange(1, n + 1)
    children["kind"] = "child"
    children["sex"] = np.where(rng.random(n) < pop_cfg["sex_female_share"], "F", "M")

    families = children.family_id.to_numpy()
    n_fam = families.max() + 1
    family_ethnicity = weighted_choice(rng, pop_cfg["ethnicity_weights"], n_fam)
    ethnicity = family_ethnicity[families].astype(object)
    new_father = children.father.to_numpy() > 0
    mixed = new_father & (rng.random(n) < pop_cfg["mixed_child_of_other_ethnicity"])
    ethnicity[mixed] = rng.choice(MIXED_CODES, int(mixed.sum()))
    children["ethnicity"] = ethnicity

    family_surname = names.surnames_for(rng, n_fam)
    # a father's surname and whether his child lives apart are per maternity, so twins agree
    maternity = children.maternity_id.to_numpy()
    father_surname = names.surnames_for(rng, maternity.max() + 1)[maternity]
    children["surname"] = np.where(new_father, father_surname, family_surname[families])
    children["forename"] = names.forenames(rng, children.sex.to_numpy())
    middle = names.forenames(rng, children.sex.to_numpy())
    children["middle_name"] = np.where(rng.random(n) < pop_cfg["middle_name_share"], middle, "")

    # households: the family's own, plus one per half-sibling who lives with the other parent
    apart = new_father & (rng.random(maternity.max() + 1) < fam_cfg["half_sibling_lives_apart"])[
        maternity]
    apart_maternity = np.unique(maternity[apart], return_inverse=True)[1]
    household = families.copy()
    household[apart] = n_fam + apart_maternity
    children["household_id"] = household
    family_la = rng.integers(0, geography.n_las, n_fam)
    # a household living apart starts in the family's LA
    first_apart = np.unique(maternity[apart], return_index=True)[1]
    initial_la = np.r_[family_la, family_la[families[apart][first_apart]]]
    home_la, home_postcode = _address_histories(rng, initial_la, calendar, geography, fam_cfg)
    children["moved_la"] = (home_la[children.household_id.to_numpy()]
                            != home_la[children.household_id.to_numpy(), :1]).any(axis=1)
    columns = ["person_id", "kind", "family_id", "household_id", "maternity_id", "father",
               "dob", "sex", "ethnicity", "forename", "middle_name", "surname", "moved_la"]
    return Population(children[columns], home_la, home_postcode)


def _maternities(rng: np.random.Generator, people: int, cfg: dict) -> pd.DataFrame:
    """Families and their maternities (births, a multiple birth counted once)."""
    weights = {int(k): v for k, v in cfg["maternities_weights"].items()}
    mean_children = sum(k * v for k, v in weights.items()) / sum(weights.values())
    n_fam = int(people / mean_children * 1.2) + 10
    per_family = weighted_choice(rng, weights, n_fam).astype(int)
    family_id = np.repeat(np.arange(n_fam), per_family)
    order = rank_within(family_id)
    twins = rng.random(len(family_id)) < cfg["multiple_birth_rate"]
    triplets = twins & (rng.random(len(family_id)) < cfg["triplet_share"])
    size = 1 + twins.astype(int) + triplets.astype(int)
    # a later maternity may have a different father: a half-sibling with another surname
    new_father = (order > 0) & (rng.random(len(family_id)) < cfg["half_sibling_rate"])
    father = np.where(new_father, order, 0)
    return pd.DataFrame({"family_id": family_id, "order": order, "size": size, "father": father})


def _children_of(rng: np.random.Generator, maternities: pd.DataFrame, cfg: dict) -> pd.DataFrame:
    gaps = rng.uniform(cfg["birth_gap_years"]["min"], cfg["birth_gap_years"]["max"],
                       len(maternities)) * 365.25
    gaps[maternities.order.to_numpy() == 0] = 0
    maternities = maternities.assign(offset_days=cumsum_within(maternities.family_id.to_numpy(),
                                                                gaps))
    maternities["maternity_id"] = np.arange(len(maternities))
    return maternities.loc[maternities.index.repeat(maternities["size"])]


def _place_births(rng, children: pd.DataFrame, calendar: Calendar, cfg: dict) -> pd.DataFrame:
    """Anchor each family's first birth so every child is under 18 at some point in the window."""
    earliest = calendar.start - 18 * 365 * DAY + 30 * DAY
    span = children.groupby("family_id").offset_days.transform("max").to_numpy()
    window = (calendar.end - earliest).astype(int) - span
    family_ids, first = np.unique(children.family_id.to_numpy(), return_index=True)
    anchor = rng.uniform(0, 1, len(family_ids)) * np.maximum(window[first], 0)
    anchor_of_child = anchor[np.searchsorted(family_ids, children.family_id.to_numpy())]
    days = np.floor(anchor_of_child + children.offset_days.to_numpy()).astype(int)
    children = children.assign(dob=earliest + days * DAY)
    children["family_id"] = np.unique(children.family_id.to_numpy(), return_inverse=True)[1]
    return children


def _address_histories(rng, initial_la: np.ndarray, calendar: Calendar, geography: Geography,
                       cfg: dict) -> tuple[np.ndarray, np.ndarray]:
    """Each household's LA and postcode for the year before the window and each year in it."""
    columns, n_households = calendar.years + 1, len(initial_la)
    la = np.empty((n_households, columns), dtype=np.int32)
    postcode = np.empty((n_households, columns), dtype=np.int64)
    la[:, 0] = initial_la
    postcode[:, 0] = geography.random_postcodes(rng, la[:, 0])
    for year in range(1, columns):
        moves = rng.random(n_households) < cfg["move_address_rate"]
        to_other_la = moves & (rng.random(n_households) < cfg["move_la_share"])
        shift = rng.integers(1, max(geography.n_las, 2), n_households)
        la[:, year] = np.where(to_other_la, (la[:, year - 1] + shift) % geography.n_las,
                               la[:, year - 1])
        fresh = geography.random_postcodes(rng, la[:, year])
        postcode[:, year] = np.where(moves, fresh, postcode[:, year - 1])
    return la, postcode


def append_children(rng, population: Population, geography: Geography, la: np.ndarray,
                    dob: np.ndarray, sex: np.ndarray, ethnicity: np.ndarray,
                    surname: np.ndarray, **flags) -> pd.DataFrame:
    """Add children born outside the simulated families (babies of looked-after mothers,
    children arriving from abroad), each in a household of their own that stays in ``la``.

    ``flags`` are extra boolean columns of the new persons (such as ``uasc``). Returns the new
    persons, with a ``home_postcode`` column.
    """
    persons = population.persons
    n = len(dob)
    first_id = int(persons.person_id.max()) + 1
    first_family = int(persons.family_id.max()) + 1
    first_household = population.home_la.shape[0]
    home = np.repeat(la[:, None], population.home_la.shape[1], axis=1)
    postcode = np.repeat(geography.random_postcodes(rng, la)[:, None], home.shape[1], axis=1)
    children = pd.DataFrame({
        "person_id": np.arange(first_id, first_id + n),
        "kind": "child",
        "family_id": np.arange(first_family, first_family + n),
        "household_id": np.arange(first_household, first_household + n),
        "maternity_id": -int(persons.maternity_id.clip(upper=0).abs().max()) - 1 - np.arange(n),
        "father": 0,
        "dob": dob,
        "sex": sex,
        "ethnicity": ethnicity,
        "forename": "",
        "middle_name": "",
        "surname": surname,
        "moved_la": False,
        **flags,
    })
    population.persons = pd.concat([persons, children], ignore_index=True)
    population.home_la = np.vstack([population.home_la, home])
    population.home_postcode = np.vstack([population.home_postcode, postcode])
    return children.assign(home_postcode=postcode[:, 0])
