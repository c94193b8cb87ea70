"""`linkage hash-delivery`: a whole delivery hashed in one command, from a synthetic world's
folder or a plan file, on a real world of 1,500 children; the bundles then link."""

import json
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from typer.testing import CliRunner

from linkage.cli import app
from linkage.pipelines.delivery import folder_entries, plan_entries, provider_jobs
from linkage.pseudonymise.bundle import SIGNATURE
from linkage.pseudonymise.keys import load_key
from linkage.pseudonymise.signing import generate_signing_keypair, signer_id
from linkage.quality.evaluate import load_truth
from linkage.sources.schema import RECORD_KEY
from linkage.spine.store import connect, current_records
from synthetic.world import build_world, load_config, write_world
from tests.identifiers import world_identifiers
from tests.output import said

runner = CliRunner()
PEOPLE = 1500


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("delivery_world")
    write_world(build_world(PEOPLE, 3, load_config()), out)
    return out


@pytest.fixture(scope="module")
def delivered(world, linkage_key, tmp_path_factory) -> tuple[Path, dict]:
    """The world's folder hashed in one command (keys from options and the environment)."""
    out = tmp_path_factory.mktemp("delivered") / "bundles"
    result = runner.invoke(app, ["hash-delivery", str(world), "--out", str(out), "--key",
                                 str(linkage_key), "--json"])
    assert result.exit_code == 0, result.output
    return out, json.loads(result.stdout)


def write_plan(path: Path, plan: dict | str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(plan if isinstance(plan, str) else json.dumps(plan))  # JSON is YAML
    return path


def hash_plan(plan: Path, out: Path, *options: str):
    return runner.invoke(app, ["hash-delivery", str(plan), "--out", str(out), *options])


def test_a_worlds_folder_becomes_one_bundle_per_provider_source_and_the_bundles_link(
        world, delivered, tmp_path):
    out, summary = delivered
    jobs = [entry.bundle for entry in folder_entries(world / "providers")]
    # every LA's 903 and CIN, every census, every agency's ASG files, every attainment file
    assert len(jobs) >= 21 and sum(name.startswith("dfe_attainment_") for name in jobs) == 6
    # the summary lists entries in the folder's order, whichever finished first
    assert [row["bundle"] for row in summary["entries"]] == jobs
    assert sorted(path.name for path in out.iterdir()) == sorted(jobs)
    assert summary["written"] is True and summary["failed"] == 0
    for row in summary["entries"]:
        manifest = json.loads((out / row["bundle"] / "manifest.json").read_text())
        assert (row["rows_in"], row["rows_out"], row["rejected"], row["flagged"]) == (
            manifest["rows"]["in"], manifest["rows"]["out"], manifest["rows"]["rejected"],
            manifest["rows"]["flagged"])
        assert row["rows_in"] == row["rows_out"] and row["problem"] is None
    assert not [p for p in out.parent.iterdir() if p.name.startswith(".")]  # no staging left

    spine = tmp_path / "spine.duckdb"
    linked = runner.invoke(app, ["link", "--spine", str(spine), "--seed", "1", "--json",
                                 *map(str, sorted(out.iterdir()))])
    assert linked.exit_code == 0, linked.output
    assert json.loads(linked.stdout)["records"] == sum(r["rows_out"] for r in summary["entries"])


def test_a_worlds_attainment_file_links_to_the_same_pupils_as_their_census(
        world, delivered, linkage_key, tmp_path):
    """The attainment bundle of one summer and that January's census bundle, linked: each
    result is on the spine person of its pupil's census record, and evaluate scores them."""
    out, summary = delivered
    generic = [row for row in summary["entries"] if row["source"] == "generic"]
    assert [row["bundle"] for row in generic] == [f"dfe_attainment_{y}" for y in range(2020,
                                                                                        2026)]
    assert all(row["rejected"] == 0 and row["rows_out"] > 0 for row in generic)
    spine = tmp_path / "spine.duckdb"
    linked = runner.invoke(app, ["link", "--spine", str(spine), "--seed", "1",
                                 str(out / "dfe_school_2024"), str(out / "dfe_attainment_2024")])
    assert linked.exit_code == 0, linked.output

    records, _ = load_truth(world / "truth", load_key(linkage_key))
    records = records[records.period == 2024]
    on_spine = current_records(connect(spine, read_only=True))
    on_spine = on_spine.assign(period=on_spine.period.astype(int)).merge(
        records[[*RECORD_KEY, "person_id", "duplicate"]], on=RECORD_KEY)
    results = on_spine[on_spine.source == "generic"]
    census = on_spine[(on_spine.source == "school_census") & ~on_spine.duplicate]
    pairs = results.merge(census[["person_id", "person_key"]], on="person_id",
                          suffixes=("", "_census"))
    assert len(results) == (records.source == "generic").sum() == len(pairs) > 100
    assert (pairs.person_key == pairs.person_key_census).mean() >= 0.98

    scored = runner.invoke(app, ["evaluate", "--spine", str(spine), "--truth",
                                 str(world / "truth"), "--key", str(linkage_key), "--json"])
    assert scored.exit_code == 0, scored.output
    pair = json.loads(scored.stdout)["recall_by_source_pair"]["generic~school_census"]
    assert pair["recall"] >= 0.98


def test_a_bundle_of_the_delivery_is_the_bundle_linkage_hash_makes(world, delivered,
                                                                    linkage_key, tmp_path):
    out, _ = delivered
    kind, code, paths, name = provider_jobs(world / "providers")[1]
    alone = tmp_path / name
    result = runner.invoke(app, ["hash", "--source", kind, "--provider", code, "--key",
                                 str(linkage_key), "--out", str(alone), *map(str, paths)])
    assert result.exit_code == 0, result.output

    def manifest(bundle: Path) -> dict:
        data = json.loads((bundle / "manifest.json").read_text())
        for part in data.pop("parts").values():  # sealed to a fresh one-time key each time
            part.pop("sha256")
        return data

    assert manifest(alone) == manifest(out / name)


def test_a_bundle_already_in_the_output_folder_is_never_overwritten(world, delivered,
                                                                    linkage_key):
    out, _ = delivered
    before = {p.name: (p / "manifest.json").stat().st_mtime_ns for p in out.iterdir()}
    result = runner.invoke(app, ["hash-delivery", str(world), "--out", str(out), "--key",
                                 str(linkage_key)])
    assert result.exit_code == 1
    assert "exists already" in said(result) and "no bundle was written" in said(result)
    assert {p.name: (p / "manifest.json").stat().st_mtime_ns for p in out.iterdir()} == before
    # the table and messages name files and count records, never a value from them
    values, dobs = world_identifiers(world)
    words = set(result.output.replace("│", " ").split())
    assert len(values) > 1000 and not (values | dobs) & words


@pytest.fixture(scope="module")
def provider_signing_keys(world, tmp_path_factory) -> tuple[Path, dict[str, Path]]:
    """Two LAs' own signing keys, and a register holding both public halves."""
    folder = tmp_path_factory.mktemp("la_keys")
    register = folder / "register"
    register.mkdir()
    codes = sorted(p.name[3:] for p in (world / "providers").glob("la_*"))[:2]
    keys = {}
    for code in codes:
        keys[code] = folder / f"la_{code}.sign"
        generate_signing_keypair(keys[code], register / f"la_{code}.pub")
    return register, keys


def la_entries(world: Path, codes: list[str]) -> list[dict]:
    return [{"source": kind, "provider": code, "input": str(world / "providers" / f"la_{code}"
                                                              / kind),
             "bundle": f"la_{code}_{kind}"} for code in codes for kind in ("ssda903", "cin")]


def test_a_plan_signs_each_providers_bundles_with_its_own_key_and_they_link(
        world, provider_signing_keys, keyring, tmp_path, monkeypatch):
    register, keys = provider_signing_keys
    plan = write_plan(tmp_path / "plans" / "delivery.yaml", {
        "key": str(keyring.linkage_key), "to_unit": str(keyring.unit_public),
        "to_custodian": str(keyring.custodian_public),
        # relative to the plan's folder, whatever folder the command runs from
        "sign_keys": {code: str(Path("..") / "keys" / path.name) for code, path in keys.items()},
        "entries": la_entries(world, sorted(keys))})
    (tmp_path / "keys").mkdir()
    for path in keys.values():
        (tmp_path / "keys" / path.name).write_bytes(path.read_bytes())
        (tmp_path / "keys" / path.name).chmod(0o600)
    monkeypatch.chdir(world)
    monkeypatch.delenv("LINKAGE_SIGNING_KEY")  # only the plan's keys can sign
    out = tmp_path / "bundles"
    result = hash_plan(plan, out, "--json")
    assert result.exit_code == 0, result.output
    for row in json.loads(result.stdout)["entries"]:
        public = serialization.load_pem_public_key(
            (register / f"la_{row['provider']}.pub").read_bytes())
        signature = json.loads((out / row["bundle"] / SIGNATURE).read_text())
        assert signature["signer"] == signer_id(public)
    linked = runner.invoke(app, ["link", "--spine", str(tmp_path / "spine.duckdb"),
                                 "--register", str(register), "--seed", "1",
                                 *map(str, sorted(out.iterdir()))])
    assert linked.exit_code == 0, linked.output


def test_every_failing_entry_is_named_with_its_file_and_nothing_is_written(
        world, linkage_key, tmp_path):
    codes = sorted(p.name[3:] for p in (world / "providers").glob("la_*"))[:2]
    entries = la_entries(world, codes)
    broken = tmp_path / "cin"
    broken.mkdir()
    (broken / "2024.xml").write_text("<Message><Header")
    entries[1]["input"] = str(broken)                                      # not XML
    entries[2]["input"] = [str(tmp_path / "missing" / "2025")]             # no such folder
    plan = write_plan(tmp_path / "plan.yaml", {"key": str(linkage_key), "entries": entries})
    out = tmp_path / "bundles"
    result = hash_plan(plan, out, "--json")
    assert result.exit_code == 1
    summary = json.loads(result.stdout)
    assert [row["problem"] is None for row in summary["entries"]] == [True, False, False, True]
    assert summary["entries"][0]["rows_in"] > 0  # the good entries were hashed and counted
    text = said(result)
    assert f"{entries[1]['bundle']} (cin, provider {codes[0]}): {broken / '2024.xml'}: is not " \
           "well-formed XML" in text
    assert f"{entries[2]['bundle']} (ssda903, provider {codes[1]}): " \
           f"{tmp_path / 'missing' / '2025'}: no such file or folder" in text
    assert "2 of 4 entries failed; no bundle was written" in text
    assert "internal error" not in text and "Traceback" not in text
    assert not out.exists() and not [p for p in tmp_path.iterdir() if p.name.startswith(".")]

    # fixed, the same command writes every bundle
    entries[1]["input"] = str(world / "providers" / f"la_{codes[0]}" / "cin")
    entries[2]["input"] = str(world / "providers" / f"la_{codes[1]}" / "ssda903")
    write_plan(plan, {"key": str(linkage_key), "entries": entries})
    again = hash_plan(plan, out)
    assert again.exit_code == 0, again.output
    assert sorted(p.name for p in out.iterdir()) == sorted(e["bundle"] for e in entries)
    assert "4 bundles written" in said(again)


BAD_PLANS = [
    ({"entries": [{"source": "cin", "provider": 336, "input": "x", "bundle": "b"}]},
     "entries[0].provider: must be text: quote the provider code (found 336)"),
    ({"entries": [{"source": "cinn", "provider": "336", "input": "x", "bundle": "b"}]},
     "entries[0].source: must be"),
    ({"entries": [{"source": "cin", "provider": "336", "input": "x", "bundle": "../b"}]},
     "entries[0].bundle: must be a folder name"),
    ({"entries": [{"source": "cin", "provider": "336", "input": "x", "bundle": "b"},
                  {"source": "cin", "provider": "337", "input": "y", "bundle": "b"}]},
     "entries[1].bundle: 'b' is also entries[0]'s bundle"),
    ({"entries": [{"source": "generic", "provider": "h", "input": "x", "bundle": "b"}]},
     "entries[0].mapping: required for a generic source"),
    ({"sign_keys": {"338": "k.sign"},
      "entries": [{"source": "cin", "provider": "336", "input": "x", "bundle": "b"}]},
     "sign_keys.338: names no provider of the entries"),
    ({"entries": [{"source": "cin", "provider": "336", "input": "x", "bundle": "b",
                   "perod": 2024}]}, "entries[0].perod: unknown key"),
    ({"entries": []}, "entries: must not be empty"),
    ({"keys": "k"}, "entries: required but missing"),
]


@pytest.mark.parametrize(("plan", "message"), BAD_PLANS)
def test_a_bad_plan_is_refused_naming_the_file_and_field(plan, message, tmp_path):
    path = write_plan(tmp_path / "plan.yaml", plan)
    result = hash_plan(path, tmp_path / "out")
    assert result.exit_code == 1
    assert f"{path}: " in said(result) and message in said(result), said(result)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(("text", "message"), [
    (b"entries: [\n", "is not valid YAML (line 2"),
    (b"- a list\n", "must be a mapping with an entries list"),
    (b"entries: \xff\n", "is not UTF-8 text"),
])
def test_a_plan_that_is_not_a_yaml_mapping_is_refused(text, message, tmp_path):
    path = tmp_path / "plan.yaml"
    path.write_bytes(text)
    result = hash_plan(path, tmp_path / "out")
    assert result.exit_code == 1 and f"{path}: {message}" in said(result), said(result)


def test_a_bad_key_stops_the_delivery_before_any_work(world, provider_signing_keys,
                                                      linkage_key, tmp_path):
    _, keys = provider_signing_keys
    first, second = sorted(keys)
    plan = write_plan(tmp_path / "plan.yaml", {
        "key": str(linkage_key),
        "sign_keys": {first: str(keys[first]), second: str(tmp_path / "lost.sign")},
        "entries": la_entries(world, [first, second])})
    result = hash_plan(plan, tmp_path / "out")
    assert result.exit_code == 1
    assert f"{tmp_path / 'lost.sign'}" in said(result) and f"provider {second}" in said(result)
    assert not (tmp_path / "out").exists()


def test_an_option_wins_over_the_plans_key(world, linkage_key, tmp_path):
    entries = la_entries(world, [sorted(p.name[3:] for p in
                                        (world / "providers").glob("la_*"))[0]])[:1]
    plan = write_plan(tmp_path / "plan.yaml", {"key": "no-such.key", "entries": entries})
    assert "no-such.key" in said(hash_plan(plan, tmp_path / "a"))
    result = hash_plan(plan, tmp_path / "b", "--key", str(linkage_key))
    assert result.exit_code == 0, result.output


@pytest.mark.parametrize("kind", ["missing", "empty"])
def test_a_delivery_that_is_no_plan_and_no_provider_folder_is_refused(kind, tmp_path):
    path = tmp_path / "delivery"
    if kind == "empty":
        path.mkdir()
    result = runner.invoke(app, ["hash-delivery", str(path), "--out", str(tmp_path / "out")])
    assert result.exit_code == 1
    expected = ("no such plan file or folder" if kind == "missing"
                else "holds no provider's files in the folder layout")
    assert f"{path}: {expected}" in said(result)


def test_the_plan_in_the_providers_guide_is_a_valid_plan(tmp_path):
    guide = (Path(__file__).resolve().parent.parent / "docs" / "providers.md").read_text()
    section = guide[guide.index("## Hashing a whole delivery"):]
    example = section[section.index("```yaml\n") + 8:section.index("```\n", section.index(
        "```yaml\n") + 8)]
    entries, keys = plan_entries(write_plan(tmp_path / "plans" / "delivery.yaml", example))
    assert [e.bundle for e in entries] == ["la_336_ssda903", "la_336_cin", "la_893_ssda903",
                                           "hospital_a_admissions"]
    assert entries[2].paths == (tmp_path / "plans" / "returns/893/2023-24",
                                tmp_path / "plans" / "returns/893/2024-25")
    assert entries[0].sign_key == tmp_path / "plans" / "keys/la_336.sign"
    assert entries[3].sign_key is None and keys.sign_key == tmp_path / "plans" / "keys/default.sign"
    assert keys.key == Path("/secure/linkage.key")  # an absolute path stays as written


def test_two_files_of_a_folder_that_would_make_one_bundle_are_refused(world, tmp_path):
    census = tmp_path / "providers" / "dfe" / "school_census"
    census.mkdir(parents=True)
    source = sorted((world / "providers" / "dfe" / "school_census").glob("*.csv"))[0]
    for name in (source.name, source.name.replace("_pupils", "_extra")):
        (census / name).write_bytes(source.read_bytes())
    result = runner.invoke(app, ["hash-delivery", str(tmp_path), "--out", str(tmp_path / "b")])
    assert result.exit_code == 1
    assert f"would make bundle dfe_school_{source.name[:4]}" in said(result)
    assert "give a plan file" in said(result) and not (tmp_path / "b").exists()
