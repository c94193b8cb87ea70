"""Family keys: accuracy on the small world, and each rule's failure modes on small tables."""

import json

import duckdb
import pandas as pd
from typer.testing import CliRunner

from linkage.cli import app
from linkage.config import load_config
from linkage.families.child_adopter import link_children
from linkage.families.households import adopter_households
from linkage.families.mothers import mother_child_links
from linkage.families.siblings import sibling_groups

runner = CliRunner()
CONFIG = load_config("families.yaml")


def test_family_keys_are_accurate_on_the_world(linked_spine, world_dir, linkage_key):
    spine, summary = linked_spine
    assert summary["families"]["child_adopter_links"] > 0
    result = runner.invoke(app, ["evaluate", "--spine", str(spine), "--truth",
                                 str(world_dir / "truth"), "--key", str(linkage_key), "--json"])
    assert result.exit_code == 0, result.output
    scores = json.loads(result.stdout)
    adopters, siblings, mothers = (scores["child_adopter"], scores["siblings"],
                                   scores["mother_child"])
    assert adopters["true"] > 10 and siblings["true_pairs"] > 20
    assert adopters["precision"] >= 0.99 and adopters["recall"] >= 0.95
    assert siblings["pair_precision"] >= 0.98 and siblings["pair_recall"] >= 0.90
    assert siblings["groups_exact"] >= 0.85
    assert mothers["precision"] >= 0.9 and mothers["recall"] >= 0.8


def test_family_tables_hold_only_keys_and_are_stable(linked_spine, world_bundles, tmp_path):
    spine, _ = linked_spine
    again = tmp_path / "again.duckdb"
    runner.invoke(app, ["link", "--spine", str(again), "--seed", "1", *map(str, world_bundles)])
    tables = {}
    for path in (spine, again):
        con = duckdb.connect(str(path), read_only=True)
        # the latest version only: another test may have linked the session spine again
        tables[path] = {name: con.execute(
            f"SELECT * EXCLUDE (version) FROM {name} WHERE version = "
            "(SELECT max(version) FROM spine_version) ORDER BY ALL").df()
                        for name in ("adopter_household", "child_adopter_link",
                                     "sibling_group", "mother_child_link")}
        con.close()
    first = tables[spine]
    for name, frame in first.items():
        pd.testing.assert_frame_equal(frame, tables[again][name])  # deterministic
        for column in [c for c in frame if c.endswith("_key")]:
            prefix = {"household_key": "H", "sibling_group_key": "S"}.get(column, "P")
            assert frame[column].str.match(rf"^{prefix}[0-9a-f]{{16}}$").all(), column
        if "confidence" in frame:
            assert frame.confidence.between(CONFIG["child_adopter"]["min_confidence"] - 0.1,
                                            1).all()
    groups = first["sibling_group"]
    assert (groups.groupby("sibling_group_key").size() == groups.groupby(
        "sibling_group_key").group_size.first()).all()


def records(rows: list[dict]) -> pd.DataFrame:
    """Family records as the spine and bundles give them (tokens are small integers here)."""
    frame = pd.DataFrame(rows)
    frame["period"] = 2024
    frame["record_id"] = [f"R{i}" for i in range(len(frame))]
    return frame


def adopter(key, ref, sex, agency="A1", matched=1, placed=2, children="1",
            status="Married"):
    return {"person_key": key, "source": "asg_adopters", "provider": agency,
            "household_ref": ref, "sex": sex, "relationship_status": status,
            "children_matched": children, "matched_date": matched, "placed_date": placed,
            "matched_week": matched * 100, "placed_week": placed * 100}


def child(key, matched=1, placed=2, agency="A1", sex_adopters="", **extra):
    return {"person_key": key, "source": "asg_children", "provider": agency,
            "matched_date": matched, "placed_date": placed, "matched_week": matched * 100,
            "placed_week": placed * 100, "sibling_group": "N", "sex_adopters": sex_adopters,
            **extra}


def ad1(key, sex_adopters, matched=1, placed=2, nb="2", ls="L11"):
    return {"person_key": key, "source": "ssda903", "provider": "100", "matched_date": matched,
            "placed_date": placed, "matched_week": matched * 100, "placed_week": placed * 100,
            "nb_adopters": nb, "sex_adopters": sex_adopters, "ls_adopters": ls}


def links_for(rows):
    table = records(rows)
    households = adopter_households(table, "secret")
    links = link_children(table, households, CONFIG)
    owner = households.explode("members").set_index("members").household_key
    return links.assign(adopter=links.household_key.map(
        lambda h: sorted(owner[owner == h].index)[0]))


def test_the_same_adopter_in_two_agencies_joins_their_households():
    table = records([adopter("Pa", "H1", "M", agency="A1"), adopter("Pb", "H1", "F", agency="A1"),
                     adopter("Pa", "H9", "M", agency="A2"), adopter("Pc", "H1", "F", agency="A2")])
    households = adopter_households(table, "secret")
    assert len(households) == 2  # A1's H1 with A2's H9 (adopter Pa); A2's H1 alone
    joined = households[households.adopters == 2].iloc[0]
    assert joined.members == ["Pa", "Pb"] and joined.sexes == "MF"
    assert set(joined.agencies) == {"A1", "A2"}


def test_a_household_that_adopts_again_takes_a_child_at_each_approval():
    """The same two adopters approved twice (a new household reference, another agency the
    second time): one household, and each approval's child linked to it."""
    rows = [adopter("Pa", "H1", "M"), adopter("Pb", "H1", "F"),
            adopter("Pa", "H7", "M", agency="A2", matched=50, placed=52),
            adopter("Pb", "H7", "F", agency="A2", matched=50, placed=52),
            child("Pk"), child("Pm", matched=50, placed=52, agency="A2")]
    households = adopter_households(records(rows), "secret")
    assert len(households) == 1 and households.children.iloc[0] == 2
    links = links_for(rows)
    assert sorted(links.child_person_key) == ["Pk", "Pm"]
    assert links.household_key.nunique() == 1


def test_dates_find_the_household_and_ad1_decides_between_two():
    rows = [adopter("Pa", "H1", "M"), adopter("Pb", "H1", "F"),       # MF couple
            adopter("Pc", "H2", "F"), adopter("Pd", "H2", "F"),       # FF couple, same dates
            child("Pk"), ad1("Pk", "FF")]
    links = links_for(rows)
    assert list(links.adopter) == ["Pc"]
    assert "adopters_sex=agree" in links.evidence.iloc[0]


def test_indistinguishable_households_give_no_link():
    rows = [adopter("Pa", "H1", "M"), adopter("Pb", "H1", "F"),
            adopter("Pc", "H2", "M"), adopter("Pd", "H2", "F"), child("Pk")]
    assert links_for(rows).empty


def test_dates_a_few_days_apart_link_through_the_week_and_far_apart_do_not():
    near = links_for([adopter("Pa", "H1", "F", matched=7, placed=8, status="Single"),
                      child("Pk", matched=1, placed=8) | {"matched_week": 700}])
    assert list(near.adopter) == ["Pa"] and "matched_date=same_week" in near.evidence[0]
    far = links_for([adopter("Pa", "H1", "F", matched=7, placed=9),
                     child("Pk", matched=1, placed=8) | {"placed_week": 900}])
    assert far.empty  # a shared week alone, with both dates different, is not enough


def test_a_household_takes_no_more_children_than_it_was_matched_with():
    rows = [adopter("Pa", "H1", "F", children="1", status="Single"),
            child("Pk", agency="A1"), child("Pl", agency="A9")]
    links = links_for(rows)
    assert list(links.child_person_key) == ["Pk"]  # the same agency is the stronger


def care(key, la, entered, postcode, dob=1):
    return {"person_key": key, "source": "ssda903", "provider": la, "entered_care_date": entered,
            "postcode": postcode, "dob": dob}


def test_siblings_enter_care_together_from_one_home():
    table = records([care("Pa", "100", 5, 77, dob=1), care("Pb", "100", 5, 77, dob=2),
                     care("Pc", "100", 5, 88, dob=3),         # same day, another home
                     care("Pd", "200", 5, 77, dob=4)])        # another LA
    groups = sibling_groups(table, pd.DataFrame(columns=["child_person_key", "household_key"]),
                            CONFIG, "secret")
    assert sorted(groups.person_key) == ["Pa", "Pb"]
    assert groups.group_size.tolist() == [2, 2]
    assert (groups.confidence >= CONFIG["siblings"]["min_confidence"]).all()


def test_children_placed_with_one_household_are_siblings():
    links = pd.DataFrame({"child_person_key": ["Pa", "Pb", "Pc"],
                          "household_key": ["H1", "H1", "H2"]})
    table = records([care("Pa", "100", 1, 7), care("Pb", "200", 2, 8), care("Pc", "100", 3, 9)])
    groups = sibling_groups(table, links, CONFIG, "secret")
    assert sorted(groups.person_key) == ["Pa", "Pb"]
    assert groups.evidence.str.contains("placed_together").all()


def mother(key, mc_dob, la="100", ethnicity="WBRI"):
    return {"person_key": key, "source": "ssda903", "provider": la, "mother": "1",
            "mother_child_dob": mc_dob, "dob": 1000 + len(key), "ethnicity": ethnicity}


def baby(key, dob, la="100", postcode=5, ethnicity="WBRI"):
    return {"person_key": key, "source": "ssda903", "provider": la, "dob": dob,
            "postcode": postcode, "ethnicity": ethnicity, "mother": ""}


def test_a_mother_links_to_her_baby_or_twins_but_not_to_a_guess():
    alone = mother_child_links(records([mother("Pm", 42), baby("Pb", 42)]), CONFIG)
    assert alone[["mother_person_key", "child_person_key"]].values.tolist() == [["Pm", "Pb"]]
    twins = mother_child_links(records([mother("Pm", 42), baby("Pb", 42), baby("Pc", 42)]),
                               CONFIG)
    assert sorted(twins.child_person_key) == ["Pb", "Pc"]
    unrelated = mother_child_links(records([mother("Pm", 42), baby("Pb", 42, postcode=5),
                                            baby("Pc", 42, postcode=6)]), CONFIG)
    assert unrelated.empty
    elsewhere = mother_child_links(records([mother("Pm", 42), baby("Pb", 42, la="200",
                                                                   ethnicity="BAFR")]), CONFIG)
    assert elsewhere.empty


def test_a_903_return_alone_gives_siblings_and_no_adoption_links():
    table = records([care("Pa", "100", 5, 77), care("Pb", "100", 5, 77)])
    households = adopter_households(table, "secret")
    assert households.empty
    assert link_children(table, households, CONFIG).empty
    assert mother_child_links(table, CONFIG).empty
    assert len(sibling_groups(table, link_children(table, households, CONFIG), CONFIG,
                              "secret")) == 2


def test_a_shared_pupil_home_confirms_flagged_siblings():
    asg = [{"person_key": key, "source": "asg_children", "provider": "RAA01", "la_code": "100",
            "entered_care_date": 5, "sibling_group": "Y", "dob": dob}
           for key, dob in (("Pa", 1), ("Pb", 2))]
    none = pd.DataFrame(columns=["child_person_key", "household_key"])
    assert sibling_groups(records(asg), none, CONFIG, "secret").empty  # too weak alone
    homes = pd.DataFrame({"person_key": ["Pa", "Pb", "Pc"], "period": 2024,
                          "postcode": [9, 9, 9], "surname_bloom": [b"x", b"x", b"y"]})
    groups = sibling_groups(records(asg), none, CONFIG, "secret", homes)
    assert sorted(groups.person_key) == ["Pa", "Pb"]
    assert groups.evidence.str.contains("shared_pupil_home").all()
