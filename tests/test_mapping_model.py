"""The model is built from the mapping and the schema: a new identifier field, added to a
mapping and to nothing else, becomes a token, a comparison and a blocking rule, and links
records that nothing else could."""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from linkage.cli import app
from linkage.config import load_config
from linkage.pseudonymise.bloom import normalise_name
from linkage.sources import SourceError
from linkage.sources.generic import load_mapping
from tests.output import said

runner = CliRunner()
FORENAMES = ["olivia", "amelia", "isla", "ava", "mia", "ivy", "lily", "freya", "noah", "oliver",
             "george", "leo", "arthur", "muhammad", "harry", "oscar", "jack", "theo", "henry",
             "archie", "grace", "sophia", "rosie", "ella", "evie", "florence", "alfie", "finley"]
SURNAMES = ["smith", "jones", "taylor", "brown", "williams", "wilson", "johnson", "davies",
            "patel", "robinson", "wright", "thompson", "evans", "walker", "white", "roberts",
            "green", "hall", "thomas", "clarke", "jackson", "wood", "harris", "edwards", "khan"]
PEOPLE = 400


def people_file(folder: Path) -> Path:
    """Two records of each of ``PEOPLE`` people, in one of 12 towns; for the last 60, the
    second record is a form left blank but for the town, the blood group and the passport
    number: nothing but that number says which of the town's people it is."""
    rng = np.random.default_rng(3)
    first = pd.DataFrame({
        "person": np.arange(PEOPLE),
        "given": rng.choice(FORENAMES, PEOPLE), "family": rng.choice(SURNAMES, PEOPLE),
        "born": pd.to_datetime("1990-01-01") + pd.to_timedelta(
            rng.integers(0, 9000, PEOPLE), unit="D"),
        "town": rng.choice([f"town{n}" for n in range(12)], PEOPLE),
        "blood_group": rng.choice(["O+", "O-", "A+", "A-", "B+", "B-", "AB+", "AB-"], PEOPLE),
        "passport_no": [f"P{n:08d}" for n in rng.choice(10**8, PEOPLE, replace=False)]})
    first["born"] = first.born.dt.strftime("%Y-%m-%d")
    second = first.copy()
    # clerks' typos: a letter of a fifth of the second records' names doubled
    typo = rng.random(PEOPLE) < 0.2
    second.loc[typo, "given"] = second.loc[typo, "given"].str[:2] + second.loc[
        typo, "given"].str[1:]
    second.loc[rng.random(PEOPLE) < 0.1, "family"] += "e"
    # a few known by another name on one of their records, or married since
    renamed = rng.random(PEOPLE) < 0.05
    second.loc[renamed, "given"] = rng.choice(FORENAMES, renamed.sum())
    second.loc[rng.random(PEOPLE) < 0.05, "family"] = "married"
    recoded = rng.random(PEOPLE) < 0.05  # a blood group written in another notation
    second.loc[recoded, "blood_group"] = second.loc[recoded, "blood_group"].str.replace(
        "+", " pos").str.replace("-", " neg")
    moved = rng.random(PEOPLE) < 0.05  # and a year of birth mistyped
    second.loc[moved, "born"] = (pd.to_datetime(second.loc[moved, "born"])
                                 + pd.DateOffset(years=1)).dt.strftime("%Y-%m-%d")
    blank = second.person >= PEOPLE - 60
    second.loc[blank, ["given", "family", "born"]] = ""
    rows = pd.concat([first, second], ignore_index=True)
    rows["id"] = [f"R{i:05d}" for i in range(len(rows))]
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "people.csv"
    rows.to_csv(path, index=False)
    return path


def mapping(folder: Path, passport: bool) -> Path:
    fields = [{"name": "forename", "column": "given", "kind": "name"},
              {"name": "surname", "column": "family", "kind": "name"},
              {"name": "dob", "column": "born", "kind": "date"},
              {"name": "town", "column": "town", "kind": "exact"},
              {"name": "blood_group", "column": "blood_group", "kind": "exact"}]
    if passport:
        fields.append({"name": "passport", "column": "passport_no", "kind": "exact"})
    path = folder / ("with.yaml" if passport else "without.yaml")
    path.write_text(yaml.safe_dump({"record_id": "id", "provider": "clinic", "fields": fields}))
    return path


def link(csv: Path, mapping_file: Path, folder: Path, key: Path):
    bundle, spine = folder / "bundle", folder / "spine.duckdb"
    result = runner.invoke(app, ["hash", "--source", "generic", "--mapping", str(mapping_file),
                                 "--provider", "clinic", "--key", str(key), "--out", str(bundle),
                                 str(csv)])
    assert result.exit_code == 0, result.output
    result = runner.invoke(app, ["link", "--spine", str(spine), "--seed", "1", "--json",
                                 str(bundle)])
    if result.exit_code:
        return result, None
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    manifest = json.loads((bundle / "manifest.json").read_text())
    model = json.loads(Path(f"{spine}.model.json").read_text())
    return summary, {"manifest": manifest, "model": model}


def test_a_new_identifier_in_the_mapping_alone_is_used_by_the_model(tmp_path, linkage_key):
    csv = people_file(tmp_path / "data")
    without, _ = link(csv, mapping(tmp_path, passport=False), tmp_path / "a", linkage_key)
    assert not hasattr(without, "exit_code"), without.output
    with_passport, made = link(csv, mapping(tmp_path, passport=True), tmp_path / "b",
                               linkage_key)
    # the field is a token of its own kind, in the manifest ...
    assert made["manifest"]["token_kinds"]["passport"] == "token"
    # ... a comparison with term-frequency adjustment, and a blocking rule, in the model
    comparisons = {c["output_column_name"]: c for c in made["model"]["comparisons"]}
    assert "passport" in comparisons
    assert any(level.get("tf_adjustment_column") == "passport"
               for level in comparisons["passport"]["comparison_levels"])
    rules = [r["blocking_rule"] for r in made["model"]["blocking_rules_to_generate_predictions"]]
    assert "l.passport = r.passport" in rules
    # and it links people whose second record only their passport number names: without it
    # none of the 60 is linked, with it most are (a record with nothing else is weak evidence
    # against a prior of 1 in 800, so not every one)
    assert without["persons"] >= PEOPLE + 60
    assert without["persons"] - with_passport["persons"] >= 30


def test_a_comparison_nothing_can_train_is_refused(tmp_path, linkage_key):
    # names salted by the date of birth, and the date of birth alone: no field to learn the
    # date of birth's weight from without blocking on it; refused, not trained on defaults
    csv = people_file(tmp_path / "data")
    path = tmp_path / "names.yaml"
    path.write_text(yaml.safe_dump({"record_id": "id", "provider": "clinic", "fields": [
        {"name": "forename", "column": "given", "kind": "name"},
        {"name": "dob", "column": "born", "kind": "date"}]}))
    refused, _ = link(csv, path, tmp_path / "a", linkage_key)
    assert refused.exit_code == 1
    assert "comparison date_of_birth cannot be trained" in said(refused)
    assert "Traceback" not in refused.output


def test_no_column_list_stands_between_a_mapping_and_the_model():
    # the schema's own comparisons never name a generic field: they come from the mapping
    schema = load_config("linkage_schema.yaml")
    assert "passport" not in json.dumps(schema)


def test_a_saved_model_that_reads_a_missing_field_is_refused(tmp_path, linkage_key):
    csv = people_file(tmp_path / "data")
    link(csv, mapping(tmp_path, passport=True), tmp_path / "b", linkage_key)
    model = tmp_path / "b" / "spine.duckdb.model.json"
    bundle = tmp_path / "c" / "bundle"
    hashed = runner.invoke(app, ["hash", "--source", "generic", "--mapping",
                                 str(mapping(tmp_path, passport=False)), "--provider", "clinic",
                                 "--key", str(linkage_key), "--out", str(bundle), str(csv)])
    assert hashed.exit_code == 0, hashed.output
    reused = runner.invoke(app, ["link", "--spine", str(tmp_path / "c" / "s.duckdb"),
                                 "--model", str(model), str(bundle)])
    assert reused.exit_code == 1
    assert "the model compares passport, which these bundles do not carry" in said(reused)
    assert "Traceback" not in reused.output


@pytest.mark.parametrize(("field", "expected"), [
    ({"name": "order", "column": "town", "kind": "exact"}, "is a word the toolkit or SQL uses"),
    ({"name": "postcode_sector", "column": "town", "kind": "exact"},
     "is a word the toolkit or SQL uses"),
    ({"name": "birth_text", "column": "town", "kind": "name"}, "ends in one of"),
    ({"name": "town", "column": "town", "kind": "text", "group": "place"},
     "group 'place' has one field"),
    ({"name": "town", "column": "town", "kind": "text", "group": "surname"},
     "group 'surname' is the name of a field or of one of the model's comparisons"),
])
def test_names_that_would_take_another_columns_place_are_refused(tmp_path, field, expected):
    path = tmp_path / "mapping.yaml"
    path.write_text(yaml.safe_dump({"record_id": "id", "fields": [
        {"name": "dob", "column": "born", "kind": "date"}, field]}))
    with pytest.raises(SourceError) as refused:
        load_mapping(path)
    assert expected in str(refused.value)
    assert str(path) in str(refused.value)


def test_free_text_keeps_its_digits_and_names_do_not():
    towns = pd.Series(["town1", "town2", "12 High St", "14 High St"])
    assert normalise_name(towns, digits=True).tolist() == ["TOWN1", "TOWN2", "12 HIGH ST",
                                                           "14 HIGH ST"]
    assert normalise_name(towns).nunique() == 2


def test_a_former_upn_unique_in_its_own_column_is_still_compared():
    # a former UPN agrees with another record's UPN, never with another former UPN
    from linkage.match.run import _register, duckdb_api

    table = pd.DataFrame({
        "source": "school_census", "provider": "DfE", "period": [2020, 2021, 2022, 2023],
        "record_id": ["a", "b", "c", "d"], "upn": pd.array([1, 2, 3, 4], dtype="Int64"),
        "former_upn": pd.array([None, None, 1, None], dtype="Int64")})
    _, columns, _, _ = _register(duckdb_api(threads=1), table)
    assert {"upn", "former_upn"} <= columns
