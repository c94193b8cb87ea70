"""`linkage extract`: requests, project pseudonyms, identifier scans, cohorts, disclosure."""

import json

import pandas as pd
import pyarrow.parquet as pq
import pytest
import yaml
from typer.testing import CliRunner

from linkage.cli import app
from linkage.config import load_config
from linkage.release.disclosure import percentages, protect, suppression_mask, with_totals
from linkage.release.tables import MAJOR_GROUPS
from tests.identifiers import world_identifiers
from tests.output import said

runner = CliRunner()
RULES = load_config("disclosure.yaml")
REQUEST = {
    "project": "P0001", "cohort": "cla_any_point", "period": 2024,
    "datasets": {"ssda903": ["LS", "PLACE", "REC", "DECOM", "DEC"],
                 "cin": ["PrimaryNeedCode", "CINreferralDate"],
                 "school_census": ["senprovision", "fsm"],
                 "asg_children": ["date_matched", "date_placed"]},
    "family_keys": True,
}


def write_request(path, **changes):
    path.write_text(yaml.safe_dump({**REQUEST, **changes}))
    return path


def run_extract(spine, bundles, request, out, *extra):
    return runner.invoke(app, ["extract", "--spine", str(spine), "--request", str(request),
                               "--out", str(out), *extra, *map(str, bundles)])


@pytest.fixture(scope="module")
def extracts(linked_spine, world_bundles, tmp_path_factory):
    """Project P0001 twice, and project P0002, from the same spine."""
    spine, _ = linked_spine
    folder = tmp_path_factory.mktemp("extracts")
    out = {}
    for name, project in (("first", "P0001"), ("again", "P0001"), ("other", "P0002")):
        request = write_request(folder / f"{name}.yaml", project=project)
        result = run_extract(spine, world_bundles, request, folder / name)
        assert result.exit_code == 0, result.output
        out[name] = folder / name
    return out


def persons(folder):
    return set(pd.read_parquet(folder / "persons.parquet").person)


def test_the_extract_holds_what_was_asked_and_a_manifest(extracts):
    folder = extracts["first"]
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["request"]["cohort"] == "cla_any_point"
    assert manifest["spine_version"] >= 1
    episodes = pd.read_parquet(folder / "ssda903.parquet")
    assert list(episodes.columns) == ["person", "provider", "period", "LS", "PLACE", "REC",
                                      "DECOM", "DEC"]
    assert set(episodes.person) <= persons(folder)
    assert list(pd.read_parquet(folder / "school_census.parquet").columns)[-2:] == [
        "senprovision", "fsm"]
    people = pd.read_parquet(folder / "persons.parquet")
    assert people.birth_year_month.dropna().str.fullmatch(r"\d{4}-\d{2}").all()
    for name, facts in manifest["files"].items():
        assert (folder / name).is_file(), name
        assert facts["sha256"] and facts["rows"] >= 0
    assert {"adoption_ethnicity", "sibling_groups", "routes_out_of_care",
            "cohort_by_la"} <= set(manifest["disclosure"])


def test_projects_get_disjoint_keys_and_a_project_the_same_keys(extracts):
    first, again, other = (extracts[n] for n in ("first", "again", "other"))
    assert persons(first) == persons(again)
    assert not persons(first) & persons(other)
    for name in ("persons.parquet", "sibling_groups.parquet", "adoptions.parquet",
                 "tables/cohort_national.csv"):
        assert (first / name).read_bytes() == (again / name).read_bytes(), name
    households = set(pd.read_parquet(first / "adoptions.parquet").household)
    assert households and not households & set(pd.read_parquet(other / "adoptions.parquet")
                                                .household)


def extract_strings(folder) -> tuple[set[str], set[str]]:
    """All values in the extract's files; and those of files that carry no event dates."""
    everything, undated = set(), set()
    for path in folder.rglob("*"):
        if path.suffix == ".parquet":
            table = pq.read_table(path).to_pandas()
            found = {str(v) for column in table for v in table[column].dropna()}
            found |= set(table.columns)
        elif path.is_file():
            found = set(path.read_text().replace(",", "\n").replace('"', "\n").split())
        else:
            continue
        everything |= found
        if path.stem in ("persons", "adopters", "adoptions", "sibling_groups") or (
                path.suffix != ".parquet" and path.name != "manifest.json"):
            undated |= found
    return everything, undated


def test_no_identifier_of_any_source_is_in_an_extract(extracts, world_dir):
    values, dobs = world_identifiers(world_dir)
    assert len(values) > 1000 and len(dobs) > 1000
    values -= set(MAJOR_GROUPS.values())  # table labels that are also surnames (Black, White)
    for folder in extracts.values():
        everything, undated = extract_strings(folder)
        assert not everything & values
        assert not undated & dobs  # event dates are requested fields; births never are


@pytest.mark.parametrize("datasets, named", [
    ({"school_census": ["upn"]}, "datasets.school_census.upn: forbidden"),
    ({"ssda903": ["DOB"]}, "datasets.ssda903.DOB: forbidden"),
    ({"ssda903": ["HOME_POST"]}, "datasets.ssda903.HOME_POST: forbidden"),
    ({"ssda903": ["CHILD"]}, "datasets.ssda903.CHILD: forbidden"),
    ({"school_census": ["forename"]}, "datasets.school_census.forename: forbidden"),
    ({"school_census": ["sex_dob"]}, "datasets.school_census.sex_dob: forbidden"),
    ({"cin": ["shoe_size"]}, "datasets.cin.shoe_size: unknown field"),
    ({"hospital": ["ward"]}, "datasets.hospital: unknown dataset"),
])
def test_forbidden_and_unknown_fields_are_refused_by_name(linked_spine, world_bundles,
                                                          tmp_path, datasets, named):
    spine, _ = linked_spine
    request = write_request(tmp_path / "r.yaml", datasets=datasets)
    result = run_extract(spine, world_bundles, request, tmp_path / "out")
    assert result.exit_code == 1
    assert named in " ".join(result.output.split())
    assert "Traceback" not in result.output and not (tmp_path / "out").exists()


def test_a_bad_request_is_a_clean_error(linked_spine, world_bundles, tmp_path):
    spine, _ = linked_spine
    for changes, named in (({"cohort": "cla_sometimes"}, "cohort"),
                           ({"period": "last year"}, "period"), ({"colour": 1}, "colour")):
        result = run_extract(spine, world_bundles, write_request(tmp_path / "r.yaml",
                                                                 **changes), tmp_path / "o")
        assert result.exit_code == 1 and named in result.output
    (tmp_path / "bad.yaml").write_text("project: [unclosed\n")
    result = run_extract(spine, world_bundles, tmp_path / "bad.yaml", tmp_path / "o")
    assert result.exit_code == 1 and "not valid YAML" in said(result)


def test_deduplicated_cohort_matches_truth(linked_spine, world_bundles, world_dir, tmp_path):
    from linkage.pseudonymise.roles import custodian_keys
    from linkage.release.extract import extract
    from linkage.release.request import load_request
    from synthetic.truth_cohorts import truth_cohort

    spine, _ = linked_spine
    request = load_request(write_request(tmp_path / "r.yaml", datasets={}, family_keys=False))
    operator = extract(spine, request, tmp_path / "out", world_bundles,
                       custodian_keys())["operator"]
    # the truth's own count (a 903 Header also lists care leavers, who are not looked after)
    persons, per_la = truth_cohort(world_dir / "truth", "cla_any_point", 2024)
    children = len(persons)
    assert per_la > children  # some children were looked after by two LAs
    assert abs(operator["deduplicated"] - children) <= max(2, children // 100)
    assert operator["naive_sum_of_las"] == per_la
    national = pd.read_csv(tmp_path / "out" / "tables" / "cohort_national.csv")
    assert (national.children % RULES["national_rounding"] == 0).all()


def grid(rows):
    return pd.DataFrame(rows, index=[f"r{i}" for i in range(len(rows))],
                        columns=[f"c{j}" for j in range(len(rows[0]))])


def test_primary_and_secondary_suppression_on_a_hand_worked_table():
    # r0: 3 is primary; its row then needs a second hidden cell (the smallest, 10) and the
    # columns of 3 and 10 each need another: 20 (c0, smallest left) and 12 (c1)
    counts = grid([[3, 10, 40], [20, 12, 30], [25, 50, 60]])
    hidden, primary, secondary = suppression_mask(with_totals(counts), RULES)
    assert primary == 1
    assert hidden[:3, :3].tolist() == [[True, True, False], [True, True, False],
                                       [False, False, False]]
    assert secondary == 3 and not hidden[3].any() and not hidden[:, 3].any()
    shown = protect(counts, RULES).table
    assert shown.loc["r0", "c0"] == "c" and shown.loc["Total", "Total"] == "250"
    for line in [*hidden[:, :], *hidden.T]:  # no row or column with exactly one hidden
        assert line.sum() != 1


def test_a_small_total_is_suppressed_with_a_partner():
    counts = grid([[2, 2], [30, 40]])           # row r0 total 4 < 6
    hidden, primary, _ = suppression_mask(with_totals(counts), RULES)
    assert primary == 3                          # both cells and their total
    assert all(line.sum() != 1 for line in [*hidden, *hidden.T])


def test_zeros_are_shown_and_national_figures_rounded():
    counts = grid([[0, 14], [26, 35]])
    protected = protect(counts, RULES, national=True)
    assert protected.table.loc["r0", "c0"] == "0"
    assert protected.table.loc["r0", "c1"] == "10" and protected.table.loc["r1", "c1"] == "40"
    assert protected.table.loc["Total", "Total"] == "80"   # 75 rounds up
    assert protected.actions == {"primary_suppressed": 0, "secondary_suppressed": 0,
                                 "rounded_to": 10}


def test_percentages_are_hidden_where_a_part_or_whole_is_suppressed():
    protected = protect(grid([[3, 10, 40], [20, 12, 30], [25, 50, 60]]), RULES)
    shares = percentages(protected, RULES)
    assert shares.loc["r0", "c0"] == "x" and shares.loc["r0", "c2"] == "75"
    assert shares.loc["r2", "c1"] == "37"


def test_a_release_key_file_replaces_the_spines_own(linked_spine, world_bundles, extracts,
                                                    tmp_path):
    spine, _ = linked_spine
    key = tmp_path / "release.key"
    assert runner.invoke(app, ["keygen", "--out", str(key)]).exit_code == 0
    request = write_request(tmp_path / "r.yaml", datasets={}, family_keys=False)
    for name in ("one", "two"):
        result = run_extract(spine, world_bundles, request, tmp_path / name, "--release-key",
                             str(key))
        assert result.exit_code == 0, result.output
    assert persons(tmp_path / "one") == persons(tmp_path / "two")
    assert not persons(tmp_path / "one") & persons(extracts["first"])
    key.chmod(0o644)
    result = run_extract(spine, world_bundles, request, tmp_path / "three", "--release-key",
                         str(key))
    assert result.exit_code == 1 and "readable by others" in said(result)


def test_a_quiet_extract_prints_nothing(linked_spine, world_bundles, tmp_path):
    spine, _ = linked_spine
    request = write_request(tmp_path / "r.yaml", datasets={}, family_keys=False)
    result = run_extract(spine, world_bundles, request, tmp_path / "out", "--quiet")
    assert result.exit_code == 0 and result.output == ""
    assert (tmp_path / "out" / "manifest.json").is_file()


def test_an_extract_needs_the_custodians_key(linked_spine, world_bundles, keyring, tmp_path,
                                              monkeypatch):
    """The linkage unit holds the spine and bundles, but its key opens no content."""
    spine, _ = linked_spine
    request = write_request(tmp_path / "r.yaml")
    monkeypatch.delenv("LINKAGE_CUSTODIAN_KEY")
    without = run_extract(spine, world_bundles, request, tmp_path / "none")
    assert without.exit_code == 1 and "--custodian-key" in said(without)
    as_unit = run_extract(spine, world_bundles, request, tmp_path / "unit", "--custodian-key",
                          str(keyring.unit_key))
    assert as_unit.exit_code == 1 and "another recipient" in said(as_unit)
    assert "internal error" not in without.output + as_unit.output
    assert not (tmp_path / "none").exists() and not (tmp_path / "unit").exists()
