"""The synthetic world's adopters who adopt again, and its key stage attainment files: what the
files say, what the truth says, and that the toolkit reads them as a provider's would be."""

import copy
import json
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from linkage.cli import app
from synthetic.world import build_world, load_config, write_world
from tests.output import said

runner = CliRunner()
ATTAINMENT = Path("providers/dfe/generic/attainment")


REPEAT_YEARS = {"min": 0.5, "max": 4.0}


@pytest.fixture(scope="module")
def repeat_world(tmp_path_factory) -> Path:
    """A small world where many households adopt again, half of them through another agency:
    adoptions over-sampled, seven years, and a second match from half a year after the first
    adoption order (a household needs time to adopt twice inside the window)."""
    config = copy.deepcopy(load_config())
    config["adoption"]["adopt_again"].update(share=0.5, same_agency=0.5, years=REPEAT_YEARS)
    config["oversample"]["max"] = 10.0
    config["calendar"]["years"] = 7
    out = tmp_path_factory.mktemp("repeat_world")
    write_world(build_world(1500, 8, config), out)
    return out


def adopter_rows(world: Path) -> pd.DataFrame:
    """Every ASG adopter row as written, with its truth (person, household, agency file)."""
    truth = pd.read_parquet(world / "truth" / "records.parquet")
    truth = truth[truth.source == "asg_adopters"]
    rows = []
    for file, records in truth.groupby("file"):
        written = pd.read_csv(world / file, dtype=str, keep_default_na=False)
        rows.append(written.assign(row=range(2, len(written) + 2)).merge(
            records[["row", "file", "person_id", "dob_error"]], on="row", validate="1:1"))
    persons = pd.read_parquet(world / "truth" / "persons.parquet")
    home = persons.set_index("person_id").adopter_household_id
    frame = pd.concat(rows, ignore_index=True)
    return frame.assign(household_id=frame.person_id.map(home))


def test_a_household_that_adopts_again_appears_in_a_second_approval_with_previously_adopted(
        repeat_world):
    households = pd.read_parquet(repeat_world / "truth" / "adopter_households.parquet")
    placements = pd.read_parquet(repeat_world / "truth" / "placements.parquet")
    again = households[households.approvals == 2].set_index("household_id")
    assert len(again) >= 5 and (households.approvals <= 2).all()
    # both agencies kinds of second approval occur: the same agency, and another one
    same = again.again_agency_code == again.agency_code
    assert same.any() and (~same).any()

    adopters = adopter_rows(repeat_world)
    mine = adopters[adopters.household_id.isin(again.index)]
    per_person = mine.groupby("person_id")
    # each adopter of such a household: two records, with two adopter ids and two household
    # references, the later one flagged as having adopted before
    assert (per_person.size() == 2).all()
    assert (per_person.adopter_id.nunique() == 2).all()
    later = mine.sort_values("date_registration").groupby("person_id").tail(1)
    assert (later.previously_adopted == "Y").all()
    earlier = mine.drop(later.index)
    assert set(later.household_ref + later.agency_code).isdisjoint(
        earlier.household_ref + earlier.agency_code)
    # the same person as the agency holds it: DOB and gender agree where none was misrecorded
    clean = mine[mine.dob_error == ""].groupby("person_id")
    assert (clean.dob.nunique() <= 1).all() and (per_person.ethnicity.nunique() == 1).all()
    # the later record is in the second approval's agency's file
    expected = later.household_id.map(again.again_agency_code)
    assert (later.agency_code == expected).all()

    # the truth: the household took a child at each approval, the second match within the
    # configured years after the first adoption order, and counts every child it took
    first = placements[placements.approval == 1].groupby("household_id").adoption_order_date.min()
    second = placements[placements.approval == 2].groupby("household_id").matched_date.min()
    years = ((second - first.reindex(second.index)).dt.days / 365.25)
    assert set(second.index) == set(again.index)
    assert years.between(REPEAT_YEARS["min"] - 0.01, REPEAT_YEARS["max"] + 0.01).all()
    taken = placements.groupby("household_id").size()
    assert (again.children_matched == taken.reindex(again.index)).all()
    # and a later approval's row counts only the children matched at that approval
    assert (later.children_matched.astype(int)
            == later.household_id.map(placements[placements.approval == 2]
                                      .groupby("household_id").size())).all()


def test_adopters_who_adopt_once_are_not_flagged_from_their_own_records(repeat_world):
    households = pd.read_parquet(repeat_world / "truth" / "adopter_households.parquet")
    adopters = adopter_rows(repeat_world)
    once = adopters[adopters.household_id.isin(
        households[households.approvals == 1].household_id)]
    # only adopters who adopted before the simulated years (configs: before_window) say Y
    share = (once.previously_adopted == "Y").mean()
    assert share < 0.15 and (once.groupby("person_id").size() == 1).all()


def attainment_files(world: Path) -> list[Path]:
    return sorted((world / ATTAINMENT).glob("*.csv"))


def test_the_attainment_files_read_through_check_with_no_record_rejected(world_dir,
                                                                         truth_records):
    files = attainment_files(world_dir)
    assert [f.stem for f in files] == ["2020", "2021", "2022", "2023", "2024", "2025"]
    result = runner.invoke(app, ["check", "--source", "generic", "--mapping",
                                 str(world_dir / ATTAINMENT / "mapping.yaml"), "--period",
                                 "2024", "--json", str(world_dir / ATTAINMENT / "2024.csv")])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    written = truth_records[(truth_records.source == "generic")
                            & (truth_records.period == 2024)]
    assert report["records_in"] == report["records_out"] == len(written) > 300
    assert report["records_rejected"] == 0
    # the identifiers are as complete as the census rows they come from
    assert report["completeness"]["upn"] == report["completeness"]["dob"] == 1.0


def test_the_truth_names_every_attainment_row_and_its_pupil_was_at_the_end_of_a_key_stage(
        world_dir, truth_records):
    config = load_config()["attainment"]
    truth = pd.read_parquet(world_dir / "truth" / "attainment.parquet")
    rows = truth_records[truth_records.source == "generic"]
    assert len(rows) == len(truth) and set(rows.record_id) == set(truth.record_id)
    for path in attainment_files(world_dir):
        written = pd.read_csv(path, dtype=str, keep_default_na=False)
        mine = rows[rows.file == str(path.relative_to(world_dir))].sort_values("row")
        assert list(written.result_id) == list(mine.record_id)
        census = pd.read_csv(world_dir / f"providers/dfe/school_census/{path.stem}_pupils.csv",
                             dtype=str, keep_default_na=False)
        # each result's UPN is a UPN of a pupil in year 6 or 11 of that January's census
        at_end = census[census.ncyearactual.isin([str(config["ks2_year_group"]),
                                                  str(config["ks4_year_group"])])]
        assert set(written.upn) <= set(at_end.upn)
    # no KS2 results in the years the tests were not held
    ks2 = truth[truth.key_stage == 2]
    assert not ks2.period.isin(config["ks2_not_held"]).any() and len(ks2) > 500
    assert ks2.ks2_read_score.between(80, 120).all()


def test_looked_after_children_and_children_in_need_attain_less_on_average(world_dir):
    truth = pd.read_parquet(world_dir / "truth" / "attainment.parquet")
    ks4 = truth[truth.key_stage == 4].groupby("care_group").ks4_att8.mean()
    ks2 = truth[truth.key_stage == 2].groupby("care_group").ks2_read_exp.mean()
    # the gaps configured (about 25 Attainment 8 points at KS4; 0.25 of a share at KS2), with
    # room for a small world's noise
    assert ks4["none"] - ks4["looked_after"] > 15 and ks4["none"] - ks4["in_need"] > 15
    assert ks2["none"] - ks2["looked_after"] > 0.12 and ks2["none"] - ks2["in_need"] > 0.12
    assert 40 < ks4["none"] < 52 and 0.65 < ks2["none"] < 0.85


def test_a_world_folder_with_a_broken_mapping_stops_hash_delivery_naming_it(tmp_path,
                                                                          linkage_key):
    folder = tmp_path / "providers" / "dfe" / "generic" / "attainment"
    folder.mkdir(parents=True)
    (folder / "2024.csv").write_text("result_id,upn\nKS2-1,A123\n")
    (folder / "mapping.yaml").write_text("record_id: result_id\nfields: []\n")
    result = runner.invoke(app, ["hash-delivery", str(tmp_path), "--out",
                                 str(tmp_path / "bundles"), "--key", str(linkage_key)])
    assert result.exit_code == 1
    assert "mapping.yaml" in said(result) and "must list fields" in said(result)
    assert "Traceback" not in result.output and not (tmp_path / "bundles").exists()
