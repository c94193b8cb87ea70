"""The attack suite (bench/attacks) on the session's small world: what the linkage unit's
view gives away must stay under configs/attack_limits.yaml, and the attacks must have teeth."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from bench.attacks import pattern_mining
from bench.attacks.knowledge import Knowledge
from bench.attacks.run import run_attacks
from bench.attacks.view import View
from linkage.pseudonymise.bloom import bloom_filters, normalise_name
from synthetic.names import NamePools

LIMITS = yaml.safe_load((Path(__file__).parents[1] / "configs" / "attack_limits.yaml")
                        .read_text())


@pytest.fixture(scope="module")
def attack_results(world_dir, world_bundles, linked_spine) -> dict:
    return run_attacks(world_dir, world_bundles, linked_spine[0], seed=0, quick=True,
                       carry_over_bundles=2)


@pytest.mark.parametrize("measure", sorted(LIMITS))
def test_view_gives_away_less_than_the_limit(attack_results, measure):
    assert attack_results["summary"][measure] <= LIMITS[measure]


def test_names_without_salt_are_recovered(attack_results):
    """The limits above hold because of the encoding, not because the attacks are toothless:
    the same pattern mining recovers most names from unsalted filters (next test), and here
    the salted ones give nothing beyond guessing the commonest name."""
    summary, chance = attack_results["summary"], attack_results["chance"]
    assert summary["exact_forename"] <= chance["forename_bloom"] + 0.01
    assert attack_results["pattern_mining"]["columns"]["forename_bloom"]["share"] <= 0.01


def test_pattern_mining_undoes_balanced_hardening():
    """Filter + complement under a keyed permutation still gives names away: the complement
    half is told apart by its density, and the rest is an unhardened filter."""
    rng = np.random.default_rng(3)
    pools = NamePools(0.6, 0.5)
    sex = rng.choice(np.array(["F", "M"]), size=4000)
    people = pd.DataFrame({"forename": pools.forenames(rng, sex),
                           "surname": pools.surnames_for(rng, len(sex)), "sex": sex,
                           "middle_name": ""})
    key = bytes(range(32))
    tokens = pd.DataFrame({
        "source": "test", "provider": "T", "period": 2024,
        "record_id": [str(i) for i in range(len(people))],
        "forename_bloom": bloom_filters(people.forename, key, 1024, 15, "balanced"),
        "surname_bloom": bloom_filters(people.surname, key, 1024, 15, "balanced"),
        "sex": people.sex})
    view = View(tokens, pd.DataFrame(columns=["source", "provider", "period", "record_id",
                                              "person_key"]))
    knowledge = Knowledge.from_population(people, 2024)
    decoded = pattern_mining.pattern_mining_attack(view, knowledge)
    for column, plain in (("forename_bloom", people.forename), ("surname_bloom",
                                                                people.surname)):
        assert (decoded[column] == normalise_name(plain)).mean() > 0.5
    # unhardened and unsalted (schema version 1's filters): the same
    plain_view = View(tokens.assign(
        forename_bloom=bloom_filters(people.forename, key, 1024, 15),
        surname_bloom=bloom_filters(people.surname, key, 1024, 15)), view.person_record)
    decoded = pattern_mining.pattern_mining_attack(plain_view, knowledge)
    assert (decoded["forename_bloom"] == normalise_name(people.forename)).mean() > 0.5


def format_v2_like(view: View) -> View:
    """Today's view made to look like format v2: no readable content, no plain attributes,
    no date-of-birth part tokens, record ids replaced by pseudonyms, rows shuffled."""
    tokens = view.tokens.drop(columns=[c for c in view.tokens.columns if c.startswith(
        "content_") or c in ("ethnicity", "sex", "age_band", "dob_year_month", "dob_year_day",
                            "dob_month_day", "dob_swapped", "sex_dob", "sex_birth_year")])
    tokens = tokens.sample(frac=1, random_state=1).reset_index(drop=True)
    tokens["record_id"] = pd.util.hash_array(tokens.record_id.to_numpy(dtype=object)).astype(
        str)
    tokens["row"] = tokens.groupby("bundle").cumcount()
    return View(tokens, view.person_record.iloc[0:0], view.manifests)


def test_attacks_run_unchanged_on_a_format_v2_like_view(world_dir, world_bundles,
                                                        linked_spine):
    from bench.attacks import carry_over, dob_structure, frequency, membership
    from bench.attacks.knowledge import insider_school_census
    from bench.attacks.run import population_knowledge
    from bench.attacks.view import linkage_unit_view

    bundles = [b for b in world_bundles if "la_" in b.name][:2]
    view = format_v2_like(linkage_unit_view(bundles, linked_spine[0]))
    knowledge = population_knowledge(world_dir, 2025)
    assert not any(c.startswith("content_") for c in view.plain_columns())
    guesses = frequency.frequency_attack(view, knowledge)
    names = pattern_mining.pattern_mining_attack(view, knowledge)
    dob = dob_structure.dob_structure_attack(view, knowledge)
    pupils = insider_school_census(world_dir).head(500)
    flagged = membership.membership_attack(view, pupils, names, dob.guess)
    tied = carry_over.carry_over_attack(view, format_v2_like(view))
    assert set(guesses) <= set(view.bloom_columns() + view.token_columns())
    assert all(len(g) == len(view.tokens) for g in names.values())
    assert len(dob) == len(view.tokens)
    assert len(flagged.flags) == len(pupils) and flagged.method
    assert len(tied.rows) == len(view.tokens) and tied.method != "record id"
