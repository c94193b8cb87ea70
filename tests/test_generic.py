"""The generic source: validation by kind, its leak guard, and its datasets in extracts."""

import json
from pathlib import Path

import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from linkage.cli import app
from linkage.config import load_config
from linkage.pseudonymise import bundle as bundle_module
from linkage.pseudonymise.bloom import normalise_name
from linkage.pseudonymise.bundle import BundleError, find_leaks, write_bundle
from linkage.sources import SourceError, read_source
from tests.outcomes import CHILDREN, outcome_bundles
from tests.output import said

runner = CliRunner()
# words the toolkit writes in a manifest or tokens table, as names a child may have
MANIFEST_WORDS = ["in", "out", "token", "bloom", "record", "rows", "attribute", "event",
                  "generic", "none", "parts", "file", "flags", "provider"]


def write_generic(folder: Path, rows: list[dict], fields: list[dict], **mapping) -> tuple:
    """A CSV of ``rows`` and its mapping (record id column ``id``): (csv path, mapping path)."""
    folder.mkdir(parents=True, exist_ok=True)
    csv = folder / "people.csv"
    pd.DataFrame(rows).to_csv(csv, index=False)
    path = folder / "mapping.yaml"
    path.write_text(yaml.safe_dump({"record_id": "id", "period": 2024, **mapping,
                                    "fields": fields}))
    return csv, path


PEOPLE_FIELDS = [
    {"name": "forename", "column": "given", "kind": "name"},
    {"name": "surname", "column": "family", "kind": "name"},
    {"name": "dob", "column": "born", "kind": "date"},
    {"name": "hospital_number", "column": "mrn", "kind": "exact"},
    {"name": "sex", "column": "gender", "kind": "sex"},
    {"name": "ward", "column": "ward", "kind": "category"},
]


def people(names: list[str]) -> list[dict]:
    return [{"id": f"R{i:04d}", "given": name, "family": name.title(), "born": "2015-03-0"
             f"{1 + i % 9}", "mrn": f"MRN{i:06d}", "gender": "MF"[i % 2], "ward": "W" + str(i)}
            for i, name in enumerate(names)]


@pytest.fixture(scope="module")
def keys(keyring):
    return keyring.for_provider()


def test_names_that_are_the_manifests_words_are_no_leak(keys, tmp_path):
    """A forename or surname equal to a manifest key or value, or to a column's name or kind,
    is hashed: only the data's own values are compared, with the data's own cells."""
    csv, mapping = write_generic(tmp_path / "in", people(MANIFEST_WORDS), PEOPLE_FIELDS,
                                 provider="hospital-a")
    data = read_source("generic", [csv], mapping)
    written = write_bundle(data, keys, tmp_path / "bundle")
    assert written.manifest["rows"]["out"] == len(MANIFEST_WORDS)
    assert written.manifest["dataset"] == "hospital-a"
    assert written.manifest["field_kinds"]["hospital_number"] == "exact"


def test_short_values_equal_to_plain_codes_are_no_leak(keys, tmp_path):
    """A one- or two-letter name, or an id of a few digits, equal to the provider code or a
    flag is coincidence, not a leak (plain cells compare values of 4 characters or more)."""
    rows = people(["Al", "A", "Jo"])
    rows[0]["mrn"] = "AL"
    rows[1]["id"] = "al"
    csv, mapping = write_generic(tmp_path / "in", rows, PEOPLE_FIELDS)
    data = read_source("generic", [csv], mapping, provider="AL")
    write_bundle(data, keys, tmp_path / "bundle")


def planted(monkeypatch, column: str, values) -> None:
    """Make tokenise slip ``values`` (a function of the data) into a text column."""
    real = bundle_module.tokenise

    def leaky(data, key, schema, workers=1):
        tokens = real(data, key, schema, workers)
        tokens[column] = pd.Series(values(data)).to_numpy()
        return tokens

    monkeypatch.setattr(bundle_module, "tokenise", leaky)


@pytest.mark.parametrize("leak, named", [
    # a mapped identifier outside the canonical list, by its own field name
    (lambda d: d.content["fields"].hospital_number, "hospital_number in tokens column debug"),
    (lambda d: d.records.record_id, "record_id in tokens column debug"),
    # a short name still leaks where no plaintext belongs
    (lambda d: ["Al"] * len(d.records), "forename in tokens column debug"),
    # names as the Bloom encoder normalises them (upper case, no accents or punctuation)
    (lambda d: normalise_name(d.records.surname), "surname in tokens column debug"),
    (lambda d: d.content["fields"].dob.astype(str), "dob in tokens column debug"),
])
def test_the_leak_guard_names_the_field_and_the_column(keys, tmp_path, monkeypatch, leak,
                                                       named):
    csv, mapping = write_generic(tmp_path / "in", people(["Al", "Zoë", "Mary-Jane"]),
                                 PEOPLE_FIELDS)
    data = read_source("generic", [csv], mapping)
    planted(monkeypatch, "debug", leak)
    with pytest.raises(BundleError) as refused:
        write_bundle(data, keys, tmp_path / "bundle")
    assert named in str(refused.value)
    assert "MRN" not in str(refused.value) and "Zo" not in str(refused.value)
    assert not (tmp_path / "bundle").exists()


def test_the_leak_guard_looks_in_the_manifests_values_and_attributes(keys, tmp_path):
    csv, mapping = write_generic(tmp_path / "in", people(["Kenneth", "Douglas"]), PEOPLE_FIELDS)
    data = read_source("generic", [csv], mapping)
    tokens = bundle_module.tokenise(data, keys.linkage_key, bundle_module.linkage_schema())
    table = bundle_module.pa.Table.from_pandas(tokens, preserve_index=False)
    manifest = {"token_kinds": bundle_module.token_kinds(tokens, bundle_module.linkage_schema()),
                "provider": ["Kenneth"], "source": "generic"}
    assert find_leaks(data, table, json.dumps(manifest)) == [  # surnames are the names too
        "forename in the manifest", "surname in the manifest"]
    # the toolkit's own entries are not data: a name there is no leak
    manifest["provider"], manifest["bloom"] = ["x"], {"hardening": "Douglas"}
    assert find_leaks(data, table, json.dumps(manifest)) == []
    # a plain attribute column holding a real value of 4 characters or more leaks
    flagged = table.set_column(table.column_names.index("flags"), "flags",
                               bundle_module.pa.array(["DOUGLAS", ""] * 1))
    assert find_leaks(data, flagged, json.dumps(manifest)) == [
        "forename in tokens column flags", "surname in tokens column flags"]


def test_sex_alone_is_not_looked_for(keys, tmp_path):
    """Sex is one of a few codes, also an adopter's plain attribute: it identifies no one."""
    csv, mapping = write_generic(tmp_path / "in", people(["Kenneth"]), PEOPLE_FIELDS)
    data = read_source("generic", [csv], mapping)
    assert "sex" not in bundle_module._plaintext(data)
    assert {"forename", "surname", "dob", "hospital_number", "record_id"} <= set(
        bundle_module._plaintext(data))


def test_a_postcode_of_kind_exact_is_plain_text_not_a_uk_postcode(keys, tmp_path):
    """Validation goes by kind, never by name: Australian postcodes mapped as exact are kept,
    none dropped or flagged; a field named dob of kind exact is not read as a date of birth."""
    rows = [{"id": f"A{i}", "postcode": code, "dob": "31/12/2015", "grade": "B"}
            for i, code in enumerate(["2000", "3000", "0800", "6000"])]
    csv, mapping = write_generic(tmp_path / "in", rows, [
        {"name": "postcode", "column": "postcode", "kind": "exact"},
        {"name": "dob", "column": "dob", "kind": "exact"},
        {"name": "grade", "column": "grade", "kind": "category"}])
    data = read_source("generic", [csv], mapping)
    assert list(data.content["fields"].postcode) == ["2000", "3000", "0800", "6000"]
    assert list(data.content["fields"].dob) == ["31/12/2015"] * 4
    assert not data.records["flags"].str.contains("postcode|dob").any()
    assert (data.records.postcode == "").all() and data.records.dob.isna().all()
    write_bundle(data, keys, tmp_path / "bundle")
    # mapped as kind postcode, the same values are checked as UK postcodes (and flagged)
    mapping.write_text(mapping.read_text().replace("kind: exact", "kind: postcode", 1))
    flagged = read_source("generic", [csv], mapping)
    assert flagged.records["flags"].str.contains("postcode_invalid").all()


def test_a_uk_postcode_of_kind_postcode_fills_the_canonical_column(tmp_path):
    csv, mapping = write_generic(tmp_path / "in", [{"id": "1", "pc": "al1 1aa"}],
                                 [{"name": "postcode", "column": "pc", "kind": "postcode"}])
    assert list(read_source("generic", [csv], mapping).records.postcode) == ["AL1 1AA"]


def test_a_mapping_of_identifiers_only_hashes_by_the_cli(linkage_key, tmp_path):
    """No category field: the records travel with empty payloads (no length mismatch)."""
    csv, mapping = write_generic(tmp_path / "in", people(["Kenneth", "Douglas"]),
                                 PEOPLE_FIELDS[:4])
    result = runner.invoke(app, ["hash", "--source", "generic", "--mapping", str(mapping),
                                 "--provider", "h1", "--key", str(linkage_key), "--out",
                                 str(tmp_path / "b"), str(csv)])
    assert result.exit_code == 0, result.output


@pytest.mark.parametrize("dataset", ["Attain ment", "cin", "../x", 7])
def test_a_bad_dataset_name_is_refused(tmp_path, dataset):
    csv, mapping = write_generic(tmp_path / "in", people(["Kenneth"]), PEOPLE_FIELDS,
                                 dataset=dataset)
    with pytest.raises(SourceError, match="dataset"):
        read_source("generic", [csv], mapping)


# --- a generic outcome dataset, hashed, linked with the world and extracted ---------------

ATTAINMENT_FIELDS = [
    {"name": "upn", "column": "UPN", "kind": "exact"},
    {"name": "forename", "column": "FirstName", "kind": "name"},
    {"name": "surname", "column": "LastName", "kind": "name"},
    {"name": "dob", "column": "DOB", "kind": "date", "format": "%d/%m/%Y"},
    {"name": "candidate_number", "column": "CandNo", "kind": "exact"},
    {"name": "exam_date", "column": "ExamDate", "kind": "date"},
    {"name": "reading", "column": "KS2_READ", "kind": "category"},
    {"name": "maths", "column": "KS2_MAT", "kind": "category"},
]


@pytest.fixture(scope="module")
def attainment(world_dir, linkage_key, tmp_path_factory):
    """Key stage 2 results of the 2024 year-6 pupils, keyed by UPN, names and DOB as the
    school census holds them, hashed through a mapping: (bundle, rows with their census
    record's id)."""
    folder = tmp_path_factory.mktemp("attainment")
    census = pd.read_csv(world_dir / "providers/dfe/school_census/2024_pupils.csv", dtype=str,
                         keep_default_na=False)
    census["record_id"] = [f"2024:2024_pupils:{line}" for line in range(2, len(census) + 2)]
    pupils = census[census.ncyearactual == "6"].reset_index(drop=True)
    levels = ["below", "expected", "greater depth"]
    rows = pd.DataFrame({
        "PupilRef": [f"KS2-{i:05d}" for i in range(len(pupils))], "UPN": pupils.upn,
        "FirstName": pupils.forename, "LastName": pupils.surname,
        "DOB": pd.to_datetime(pupils.dob, errors="coerce").dt.strftime("%d/%m/%Y").fillna(""),
        "CandNo": [f"C{9000 + i}" for i in range(len(pupils))], "ExamDate": "2024-05-13",
        "KS2_READ": [levels[i % 3] for i in range(len(pupils))],
        "KS2_MAT": [levels[(i // 3) % 3] for i in range(len(pupils))]})
    rows.to_csv(folder / "ks2.csv", index=False)
    (folder / "ks2.yaml").write_text(yaml.safe_dump({
        "record_id": "PupilRef", "period": 2024, "dataset": "attainment",
        "fields": ATTAINMENT_FIELDS}))
    result = runner.invoke(app, ["hash", "--source", "generic", "--mapping",
                                 str(folder / "ks2.yaml"), "--provider", "STA", "--key",
                                 str(linkage_key), "--out", str(folder / "bundle"),
                                 str(folder / "ks2.csv")])
    assert result.exit_code == 0, result.output
    return folder / "bundle", rows.assign(census_record=pupils.record_id)


@pytest.fixture(scope="module")
def attainment_spine(world_bundles, attainment, linkage_key, tmp_path_factory):
    """The world linked with the attainment file, a 903 return with outcome tables and the
    Welsh census samples (tests/outcomes.py): one link for every generic and outcome test."""
    spine = tmp_path_factory.mktemp("spine") / "spine.duckdb"
    bundles = [*world_bundles, attainment[0],
               *outcome_bundles(tmp_path_factory.mktemp("outcomes"), linkage_key)]
    result = runner.invoke(app, ["link", "--spine", str(spine), "--seed", "1", "--json",
                                 *map(str, bundles)])
    assert result.exit_code == 0, result.output
    return spine, bundles


def request_file(path: Path, datasets: dict, cohort: str = "all") -> Path:
    path.write_text(yaml.safe_dump({"project": "P0042", "cohort": cohort, "period": 2024,
                                    "datasets": datasets}))
    return path


def extract_run(spine, bundles, request, out):
    return runner.invoke(app, ["extract", "--spine", str(spine), "--request", str(request),
                               "--out", str(out), *map(str, bundles)])


def test_a_generic_dataset_is_extracted_by_person(attainment_spine, attainment, keyring,
                                                  linkage_key, tmp_path):
    """Every year-6 result lands, one row per record, on the person of the census record it
    was copied from, with the fields asked for and nothing identifying."""
    from linkage.pseudonymise.bundle import record_pseudonyms
    from linkage.pseudonymise.keys import load_key
    from linkage.pseudonymise.roles import release_secret
    from linkage.release.pseudonyms import project_secret, pseudonyms
    from linkage.spine.store import connect, current_records

    spine, bundles = attainment_spine
    _, rows = attainment
    request = request_file(tmp_path / "r.yaml", {"attainment": ["reading", "maths"],
                                                 "school_census": ["ncyearactual"]})
    result = extract_run(spine, bundles, request, tmp_path / "out")
    assert result.exit_code == 0, result.output
    got = pd.read_parquet(tmp_path / "out" / "attainment.parquet")
    assert list(got.columns) == ["person", "provider", "period", "reading", "maths"]
    assert len(got) == len(rows) and set(got.provider) == {"STA"} and set(got.period) == {2024}

    # the person each result should land on: that of the census record it was copied from
    con = connect(spine)
    try:
        spine_records = current_records(con)
    finally:
        con.close()
    census_records = spine_records[(spine_records.provider == "DFE")
                                   & (spine_records.period == 2024)]
    person_of = census_records.set_index("record_id").person_key
    key = load_key(linkage_key)
    census = record_pseudonyms(pd.Series("DFE", index=rows.index), rows.census_record, key)
    secret = project_secret(release_secret(keyring.for_custodian().custodian_key), "P0042")
    expected = pd.DataFrame({
        "person": pseudonyms(secret, "person", census.map(person_of)),
        "reading": rows.KS2_READ, "maths": rows.KS2_MAT})
    assert expected.person.notna().all()
    order = ["person", "reading", "maths"]
    assert got[order].sort_values(order, ignore_index=True).equals(
        expected[order].sort_values(order, ignore_index=True))
    # every result's person is in persons.parquet, and holds a year-6 census record
    persons = set(pd.read_parquet(tmp_path / "out" / "persons.parquet").person)
    assert set(got.person) <= persons
    census_2024 = pd.read_parquet(tmp_path / "out" / "school_census.parquet")
    year6 = set(census_2024[(census_2024.period == 2024)
                            & (census_2024.ncyearactual.astype(str) == "6")].person)
    assert set(got.person) <= year6

    # nothing identifying of the attainment file is in the extract
    found = set()
    for path in (tmp_path / "out").rglob("*.parquet"):
        table = pd.read_parquet(path)
        found |= {str(v) for column in table for v in table[column].dropna()}
    identifying = set(rows.PupilRef) | set(rows.UPN) | set(rows.CandNo) | set(rows.DOB)
    assert not found & (identifying - {""})
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert manifest["files"]["attainment.parquet"]["rows"] == len(rows)
    # the same rows, in the same order, in CSV and Stata
    for other in (pd.read_csv(tmp_path / "out" / "attainment.csv", dtype=str,
                              keep_default_na=False),
                  pd.read_stata(tmp_path / "out" / "attainment.dta")):
        assert other[order].astype(object).equals(got[order].astype(object))


@pytest.mark.parametrize("datasets, named", [
    ({"attainment": ["upn"]}, "datasets.attainment.upn: forbidden: a UPN"),
    ({"attainment": ["forename"]}, "datasets.attainment.forename: forbidden: a name"),
    ({"attainment": ["candidate_number"]},
     "datasets.attainment.candidate_number: forbidden: an identifier (a field of kind exact"),
    ({"attainment": ["exam_date"]}, "datasets.attainment.exam_date: forbidden: an identifier"),
    ({"attainment": ["reading", "science"]}, "datasets.attainment.science: unknown field "
                                             "(known: maths, reading)"),
    ({"attainment": ["reading_bloom"]}, "forbidden: a linkage token"),
    ({"health": ["ward"]}, "datasets.health: unknown dataset"),
    ({"persons": ["sex"]}, "datasets.persons: unknown dataset"),
])
def test_identifiers_of_a_generic_dataset_are_refused(attainment_spine, tmp_path, datasets,
                                                      named):
    spine, bundles = attainment_spine
    result = extract_run(spine, bundles, request_file(tmp_path / "r.yaml", datasets),
                         tmp_path / "out")
    assert result.exit_code == 1
    assert named in said(result), said(result)
    assert "Traceback" not in result.output and not (tmp_path / "out").exists()


# --- 903 outcome tables and the Welsh censuses, linked with the world and extracted ------

def outcome_extract(spine, bundles, folder: Path, datasets: dict):
    request = folder / "request.yaml"
    request.write_text(yaml.safe_dump({"project": "P0903", "cohort": "all", "period": 2024,
                                       "datasets": datasets}))
    return runner.invoke(app, ["extract", "--spine", str(spine), "--request", str(request),
                               "--out", str(folder / "out"), *map(str, bundles)])


def test_outcome_tables_and_welsh_censuses_are_extracted_by_person(attainment_spine, tmp_path):
    spine, bundles = attainment_spine
    result = outcome_extract(spine, bundles, tmp_path, {
        "ssda903": ["DECOM", "SDQ_SCORE", "CONVICTED", "IN_TOUCH", "ACCOM", "DUC", "MISSING",
                    "PREV_PERM"],
        "school_census": ["plaa"],
        "wales_cla": ["legal_status", "placement_type", "uasc", "leaver_accommodation"],
        "wales_crcs": ["reason_for_care", "looked_after", "home_language"]})
    assert result.exit_code == 0, result.output
    out = tmp_path / "out"
    def read(name: str) -> pd.DataFrame:
        """A file's rows of the hand-made 903 return (LA 999) or the Welsh samples (681)."""
        rows = pd.read_parquet(out / f"{name}.parquet")
        return rows[rows.provider.isin(["999", "681"])].reset_index(drop=True)

    episodes, oc2, oc3 = read("ssda903_episodes"), read("ssda903_oc2"), read("ssda903_oc3")
    # each child's outcome rows are on the person of its own episode: child n started on the
    # (n+1)th of May 2023 and scored 10 + n
    day = episodes.set_index("person").DECOM.str[8:10].astype(int)
    assert len(episodes) == CHILDREN and day.index.is_unique
    scores = oc2.set_index("person").SDQ_SCORE.astype(int)
    assert sorted(scores) == [10, 11, 12, 13]
    assert (scores == 9 + day[scores.index]).all()
    assert set(oc3.IN_TOUCH) == {"YES", "NO"} and set(oc3.person) <= set(episodes.person)
    assert set(read("ssda903_uasc").DUC) == {"2026-06-09"}
    assert set(read("ssda903_missing").MISSING) == {"M", "A"}
    # the world's previous permanence rows and previously-looked-after pupils, with their codes
    codes = load_config("codebook.yaml")["fields"]
    permanence = pd.read_parquet(out / "ssda903_prev_perm.parquet").PREV_PERM
    assert len(permanence) and set(permanence) <= set(codes["ssda903"]["PREV_PERM"]["codes"])
    plaa = pd.read_parquet(out / "school_census.parquet").plaa.replace("", None).dropna()
    assert len(plaa) and set(plaa) <= set(codes["school_census"]["plaa"]["codes"])
    # the Welsh censuses: the 8 children in both are the CRCS children flagged looked after
    cla, crcs = read("wales_cla"), read("wales_crcs")
    assert len(cla) == 15 and cla.person.nunique() == 12 and len(crcs) == 12
    both = set(cla.person) & set(crcs.person)
    assert len(both) == 8 and both == set(crcs[crcs.looked_after == "Y"].person)
    assert set(cla.legal_status) <= {"C1", "C2", "E1", "V2"} and "Y" in set(cla.uasc)
    codebook = pd.read_csv(out / "codebook.csv", dtype=str, keep_default_na=False)
    sdq = codebook[(codebook.file == "ssda903_oc2") & (codebook.column == "SDQ_SCORE")]
    assert sdq.source.tolist() == ["ssda903 oc2.SDQ_SCORE"]
    welsh = codebook[codebook.file == "wales_crcs"].set_index("column").source
    assert welsh["home_language"] == "generic dataset wales_crcs (field home_language)"


@pytest.mark.parametrize("datasets, named", [
    ({"ssda903": ["SDQ_SCORE", "DOB"]}, "datasets.ssda903.DOB: forbidden"),
    ({"ssda903": ["IN_TOUCH", "CHILD"]}, "datasets.ssda903.CHILD: forbidden"),
    ({"wales_crcs": ["upn"]}, "datasets.wales_crcs.upn: forbidden"),
    ({"wales_cla": ["child_ref"]}, "datasets.wales_cla.child_ref: forbidden: an identifier"),
    ({"wales_cla": ["dob"]}, "datasets.wales_cla.dob: forbidden"),
])
def test_identifying_columns_of_the_new_tables_are_refused(attainment_spine, tmp_path, datasets,
                                                            named):
    spine, bundles = attainment_spine
    result = outcome_extract(spine, bundles, tmp_path, datasets)
    assert result.exit_code == 1 and named in said(result), said(result)
    assert not (tmp_path / "out").exists()
