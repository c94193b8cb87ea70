"""Every file the generator writes is read back; canonical records agree with the truth."""

import json

import pandas as pd
import pytest
from typer.testing import CliRunner

from linkage.cli import app
from linkage.sources import read_source

runner = CliRunner()
SOURCE_FILES = {
    "ssda903": "providers/la_*/ssda903",
    "cin": "providers/la_*/cin",
    "school-census": "providers/dfe/school_census",
    "asg-children": "providers/*/asg/asg_children.csv",
    "asg-adopters": "providers/*/asg/asg_adopters.csv",
}
TRUTH_SOURCE = {"ssda903": "ssda903", "cin": "cin", "school-census": "school_census",
                "asg-children": "asg_children", "asg-adopters": "asg_adopters"}


def paths_of(world_dir, kind):
    return sorted(world_dir.glob(SOURCE_FILES[kind]))


@pytest.fixture(scope="module")
def read_back(world_dir, truth_records, truth_persons):
    """Each source read, joined to its truth row and the true person."""
    joined = {}
    persons = truth_persons.set_index("person_id")
    for kind in SOURCE_FILES:
        data = read_source(kind, paths_of(world_dir, kind))
        records = data.records.copy()
        records["relative"] = [str(pd.io.common.Path(f).relative_to(world_dir))
                               for f in records.file]
        # both count CSV lines from the header (line 1), and CIN Child elements from 1
        records["truth_row"] = records.row
        truth = truth_records[truth_records.source == TRUTH_SOURCE[kind]]
        merged = records.merge(truth, left_on=["relative", "truth_row"],
                               right_on=["file", "row"], how="outer", indicator=True,
                               suffixes=("", "_truth"))
        merged = merged.join(persons[["dob", "sex", "ethnicity", "forename"]].add_suffix("_person"),
                             on="person_id")
        joined[kind] = (data, merged)
    return joined


@pytest.mark.parametrize("kind", list(SOURCE_FILES))
def test_records_in_equal_records_out_and_truth(read_back, kind):
    data, merged = read_back[kind]
    assert (merged["_merge"] == "both").all(), merged["_merge"].value_counts()
    assert len(data.records) > 0
    assert data.records.record_id.eq(merged.record_id_truth).all()


@pytest.mark.parametrize("kind", list(SOURCE_FILES))
def test_identifiers_agree_with_truth_where_no_error_was_injected(read_back, kind):
    _, merged = read_back[kind]
    clean_dob = (merged.dob_error == "") & ~merged.unborn
    true_dob = pd.to_datetime(merged.dob_person).dt.date
    assert (merged.dob[clean_dob] == true_dob[clean_dob]).all()
    assert (merged.dob[merged.dob_error != ""] != true_dob[merged.dob_error != ""]).all()
    clean_sex = ~merged.sex_error & ~merged.unborn
    assert (merged.sex[clean_sex] == merged.sex_person[clean_sex]).all()
    assert (merged.ethnicity == merged.ethnicity_person).all()


def test_pupil_names_and_upns_agree_with_truth(read_back, world_dir):
    _, merged = read_back["school-census"]
    typo = merged.name_error == "forename"
    assert (merged.forename[~typo] == merged.forename_person[~typo]).all()
    assert (merged.forename[typo] != merged.forename_person[typo]).all()
    issued = pd.read_parquet(world_dir / "truth" / "upn_issues.parquet")
    owner = issued.set_index("upn").person_id
    clean = merged.upn_error == ""
    assert (merged.upn[clean].map(owner) == merged.person_id[clean]).all()


@pytest.mark.parametrize("kind", ["ssda903", "cin"])
def test_la_record_upns_belong_to_the_child(read_back, world_dir, kind):
    _, merged = read_back[kind]
    issued = pd.read_parquet(world_dir / "truth" / "upn_issues.parquet")
    owner = issued.set_index("upn").person_id
    has = (merged.upn != "") & (merged.upn_error == "")
    assert has.sum() > 10
    assert (merged.upn[has].map(owner) == merged.person_id[has]).all()
    assert (merged.upn_unknown == merged.un_code).all()


EXPECTED_FLAGS = {
    # flag from `linkage check` -> (truth column, value) counting the injected error
    "upn_bad_check_letter": ("upn_error", "check_letter"),
    "upn_temporary": ("upn_error", "temporary"),
    "upn_unknown_UN1": ("un_code", "UN1"),
    "upn_unknown_UN2": ("un_code", "UN2"),
    "upn_unknown_UN4": ("un_code", "UN4"),
    "upn_unknown_UN5": ("un_code", "UN5"),
    "postcode_reformatted": ("postcode_error", "unformatted"),
    "unborn": ("unborn", True),
}


@pytest.mark.parametrize("kind", list(SOURCE_FILES))
def test_check_flag_counts_equal_injected_error_counts(world_dir, truth_records, kind):
    result = runner.invoke(app, ["check", "--source", kind, "--json",
                                 *map(str, paths_of(world_dir, kind))])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    truth = truth_records[truth_records.source == TRUTH_SOURCE[kind]]
    assert report["records_in"] == report["records_out"] == len(truth)
    for flag, (column, value) in EXPECTED_FLAGS.items():
        assert report["flags"].get(flag, 0) == (truth[column] == value).sum(), flag
    if kind == "school-census":
        assert report["flags"]["dual_registration"] == truth.duplicate.sum() > 0
    assert report["records_rejected"] == 0


def test_check_report_names_no_identifier_values(world_dir, tmp_path):
    report = tmp_path / "report.md"
    result = runner.invoke(app, ["check", "--source", "school-census", "--report", str(report),
                                 str(world_dir / "providers/dfe/school_census")])
    assert result.exit_code == 0
    pupils = pd.read_csv(next(world_dir.glob("providers/dfe/school_census/*.csv")), dtype=str,
                         keep_default_na=False)
    written = report.read_text() + result.output
    for column in ("upn", "surname", "forename", "postcode", "dob"):
        values = {v for v in pupils[column] if len(v) >= 5}
        assert not [v for v in values if v in written], column
