"""Linking new bundles to a spine without giving the old ones again: every record and key
kept, replacing and withdrawing bundles only when asked, and clustering that holds the spine's
persons fixed."""

import json
import re
import shutil

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from typer.testing import CliRunner

from linkage.cli import app
from linkage.match.anchors import anchor_records, anchored_edges
from linkage.match.cluster import cluster
from tests.output import said

runner = CliRunner()
LATER = re.compile(r"^vaa01_|_2025$")  # one agency's bundles and the last school census


def link(spine, bundles, *extra, code=0):
    result = runner.invoke(app, ["link", "--spine", str(spine), "--seed", "1", "--json",
                                 *extra, *map(str, bundles)])
    assert result.exit_code == code, result.output
    return json.loads(result.stdout) if code == 0 else said(result)


def records(spine, version):
    con = duckdb.connect(str(spine), read_only=True)
    try:
        return con.execute("SELECT * FROM person_record WHERE version = ?", [version]).df()
    finally:
        con.close()


@pytest.fixture(scope="module")
def grown(world_bundles, tmp_path_factory):
    """A spine linked from most bundles, then given only the later ones."""
    spine = tmp_path_factory.mktemp("grown") / "spine.duckdb"
    first = link(spine, [b for b in world_bundles if not LATER.search(b.name)])
    later = [b for b in world_bundles if LATER.search(b.name)]
    second = link(spine, later)
    return spine, first, second, later


def test_new_bundles_alone_keep_every_record_and_key(grown, world_bundles):
    spine, first, second, later = grown
    rows = sum(json.loads((b / "manifest.json").read_text())["rows"]["out"]
               for b in world_bundles)
    assert second["records"] == rows > first["records"]  # nothing lost, the new ones added
    assert second["bundles"]["added"] == [str(b) for b in later]
    assert second["bundles"]["kept"] == len(world_bundles) - len(later)
    assert second["model"] == "spine's"
    before, after = records(spine, 1), records(spine, 2)
    moved = before.merge(after, on=["source", "provider", "record_id", "period"])
    assert len(moved) == len(before)
    assert (moved.person_key_x == moved.person_key_y).all()
    assert second["key_changes"] == {}


def test_a_grown_spine_is_as_accurate_as_one_link(grown, linked_spine, world_dir, linkage_key):
    def scores(spine):
        result = runner.invoke(app, ["evaluate", "--spine", str(spine), "--truth",
                                     str(world_dir / "truth"), "--key", str(linkage_key),
                                     "--json"])
        assert result.exit_code == 0, result.output
        return json.loads(result.stdout)["pairwise"]

    grown_scores, whole = scores(grown[0]), scores(linked_spine[0])
    assert grown_scores["precision"] >= whole["precision"] - 0.001
    assert grown_scores["recall"] >= whole["recall"] - 0.002


def _corrected_cin(world_dir, linkage_key, out):
    """One LA's CIN returns hashed again with one child taken out of the latest year."""
    folder = sorted(world_dir.glob("providers/la_*/cin"))[0]
    copy = out / "cin"
    shutil.copytree(folder, copy)
    latest = sorted(copy.glob("*.xml"))[-1]
    text = latest.read_text(encoding="utf-8")
    latest.write_text(re.sub(r"<Child>.*?</Child>\n?", "", text, count=1, flags=re.S),
                      encoding="utf-8")
    bundle = out / "corrected_cin"
    result = runner.invoke(app, ["hash", "--source", "cin", "--provider", folder.parent.name[3:],
                                 "--key", str(linkage_key), "--out", str(bundle), str(copy)])
    assert result.exit_code == 0, result.output
    return bundle, folder.parent.name


def test_a_bundle_of_held_records_replaces_only_when_asked(grown, world_dir, linkage_key,
                                                           tmp_path):
    spine = tmp_path / "spine.duckdb"
    shutil.copy(grown[0], spine)
    bundle, la = _corrected_cin(world_dir, linkage_key, tmp_path)
    message = link(spine, [bundle], code=1)
    assert f"{la}_cin" in message and "--replace" in message
    summary = link(spine, [bundle], "--replace")
    assert summary["bundles"]["replaced"] == [s for s in summary["bundles"]["replaced"]
                                              if s.endswith(f"{la}_cin")] != []
    assert summary["records"] == grown[2]["records"] - 1  # the child taken out, no other
    con = duckdb.connect(str(spine), read_only=True)
    audit = json.loads(con.execute("SELECT outputs FROM audit_log ORDER BY version DESC "
                                   "LIMIT 1").fetchone()[0])
    assert audit["bundles"]["replaced"] == summary["bundles"]["replaced"]


def test_a_withdrawn_bundle_leaves_with_its_persons_retired(grown, tmp_path):
    spine = tmp_path / "spine.duckdb"
    shutil.copy(grown[0], spine)
    unknown = link(spine, [], "--withdraw", "no_such_bundle", code=1)
    assert "no_such_bundle" in unknown and "holds no such bundle" in unknown
    school = next(b for b in grown[3] if b.name.startswith("dfe_school"))
    rows = json.loads((school / "manifest.json").read_text())["rows"]["out"]
    summary = link(spine, [], "--withdraw", school.name)
    assert summary["bundles"]["withdrawn"] == [str(school)]
    assert summary["records"] == grown[2]["records"] - rows
    before, after = records(spine, 2), records(spine, 3)
    gone = set(before.person_key) - set(after.person_key)
    con = duckdb.connect(str(spine), read_only=True)
    retired = con.execute("SELECT person_key FROM key_change WHERE version = 3 AND "
                          "change = 'retire'").df()
    assert set(retired.person_key) == gone and gone  # pupils seen only in that census
    con.close()
    kept = before.merge(after, on=["source", "provider", "record_id", "period"])
    assert (kept.person_key_x == kept.person_key_y).all()
    from linkage.quality.report import report_data

    changes = report_data(spine)["changes"]  # the report says what the version changed
    assert changes["previous_version"] == 2 and changes["records_before"] == len(before)
    assert changes["kinds"] == [{"change": "retire", "keys": len(gone),
                                 "records": int(before.person_key.isin(gone).sum())}]


def test_a_spine_that_does_not_hold_its_bundles_is_not_shrunk(grown, tmp_path):
    spine = tmp_path / "spine.duckdb"
    shutil.copy(grown[0], spine)
    con = duckdb.connect(str(spine))
    con.execute("DELETE FROM held_bundle")  # as a spine linked by an earlier linkage
    con.close()
    message = link(spine, grown[3][:1], code=1)
    assert "does not hold" in message and "--withdraw" in message
    assert records(spine, 3).empty  # no version written


def _clusters(edges: list[tuple[int, int, float]], anchors: dict[int, int], size: int):
    con = duckdb.connect()
    con.register("recs", pa.table({
        "rid": np.arange(size), "source": ["asg_children"] * size,
        "provider": [f"A{i}" for i in range(size)], "period": [2024] * size,
        "record_id": [f"r{i}" for i in range(size)]}))
    con.execute("CREATE TABLE linking_records AS SELECT * FROM recs")
    con.execute("CREATE TABLE cluster_edges (rid_l BIGINT, rid_r BIGINT, "
                "match_probability DOUBLE, match_weight DOUBLE, prelinked BOOLEAN)")
    con.executemany("INSERT INTO cluster_edges VALUES (?, ?, 0.99, ?, false)",
                    [list(e) for e in edges])
    previous = {"person_key": [], "source": [], "provider": [], "period": [], "record_id": []}
    for rid, person in anchors.items():
        for column, value in zip(previous, [f"P{person}", "asg_children", f"A{rid}", 2024,
                                            f"r{rid}"], strict=True):
            previous[column].append(value)
    unique = "source || '|' || provider || '|' || CAST(period AS VARCHAR) || '|' || record_id"
    con.execute("ALTER TABLE linking_records ADD COLUMN unique_id VARCHAR DEFAULT ''")
    con.execute(f"UPDATE linking_records SET unique_id = {unique}")
    anchor_records(con, pd.DataFrame(previous), unique)
    return cluster(con, "linking_records", anchored_edges(con), size, "record_anchor")


def test_a_new_record_never_joins_two_of_the_spines_persons():
    # records 0, 1 are one person; 2 another; 3 and 4 are new. 3 matches both persons;
    # the old pair 1-2 (scored again today) is set aside
    labels = _clusters([(0, 3, 9.0), (2, 3, 8.0), (1, 2, 12.0), (3, 4, 10.0)],
                       {0: 1, 1: 1, 2: 2}, 5)
    assert labels[0] == labels[1] != labels[2]      # the spine's persons as they were
    assert labels[3] == labels[4] == labels[0]      # new records join the stronger person


def test_a_new_record_as_close_to_two_persons_joins_neither():
    labels = _clusters([(0, 2, 9.0), (1, 2, 9.0)], {0: 1, 1: 2}, 3)
    assert labels[0] != labels[1]
    assert labels[2] not in (labels[0], labels[1])


def test_a_link_of_nothing_is_a_message(tmp_path):
    message = link(tmp_path / "spine.duckdb", [], code=1)
    assert "no bundle to link" in message
    assert not (tmp_path / "spine.duckdb").exists()
