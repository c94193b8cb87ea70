"""`linkage extract`: requests, project pseudonyms, identifier scans, cohorts, disclosure."""

import json
import re

import pandas as pd
import pyarrow.parquet as pq
import pytest
import yaml
from typer.testing import CliRunner

from linkage.cli import app
from linkage.config import load_config
from linkage.release.disclosure import percentages, protect, suppression_mask, with_totals
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
    tables = sorted(str(t.relative_to(first)) for t in (first / "tables").glob("*.csv"))
    assert len(tables) >= 10
    for name in ("persons.parquet", "sibling_groups.parquet", "adoptions.parquet", *tables):
        assert (first / name).read_bytes() == (again / name).read_bytes(), name
    # every file, in every format, the codebook and the tables: the same bytes again
    assert json.loads((first / "manifest.json").read_text())["files"] == json.loads(
        (again / "manifest.json").read_text())["files"]
    households = set(pd.read_parquet(first / "adoptions.parquet").household)
    assert households and not households & set(pd.read_parquet(other / "adoptions.parquet")
                                                .household)


MICRODATA_READERS = {".parquet": lambda path: pq.read_table(path).to_pandas(),
                     ".csv": lambda path: pd.read_csv(path, dtype=str),
                     ".dta": pd.read_stata}


def extract_strings(folder) -> tuple[set[str], set[str]]:
    """All values in the extract's files; and those of files that carry no event dates."""
    everything, undated = set(), set()
    for path in folder.rglob("*"):
        microdata = path.parent == folder and path.suffix in MICRODATA_READERS and (
            path.name != "codebook.csv")
        if microdata:
            table = MICRODATA_READERS[path.suffix](path)
            found = {str(v) for column in table for v in table[column].dropna()}
            found |= set(table.columns)
        elif path.is_file():
            found = set(path.read_text().replace(",", "\n").replace('"', "\n").split())
        else:
            continue
        everything |= found
        if path.stem in ("persons", "adopters", "adoptions", "sibling_groups") or (
                not microdata and path.name != "manifest.json"):
            undated |= found
    return everything, undated


def label_words() -> set[str]:
    """Every word of the labels tables show for ethnic groups and routes out of care."""
    groups, tables = load_config("ethnic_groups.yaml"), load_config("tables.yaml")
    labels = [*groups["groups"], *(e["label"] for e in groups["codes"].values()),
              groups["not_recorded"]["label"], *(r["label"] for r in tables["routes"]),
              tables["other_route"]]
    return {word for label in labels for word in label.replace(",", " ").split()}


def test_no_identifier_of_any_source_is_in_an_extract(extracts, world_dir):
    values, dobs = world_identifiers(world_dir)
    assert len(values) > 1000 and len(dobs) > 1000
    values -= label_words()  # table labels that are also names (Black, White, Irish)
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


# --- outputs a researcher opens at once: Parquet, CSV and Stata, a codebook, plain tables ---

def microdata_names(folder) -> list[str]:
    return sorted(path.stem for path in folder.glob("*.parquet"))


def normalised(frame: pd.DataFrame) -> pd.DataFrame:
    """Values as text, whatever the format made of their type: a number as its shortest
    spelling (6, not 6.0), a missing value as blank (Stata has no missing text)."""
    def text(value) -> str:
        if value is None or value is pd.NA or (isinstance(value, float) and value != value):
            return ""
        if isinstance(value, str) and re.fullmatch(r"-?\d+\.\d+", value):
            value = float(value)  # a CSV's spelling of a number: 1.0 is 1
        if isinstance(value, float) and value.is_integer():
            return str(int(value))
        return str(value)

    # one dtype for all (DataFrame.equals compares dtypes too)
    return frame.map(text).astype(object).reset_index(drop=True)


def test_every_microdata_file_in_three_formats_with_the_same_values(extracts):
    folder = extracts["first"]
    names = microdata_names(folder)
    assert {"persons", "ssda903", "cin", "adopters", "adoptions", "sibling_groups"} <= set(names)
    codebook = pd.read_csv(folder / "codebook.csv", dtype=str, keep_default_na=False)
    manifest = json.loads((folder / "manifest.json").read_text())
    for name in names:
        parquet = pd.read_parquet(folder / f"{name}.parquet")
        csv = pd.read_csv(folder / f"{name}.csv", dtype=str, keep_default_na=False)
        stata = pd.read_stata(folder / f"{name}.dta")
        stata_names = codebook[codebook.file == name].set_index("stata_name").column
        stata = stata.rename(columns=stata_names.to_dict())
        assert list(csv.columns) == list(stata.columns) == list(parquet.columns), name
        assert len(parquet) > 0 or name in ("adoptions", "adopters"), name
        expected = normalised(parquet)
        assert normalised(csv).equals(expected), name
        assert normalised(stata).equals(expected), name
        for suffix in ("parquet", "csv", "dta"):
            assert manifest["files"][f"{name}.{suffix}"]["rows"] == len(parquet)
    # the comparison would see a real difference: one changed cell is not equal
    persons = pd.read_parquet(folder / "persons.parquet")
    changed = persons.copy()
    changed.loc[0, "sex"] = "U" if persons.loc[0, "sex"] != "U" else "M"
    assert not normalised(changed).equals(normalised(persons))


def test_stata_files_carry_labels_and_a_time_stamp_of_the_spine_version(extracts):
    from pandas.io.stata import StataReader

    with StataReader(extracts["first"] / "ssda903.dta") as reader:
        labels, data_label, stamp = (reader.variable_labels(), reader.data_label,
                                     reader.time_stamp)
    assert labels["LS"] == "legal status" and labels["person"].startswith("the child's")
    assert data_label.startswith("P0001: ssda903, spine version")
    assert stamp  # the spine version's time, the same for every extract of it


def test_the_codebook_has_a_row_for_every_column_of_every_file(extracts):
    folder = extracts["first"]
    codebook = pd.read_csv(folder / "codebook.csv", dtype=str, keep_default_na=False)
    assert list(codebook.columns) == ["file", "column", "stata_name", "meaning", "codes",
                                      "source"]
    described = set(zip(codebook.file, codebook.column, strict=True))
    for name in microdata_names(folder):
        for column in pd.read_parquet(folder / f"{name}.parquet").columns:
            assert (name, column) in described, (name, column)
    for path in (folder / "tables").glob("*.csv"):
        for column in pd.read_csv(path, nrows=0).columns:
            assert (f"tables/{path.name}", column) in described, (path.name, column)
    assert (codebook.meaning != "").all()
    assert not codebook.meaning.str.contains("not described").any()
    place = codebook[(codebook.file == "ssda903") & (codebook.column == "PLACE")].iloc[0]
    assert place.source == "ssda903 episodes.PLACE" and "U1 = foster placement" in place.codes
    stata = codebook[codebook.stata_name != ""].stata_name
    assert stata.str.fullmatch(r"[A-Za-z_][A-Za-z0-9_]{0,31}").all()
    assert json.loads((folder / "manifest.json").read_text())["files"]["codebook.csv"][
        "rows"] == len(codebook)


def test_every_released_field_has_a_meaning_in_the_codebook_config():
    codebook = load_config("codebook.yaml")
    for dataset, spec in load_config("release.yaml")["datasets"].items():
        for field, where in spec["fields"].items():
            column = where.split(".", 1)[1]
            assert column in codebook["fields"][spec["source"]], (dataset, field)


def test_table_csvs_have_a_named_first_column_and_no_index(extracts):
    tables = sorted((extracts["first"] / "tables").glob("*.csv"))
    assert len(tables) >= 5
    for path in tables:
        header = path.read_text().splitlines()[0].split(",")
        assert all(cell.strip() for cell in header), path.name
        first = pd.read_csv(path, dtype=str).iloc[:, 0]
        assert not first.str.fullmatch(r"\d+").all(), path.name  # not a row number
    by_la = pd.read_csv(extracts["first"] / "tables" / "cohort_by_la.csv", dtype=str)
    assert by_la.columns[0] == "local_authority" and by_la.iloc[0, 0].startswith("LA ")


def test_stata_names_are_valid_short_and_distinct():
    from linkage.release.outputs import stata_names

    long = "a_field_name_far_longer_than_stata_allows"
    names = stata_names(["reading", "2nd_try", "key stage", "if", long, long + "_too", "x.y"])
    assert names["reading"] == "reading" and names["2nd_try"] == "v_2nd_try"
    assert names["key stage"] == "key_stage" and names["if"] == "if_"
    assert names["x.y"] == "x_y"
    assert len(set(names.values())) == len(names)
    assert all(len(name) <= 32 for name in names.values())
