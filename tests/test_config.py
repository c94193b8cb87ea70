"""Configuration files: every packaged file validates; wrong types and impossible values are
refused naming the file and the field; a site's config folder (--config, LINKAGE_CONFIG_DIR)
replaces whole files and leaves the packaged ones alone."""

import copy
import hashlib
import json
from pathlib import Path

import pandas as pd
import pytest
import yaml
from pydantic import BaseModel, ConfigDict
from typer.testing import CliRunner

from linkage import config_models
from linkage.cli import app
from linkage.config import (
    ENV_VAR,
    ConfigError,
    config_names,
    config_path,
    load_config,
    packaged_path,
    read_config,
    use_site_folder,
)
from linkage.release.disclosure import protect
from tests.output import said

runner = CliRunner()
FILES = ["attack_limits.yaml", "codebook.yaml", "disclosure.yaml", "ethnic_groups.yaml",
         "evaluation.yaml", "families.yaml", "linkage_schema.yaml", "model_explanations.yaml",
         "release.yaml", "review.yaml", "sources.yaml", "spark.yaml", "synthetic.yaml",
         "tables.yaml"]


@pytest.fixture(autouse=True)
def no_site_folder(monkeypatch):
    """Each test starts with the packaged configs and leaves no site folder behind."""
    monkeypatch.delenv(ENV_VAR, raising=False)
    use_site_folder(None)
    yield
    use_site_folder(None)


def packaged(name: str) -> dict:
    return yaml.safe_load(packaged_path(name).read_text(encoding="utf-8"))


def digests() -> dict[str, str]:
    return {name: hashlib.sha256(packaged_path(name).read_bytes()).hexdigest()
            for name in FILES}


def write(folder: Path, name: str, data) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(data if isinstance(data, str) else yaml.safe_dump(data), encoding="utf-8")
    return path


def at(data: dict, dotted: str):
    """The mapping holding the last key of ``dotted``, and that key."""
    *parents, last = dotted.split(".")
    for key in parents:
        data = data[key]
    return data, last


def changed(name: str, dotted: str, value) -> dict:
    """The packaged file's mapping with one key set (or removed, for value ``...``)."""
    data = copy.deepcopy(packaged(name))
    holder, key = at(data, dotted)
    if value is ...:
        del holder[key]
    else:
        holder[key] = value
    return data


def refusal(tmp_path: Path, name: str, data) -> str:
    with pytest.raises(ConfigError) as caught:
        read_config(write(tmp_path, name, data))
    return str(caught.value)


# ------------------------------------------------------------------ the packaged files

def test_every_packaged_file_validates_and_keeps_its_shape():
    assert config_names() == FILES
    for name in FILES:
        assert load_config(name) == packaged(name), name


def test_callers_get_their_own_copy():
    load_config("families.yaml")["siblings"]["min_confidence"] = 0.0
    assert load_config("families.yaml")["siblings"]["min_confidence"] == 0.95


# ------------------------------------------------------------------ wrong types and values

# (file, key, value, what the message says after "<file>: ")
WRONG_TYPES = [
    ("model_explanations.yaml", "generic.missing", 5,
     "generic.missing: must be text (found 5)"),
    ("ethnic_groups.yaml", "detailed_max_suppressed_share", "0.2",
     "detailed_max_suppressed_share: must be a number (found text '0.2')"),
    ("tables.yaml", "month_bands", "6", "month_bands: must be a list"),
    ("linkage_schema.yaml", "match.threshold", "0.9", "match.threshold: "),
    ("linkage_schema.yaml", "clustering.forename_conflict_sources", "cin",
     "clustering.forename_conflict_sources: "),
    ("attack_limits.yaml", "exact_dob", "0.01", "exact_dob: must be a number (found text '0.01')"),
    ("disclosure.yaml", "min_count", "6", "min_count: must be a whole number (found text '6')"),
    ("disclosure.yaml", "national_rounding", 2.5,
     "national_rounding: must be a whole number (found 2.5)"),
    ("disclosure.yaml", "suppress_zero", "no", "suppress_zero: must be true or false"),
    ("disclosure.yaml", "suppressed", 5, "suppressed: must be text (found 5)"),
    ("evaluation.yaml", "truth_min_coverage", "0.99",
     "truth_min_coverage: must be a number (found text '0.99')"),
    ("review.yaml", "limit", "200", "limit: must be a whole number (found text '200')"),
    ("families.yaml", "siblings.prior_bits", "low", "siblings.prior_bits: must be a number"),
    ("families.yaml", "child_adopter.weights", [1, 2], "child_adopter.weights: must be a mapping"),
    ("release.yaml", "cohorts", "all", "cohorts: must be a list (found text 'all')"),
    ("codebook.yaml", "fields.cin.PrimaryNeedCode.codes", ["N1"],
     "fields.cin.PrimaryNeedCode.codes: must be a mapping (found a list)"),
    ("release.yaml", "datasets.cin.fields", ["CINreferralDate"],
     "datasets.cin.fields: must be a mapping (found a list)"),
    ("sources.yaml", "max_child_age", "25", "max_child_age: must be a whole number"),
    ("spark.yaml", "local.cores", "2", "local.cores: must be a whole number (found text '2')"),
    ("sources.yaml", "sex.cin", {1: "M"}, "sex.cin: key 1: must be text (found 1)"),
    ("synthetic.yaml", "calendar.years", 6.0, "calendar.years: must be a whole number (found 6.0)"),
    ("synthetic.yaml", "population.sex_female_share", True,
     "population.sex_female_share: must be a number (found true)"),
]

WRONG_VALUES = [
    ("ethnic_groups.yaml", "codes.CHNE.group", "East Asian",
     "codes.CHNE.group: 'East Asian' is not one of groups"),
    ("tables.yaml", "routes", [{"label": "Adopted", "codes": ["E11"]},
                               {"label": "Again", "codes": ["E11"]}],
     "routes[1].codes: E11 is also in routes[0]"),
    ("tables.yaml", "month_bands", [0, 12, 6], "month_bands: must start at 0 and rise"),
    ("linkage_schema.yaml", "match.threshold", 1.5, "match.threshold: must be less than 1"),
    ("linkage_schema.yaml", "match.score_floor", 0.95,
     "match.score_floor: must not exceed threshold"),
    ("linkage_schema.yaml", "tokens.forename_bloom.salt", "dob_salted",
     "tokens.forename_bloom.salt: names no token (found 'dob_salted')"),
    ("linkage_schema.yaml", "field_kinds.name.transform", "soundex",
     "field_kinds.name.transform: "),
    ("linkage_schema.yaml", "comparisons.postcode.levels", [{"equal": "postcode",
                                                             "name": "x"}],
     "comparisons.postcode.levels[0]: a level needs exactly one of equal, either, cross, name"),
    ("linkage_schema.yaml", "name_levels", [0.7, 0.9],
     "name_levels: must run from the highest Dice down"),
    ("attack_limits.yaml", "exact_forename_beyond_chance", 1.5,
     "exact_forename_beyond_chance: must be at most 1 (found 1.5)"),
    ("disclosure.yaml", "min_count", 0, "min_count: must be at least 1 (found 0)"),
    ("model_explanations.yaml", "comparisons.upn.meaning", "",
     "comparisons.upn.meaning: must not be empty"),
    ("model_explanations.yaml", "comparisons.Postcode", {"meaning": "the postcode"},
     "comparisons: key 'Postcode': Value error, must be a comparison's name"),
    ("disclosure.yaml", "min_count", -3, "min_count: must be at least 1 (found -3)"),
    ("disclosure.yaml", "national_rounding", 0, "national_rounding: must be at least 1 (found 0)"),
    ("disclosure.yaml", "min_count", 3, "min_count: must be at least min_count_floor 6 (found 3)"),
    ("evaluation.yaml", "truth_min_coverage", 1.5,
     "truth_min_coverage: must be at most 1 (found 1.5)"),
    ("evaluation.yaml", "truth_min_coverage", 0, "truth_min_coverage: must be more than 0"),
    ("spark.yaml", "cluster.executor_memory", "2GB",
     "cluster.executor_memory: must be a whole number of megabytes or gigabytes, as 512m or 2g"),
    ("spark.yaml", "cluster.max_cores", 0, "cluster.max_cores: must be at least 1 (found 0)"),
    ("spark.yaml", "cluster.executor_cores", 4,
     "cluster: max_cores (2) must be at least executor_cores (4)"),
    ("review.yaml", "within_bits", 0, "within_bits: must be more than 0"),
    ("review.yaml", "limit", 0, "limit: must be at least 1 (found 0)"),
    ("disclosure.yaml", "suppressed", "5", "suppressed: must not read as a number"),
    ("disclosure.yaml", "suppressed", ..., "suppressed: required but missing"),
    ("disclosure.yaml", "min_cuont", 6, "min_cuont: unknown key (known here: min_count,"),
    ("families.yaml", "siblings.min_confidence", 1.5,
     "siblings.min_confidence: must be at most 1 (found 1.5)"),
    ("families.yaml", "mother_child.weights.ethnicity_differs", 2,
     "mother_child.weights.ethnicity_differs: must be at most 0 (found 2)"),
    ("families.yaml", "child_adopter.weights.matched_date.sme", 9,
     "child_adopter.weights.matched_date.sme: unknown key (known here: same, same_week, differ)"),
    ("release.yaml", "datasets.cin.source", "cin-census",
     "datasets.cin.source: must be 'ssda903', 'cin', 'school_census'"),
    ("release.yaml", "datasets.cin.fields.upn", "cin_details.upn",
     "datasets.cin.fields.upn: is on the forbidden list and cannot be offered"),
    ("release.yaml", "datasets.cin.fields.ReferralSource", "ReferralSource",
     "datasets.cin.fields.ReferralSource: must be content_table.column"),
    ("release.yaml", "cohorts", ["cla_31mar", "looked_after"],
     "cohorts[1]: 'looked_after' is not a cohort this toolkit can build"),
    ("release.yaml", "cohorts", ["cla_31mar", "x" * 65], "cohorts[1]: must be at most 64"),
    ("release.yaml", "datasets.cin.fields.Referral Source", "cin_details.ReferralSource",
     "datasets.cin.fields: key 'Referral Source': must be a name of letters"),
    ("release.yaml", "forbidden.upn", "x" * 1001, "forbidden.upn: must be at most 1000"),
    ("release.yaml", "outputs.formats", ["parquet", "excel"], "outputs.formats[1]: must be"),
    ("release.yaml", "outputs.formats", ["csv", "csv"], "outputs.formats: names a format twice"),
    ("codebook.yaml", "fields.ssda903.LS.meaning", "",
     "fields.ssda903.LS.meaning: must not be empty"),
    ("sources.yaml", "schema_version", 2, "schema_version: must be 1 (found 2)"),
    ("sources.yaml", "sex.cin.1", "X", "sex.cin.1: must be 'M', 'F' or 'U' (found text 'X')"),
    ("sources.yaml", "sex.generic", ..., "sex.generic: required but missing"),
    ("sources.yaml", "ethnicity.extended.WENG", "ENGL",
     "ethnicity.extended.WENG: rolls up to 'ENGL', which is not one of codes"),
    ("sources.yaml", "asg_children.record_id", "Child_ID",
     "asg_children.record_id: must be lower case (found 'Child_ID')"),
    ("sources.yaml", "upn.la_number_ranges", [[201, 213], [320, 301]],
     "upn.la_number_ranges[1]: must be [low, high] with 0 <= low <= high <= 999"),
    ("sources.yaml", "school_census.required", ["upn", "nhs_number"],
     "school_census.required[1]: must be 'upn'"),
    ("synthetic.yaml", "errors.dob_swap", -0.1, "errors.dob_swap: must be at least 0 (found -0.1)"),
    ("synthetic.yaml", "population.sex_female_share", 1.2,
     "population.sex_female_share: must be at most 1 (found 1.2)"),
    ("synthetic.yaml", "families.birth_gap_years.min", 7.0,
     "families.birth_gap_years.max: must be at least min (7.0)"),
    ("synthetic.yaml", "adoption.household_weights.XY", 0.1,
     "adoption.household_weights: key 'XY': must be 'MF', 'F1', 'M1', 'FF' or 'MM'"),
    ("synthetic.yaml", "adoption.adoption_share_by_age.3", 1.5,
     "adoption.adoption_share_by_age.3: must be at most 1 (found 1.5)"),
    ("synthetic.yaml", "social_care.outcome_weights",
     {"E4A": 0, "open": 0}, "social_care.outcome_weights: weights must not all be zero"),
]


def case_id(case) -> str:
    return f"{case[0]}:{case[1]}={case[2]!r}"


@pytest.mark.parametrize("case", WRONG_TYPES + WRONG_VALUES, ids=case_id)
def test_refused_naming_file_and_field(tmp_path, case):
    name, dotted, value, expected = case
    message = refusal(tmp_path, name, changed(name, dotted, value))
    assert message.startswith(f"{tmp_path / name}: "), message
    assert expected in message, message


def test_every_file_has_a_wrong_type_and_a_wrong_value_case():
    closed = list(FILES)
    assert {case[0] for case in WRONG_TYPES} == set(closed)
    assert {case[0] for case in WRONG_VALUES} == set(closed)


def test_the_exact_message(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write(tmp_path / "configs", "disclosure.yaml", changed("disclosure.yaml", "min_count", 0))
    with pytest.raises(ConfigError, match=r"^configs/disclosure\.yaml: min_count: must be at "
                                          r"least 1 \(found 0\)$"):
        read_config(Path("configs/disclosure.yaml"))


def test_several_problems_are_counted_on_one_line(tmp_path):
    data = changed("synthetic.yaml", "errors.dob_swap", -1)
    data["errors"].update(sex_wrong=2, name_typo=3, cin_duplicate=4)
    message = refusal(tmp_path, "synthetic.yaml", data)
    assert "\n" not in message
    assert message.count("must be") == 3
    assert message.endswith("(and 1 more)")


@pytest.mark.parametrize(("text", "expected"), [
    ("min_count: [6\n", "is not valid YAML (line 2: expected ',' or ']'"),
    ("min_count: 6\nmin_count: 7\n", "is not valid YAML (line 2: key 'min_count' is given twice)"),
    ("", "must be a mapping of keys to values (found nothing)"),
    ("- min_count\n", "must be a mapping of keys to values (found a list)"),
], ids=["unclosed", "duplicate-key", "empty", "list"])
def test_unreadable_yaml_is_refused_naming_the_file(tmp_path, text, expected):
    message = refusal(tmp_path, "disclosure.yaml", text)
    assert message.startswith(f"{tmp_path / 'disclosure.yaml'}: {expected}"), message


def test_non_utf8_is_refused_naming_the_file(tmp_path):
    path = tmp_path / "disclosure.yaml"
    path.write_bytes("suppressed: \"é\"\n".encode("latin-1"))
    with pytest.raises(ConfigError, match=r"disclosure\.yaml: is not UTF-8 text \(byte 14"):
        read_config(path)


def test_a_model_can_be_registered_for_a_file(tmp_path):
    data = {"schema_version": 3, "anything": {"goes": [1, 2]}}

    class Versioned(BaseModel):
        model_config = ConfigDict(strict=True, extra="forbid")
        schema_version: int

    packaged = config_models.MODELS["linkage_schema.yaml"]
    config_models.register_model("linkage_schema.yaml", Versioned)
    try:
        message = refusal(tmp_path / "c", "linkage_schema.yaml", data)
        assert "anything: unknown key (known here: schema_version)" in message
    finally:
        config_models.register_model("linkage_schema.yaml", packaged)


# ------------------------------------------------------------------ a site's config folder

def test_a_site_file_replaces_the_packaged_one_and_others_fall_back(tmp_path, monkeypatch):
    before = digests()
    site = tmp_path / "site"
    write(site, "disclosure.yaml", changed("disclosure.yaml", "min_count", 11))
    monkeypatch.setenv(ENV_VAR, str(site))
    assert config_path("disclosure.yaml") == site / "disclosure.yaml"
    assert load_config("disclosure.yaml")["min_count"] == 11
    assert config_path("release.yaml") == packaged_path("release.yaml")
    assert load_config("release.yaml") == packaged("release.yaml")
    # behaviour follows: a count of 8 is shown under the packaged rules, suppressed here
    counts = pd.DataFrame({"a": [8, 20], "b": [30, 40]})
    assert protect(counts, load_config("disclosure.yaml")).table.iloc[0, 0] == "c"
    monkeypatch.delenv(ENV_VAR)
    assert protect(counts, load_config("disclosure.yaml")).table.iloc[0, 0] == "8"
    assert digests() == before


def test_the_spine_fingerprint_covers_the_site_files(tmp_path, monkeypatch):
    from linkage.spine.store import config_fingerprint

    packaged_print = config_fingerprint()
    site = tmp_path / "site"
    write(site, "families.yaml", changed("families.yaml", "siblings.min_confidence", 0.99))
    monkeypatch.setenv(ENV_VAR, str(site))
    assert config_fingerprint() != packaged_print


def test_a_site_file_is_validated_the_same_way(tmp_path, monkeypatch):
    site = tmp_path / "site"
    write(site, "families.yaml", changed("families.yaml", "siblings.min_confidence", 2))
    monkeypatch.setenv(ENV_VAR, str(site))
    with pytest.raises(ConfigError, match=r"site/families\.yaml: siblings\.min_confidence: "
                                          r"must be at most 1 \(found 2\)"):
        load_config("families.yaml")


def test_an_edited_site_file_is_read_again(tmp_path, monkeypatch):
    site = tmp_path / "site"
    write(site, "disclosure.yaml", changed("disclosure.yaml", "min_count", 11))
    monkeypatch.setenv(ENV_VAR, str(site))
    assert load_config("disclosure.yaml")["min_count"] == 11
    write(site, "disclosure.yaml", changed("disclosure.yaml", "min_count", 100))
    assert load_config("disclosure.yaml")["min_count"] == 100


def test_an_unknown_file_name_is_refused(tmp_path, monkeypatch):
    site = tmp_path / "site"
    write(site, "disclosur.yaml", "min_count: 11\n")
    monkeypatch.setenv(ENV_VAR, str(site))
    with pytest.raises(ConfigError, match=r"disclosur\.yaml: not a configuration file this "
                                          r"toolkit knows \(did you mean disclosure\.yaml\?\)"):
        load_config("release.yaml")


def test_a_subfolder_is_refused_and_hidden_files_ignored(tmp_path):
    site = tmp_path / "site"
    write(site, ".gitkeep", "")
    assert use_site_folder(site) == []
    (site / "families.yaml").mkdir()
    with pytest.raises(ConfigError, match="not a configuration file"):
        use_site_folder(site)


def test_a_missing_site_folder_is_refused(tmp_path, monkeypatch):
    with pytest.raises(ConfigError, match=r"nowhere: no such folder \(the site config folder"):
        use_site_folder(tmp_path / "nowhere")
    monkeypatch.setenv(ENV_VAR, str(tmp_path / "nowhere"))
    with pytest.raises(ConfigError, match="no such folder"):
        load_config("disclosure.yaml")


def test_a_failed_site_folder_is_not_left_in_force(tmp_path):
    site = tmp_path / "site"
    write(site, "disclosure.yaml", changed("disclosure.yaml", "min_count", 0))
    with pytest.raises(ConfigError):
        use_site_folder(site)
    assert config_path("disclosure.yaml") == packaged_path("disclosure.yaml")


# ------------------------------------------------------------------ through the command line

def refused_by_cli(result, *words: str) -> None:
    text = said(result)
    assert result.exit_code == 1, result.output
    assert isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in result.output
    assert "internal error" not in text
    assert text.startswith("error: ")
    for word in words:
        assert word in text, text


def test_cli_refuses_a_bad_site_file_before_the_command_runs(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write(tmp_path / "site", "disclosure.yaml", changed("disclosure.yaml", "min_count", 0))
    result = runner.invoke(app, ["--config", "site", "keygen", "--out", "key"])
    refused_by_cli(result, "error: site/disclosure.yaml: min_count: must be at least 1 (found 0)")
    assert not (tmp_path / "key").exists()


def test_cli_takes_the_site_folder_from_the_environment(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write(tmp_path / "site", "sources.yml", "schema_version: 1\n")
    result = runner.invoke(app, ["keygen", "--out", "key"], env={ENV_VAR: "site"})
    refused_by_cli(result, "site/sources.yml: not a configuration file this toolkit knows")
    result = runner.invoke(app, ["--config", "elsewhere", "keygen", "--out", "key"])
    refused_by_cli(result, "elsewhere: no such folder")
    assert not (tmp_path / "key").exists()


def test_cli_refuses_a_bad_synthetic_config_naming_the_field(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write(tmp_path, "rates.yaml", changed("synthetic.yaml", "social_care.cla_share", 1.5))
    result = runner.invoke(app, ["synth", "--out", "w", "--config", "rates.yaml"])
    refused_by_cli(result, "rates.yaml: social_care.cla_share: must be at most 1 (found 1.5)")


def test_cli_site_folder_changes_the_world_and_lasts_one_command(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    before = digests()
    write(tmp_path / "site", "synthetic.yaml", changed("synthetic.yaml", "calendar.years", 2))
    result = runner.invoke(app, ["--config", "site", "synth", "--people", "100", "--out", "w",
                                 "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["collection_years"] == [2020, 2021]
    assert config_path("synthetic.yaml") == packaged_path("synthetic.yaml")
    assert digests() == before


def test_cli_checks_a_site_folder_on_its_own(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write(tmp_path / "site", "release.yaml", packaged("release.yaml"))
    result = runner.invoke(app, ["--config", "site"])
    assert result.exit_code == 0, result.output
    assert "site config folder site: valid; its files: release.yaml" in said(result)
