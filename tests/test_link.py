"""`linkage link` and `linkage evaluate` on the small synthetic world, end to end."""

import json
import os

import duckdb
from typer.testing import CliRunner

from linkage.cli import app
from tests.output import said

runner = CliRunner()


def link(spine, bundles, *extra):
    result = runner.invoke(app, ["link", "--spine", str(spine), "--seed", "1", "--json",
                                 *extra, *map(str, bundles)])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def evaluate(spine, world_dir, key):
    result = runner.invoke(app, ["evaluate", "--spine", str(spine), "--truth",
                                 str(world_dir / "truth"), "--key", str(key), "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_link_conserves_records_and_is_accurate(linked_spine, world_dir, truth_records,
                                                linkage_key):
    spine, summary = linked_spine
    hashed = truth_records[truth_records.source != "generic"]  # conftest.hash_world's sources
    assert summary["records"] == summary["records_in"] == len(hashed)
    assert summary["records_linked"] + summary["records_unlinked"] == summary["records"]
    scores = evaluate(spine, world_dir, linkage_key)
    assert scores["records_evaluated"] == len(hashed)
    assert scores["pairwise"]["precision"] >= 0.995
    assert scores["pairwise"]["recall"] >= 0.95
    assert scores["twins_merged"] == 0
    assert scores["recall_by_source_pair"]["school_census~ssda903"]["recall"] > 0.9
    assert set(scores["recall_by_group"]) >= {"ethnic_group", "sex", "age_band", "moved_la"}


def test_spine_tables_follow_the_contract(linked_spine):
    spine, _ = linked_spine
    con = duckdb.connect(str(spine), read_only=True)
    tables = {row[0] for row in con.execute("SHOW TABLES").fetchall()}
    assert {"person", "person_record", "spine_version", "key_change"} <= tables
    keys = con.execute("SELECT DISTINCT person_key FROM person_record").df().person_key
    assert keys.str.match(r"^P[0-9a-f]{16}$").all()
    version = con.execute("SELECT inputs, model, counts FROM spine_version").fetchone()
    assert json.loads(version[0]) and json.loads(version[1])["comparisons"]
    confidence = con.execute("SELECT min(link_confidence), max(link_confidence) "
                             "FROM person_record").fetchone()
    assert 0 < confidence[0] <= confidence[1] <= 1
    assert spine.with_name(spine.name + ".model.json").is_file()


def test_relinking_the_same_bundles_keeps_every_key(linked_spine, world_bundles):
    spine, _ = linked_spine
    summary = link(spine, world_bundles)
    assert summary["version"] == 2
    con = duckdb.connect(str(spine), read_only=True)
    moved = con.execute("""SELECT count(*) FROM person_record a JOIN person_record b
        USING (source, provider, record_id, period)
        WHERE a.version = 1 AND b.version = 2 AND a.person_key <> b.person_key""").fetchone()
    assert moved[0] == 0
    assert con.execute("SELECT count(*) FROM key_change WHERE version = 2").fetchone()[0] == 0


def test_bundles_hashed_with_another_key_are_refused(world_bundles, world_dir, tmp_path):
    other_key = tmp_path / "other.key"
    other_key.write_text(bytes(range(5, 37)).hex())
    other_key.chmod(0o600)
    cin = sorted(world_dir.glob("providers/la_*/cin"))[0]
    odd = tmp_path / "odd_bundle"
    result = runner.invoke(app, ["hash", "--source", "cin", "--provider", cin.parent.name[3:],
                                 "--key", str(other_key), "--out", str(odd), str(cin)])
    assert result.exit_code == 0, result.output
    refused = runner.invoke(app, ["link", "--spine", str(tmp_path / "s.duckdb"),
                                  *map(str, world_bundles[:2]), str(odd)])
    assert refused.exit_code == 1
    assert "odd_bundle" in said(refused) and "different keys" in said(refused)
    assert not (tmp_path / "s.duckdb").exists()


def test_link_needs_the_linkage_units_key_and_register(world_bundles, tmp_path, monkeypatch):
    monkeypatch.delenv("LINKAGE_UNIT_KEY")
    without = runner.invoke(app, ["link", "--spine", str(tmp_path / "s.duckdb"),
                                  str(world_bundles[0])])
    assert without.exit_code == 1 and "--unit-key" in said(without)
    custodian = runner.invoke(app, ["link", "--spine", str(tmp_path / "s.duckdb"), "--unit-key",
                                    os.environ["LINKAGE_CUSTODIAN_KEY"], str(world_bundles[0])])
    assert custodian.exit_code == 1 and "another recipient" in said(custodian)
    assert "internal error" not in without.output + custodian.output
    assert not (tmp_path / "s.duckdb").exists()


def test_hashing_costs_the_linkage_almost_nothing(linked_spine, world_dir, truth_records,
                                                  truth_persons, linkage_key):
    """The same model on the plaintext identifiers (names by Jaro-Winkler) does no better."""
    from linkage.match.run import linking_table, train_and_predict
    from linkage.pipelines.delivery import provider_jobs
    from linkage.pseudonymise.bundle import linkage_schema, tokenise
    from linkage.quality.evaluate import evaluate as score
    from linkage.sources import read_source

    tables = [tokenise(read_source(kind, paths, provider=code), None, linkage_schema())
              for kind, code, paths, _ in provider_jobs(world_dir / "providers")]
    assert "forename" in tables[-1].columns or any("forename" in t for t in tables)
    plain = train_and_predict(linking_table(tables)).clusters
    plain_f1 = score(plain.rename(columns={"cluster_id": "person_key"}), truth_records,
                     truth_persons)["pairwise"]["f1"]
    spine, _ = linked_spine
    hashed_f1 = evaluate(spine, world_dir, linkage_key)["pairwise"]["f1"]
    assert hashed_f1 >= plain_f1 - 0.005


def test_user_mistakes_are_clean_errors(world_bundles, tmp_path):
    twice = runner.invoke(app, ["link", "--spine", str(tmp_path / "s.duckdb"),
                                str(world_bundles[0]), str(world_bundles[0])])
    assert twice.exit_code == 1 and "same bundle" in said(twice)
    (tmp_path / "model.json").write_text("not a model")
    bad_model = runner.invoke(app, ["link", "--spine", str(tmp_path / "s.duckdb"), "--model",
                                    str(tmp_path / "model.json"), str(world_bundles[0])])
    assert bad_model.exit_code == 1 and "not a trained linkage model" in said(bad_model)
    assert "internal error" not in twice.output + bad_model.output
    assert not (tmp_path / "s.duckdb").exists()


def test_two_agencies_with_empty_files_are_two_bundles(world_bundles, linkage_key, tmp_path):
    """A voluntary agency places no children of its own: its empty children file hashes to
    the same tokens as another agency's, yet the bundles are different and both link."""
    from synthetic.formats.asg import CHILD_COLUMNS

    empties = []
    for agency in ("VAA01", "VAA02"):
        csv = tmp_path / agency / "asg_children.csv"
        csv.parent.mkdir()
        csv.write_text(",".join(CHILD_COLUMNS) + "\n")
        out = tmp_path / f"{agency}_bundle"
        result = runner.invoke(app, ["hash", "--source", "asg-children", "--provider", agency,
                                     "--key", str(linkage_key), "--out", str(out), str(csv)])
        assert result.exit_code == 0, result.output
        empties.append(out)
    cin = [b for b in world_bundles if b.name.endswith("_cin")][:1]
    summary = link(tmp_path / "s.duckdb", [*cin, *empties])
    assert summary["records"] == summary["records_in"] > 0
