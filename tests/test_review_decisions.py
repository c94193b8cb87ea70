"""Clerical review decisions fed to `linkage link --decisions`: must-links merge, cannot-links
split, the spine keeps them for every later link, and every bad file is refused by name."""

import json
import shutil

import duckdb
import pandas as pd
import pytest
from typer.testing import CliRunner

from linkage.cli import app
from tests.output import said

runner = CliRunner()


def relink(spine, *extra, code=0):
    """`linkage link` of the spine's held bundles alone, with ``extra`` options."""
    result = runner.invoke(app, ["link", "--spine", str(spine), "--seed", "1", "--json",
                                 "--quiet", *map(str, extra)])
    assert result.exit_code == code, result.output
    return json.loads(result.stdout) if code == 0 else said(result)


def persons(spine, version=None) -> pd.Series:
    """Each record's person at a version (the latest by default), by unique id."""
    con = duckdb.connect(str(spine), read_only=True)
    try:
        version = version or con.execute("SELECT max(version) FROM spine_version").fetchone()[0]
        frame = con.execute("""SELECT source || '|' || provider || '|' || CAST(period AS
            VARCHAR) || '|' || record_id AS unique_id, person_key FROM person_record
            WHERE version = ?""", [version]).df()
    finally:
        con.close()
    return frame.set_index("unique_id").person_key


def decisions_file(path, pairs, spine_version=None):
    """A decisions file as the review page saves it."""
    path.write_text(json.dumps({"format": "linkage-review-decisions",
                                "spine_version": spine_version, "pairs_sha256": "0" * 64,
                                "decisions": [{"record_l": a, "record_r": b, "decision": d}
                                              for a, b, d in pairs]}))
    return path


def pick_pairs(spine) -> tuple[tuple[str, str], tuple[str, str]]:
    """Two records each alone in its person (to be joined), and the two records of a person
    that has just two (to be split): the first such, in unique-id order."""
    person = persons(spine)
    size = person.map(person.value_counts())
    alone = sorted(size.index[size == 1])
    pair_person = sorted(person[size == 2].unique())[0]
    two = sorted(person.index[person == pair_person])
    return (alone[0], alone[-1]), (two[0], two[1])


@pytest.fixture(scope="module")
def spine(linked_spine, tmp_path_factory):
    """A copy of the session spine (relinked here, never the original)."""
    copy = tmp_path_factory.mktemp("review") / "spine.duckdb"
    shutil.copy(linked_spine[0], copy)
    return copy


def test_decisions_change_the_next_link_as_decided_and_stay(spine, tmp_path):
    join, split = pick_pairs(spine)
    before = persons(spine)
    assert before[join[0]] != before[join[1]] and before[split[0]] == before[split[1]]
    file = decisions_file(tmp_path / "round1.json",
                          [(*join, "match"), (*split, "non-match")], spine_version=1)
    summary = relink(spine, "--decisions", file)
    after = persons(spine)
    assert after[join[0]] == after[join[1]]          # must-link: one person
    assert after[split[0]] != after[split[1]]        # cannot-link: two
    # the absorbed person has no record left: retired, as after any merge
    assert summary["key_changes"] == {"merge": 1, "split": 1, "retire": 1}
    assert summary["decisions"]["given"] == 2 and summary["decisions"]["match"] == 1
    # everything else is as it was: only the decided persons changed
    untouched = before.index.difference([*join, *split])
    moved = set(before[list(split)]) | set(before[list(join)])
    others = untouched[~before[untouched].isin(moved)]
    assert (after[others] == before[others]).all()

    con = duckdb.connect(str(spine), read_only=True)
    try:
        held = con.execute("SELECT record_l, record_r, decision, decided_in_version, applied "
                           "FROM review_decision WHERE version = ? ORDER BY 1",
                           [summary["version"]]).fetchall()
        audit = json.loads(con.execute("SELECT outputs FROM audit_log ORDER BY version DESC "
                                       "LIMIT 1").fetchone()[0])
    finally:
        con.close()
    assert sorted(held) == sorted([(*join, "match", 1, True), (*split, "non-match", 1, True)])
    assert audit["decisions"]["files"][0]["sha256"] and audit["decisions"]["given"] == 2

    # the next link, with no decisions given, applies the ones the spine holds
    again = relink(spine)
    kept = persons(spine)
    assert kept[join[0]] == kept[join[1]] and kept[split[0]] != kept[split[1]]
    assert again["key_changes"] == {} and again["decisions"]["held"] == 2
    assert (kept.sort_index() == after.sort_index()).all()

    # a later decision on the same pair replaces the earlier: both ways back
    reverse = decisions_file(tmp_path / "round2.csv", [])
    reverse.write_text("record_l,record_r,decision\n"
                       f"{join[0]},{join[1]},non-match\n{split[1]},{split[0]},match\n")
    back = relink(spine, "--decisions", reverse)
    undone = persons(spine)
    assert undone[join[0]] != undone[join[1]] and undone[split[0]] == undone[split[1]]
    assert back["key_changes"] == {"merge": 1, "split": 1, "retire": 1}
    assert back["decisions"]["replaced"] == 2


def refused(spine, tmp_path, text, name="bad.json") -> str:
    path = tmp_path / name
    path.write_text(text)
    return relink(spine, "--decisions", path, code=1), path


def test_malformed_decisions_are_refused_naming_file_row_and_field(spine, tmp_path):
    (a, b), _ = pick_pairs(spine)
    cases = [
        ("not json", "is not JSON"),
        (json.dumps({"rows": []}), "decisions: missing"),
        (json.dumps({"decisions": [{"record_l": a, "record_r": b}]}),
         "decision 1: decision: missing or not text"),
        (json.dumps({"decisions": [{"record_l": a, "record_r": b, "decision": "yes"}]}),
         "decision 1: decision: must be match or non-match"),
        (json.dumps({"decisions": [{"record_l": a, "record_r": "P123", "decision": "match"}]}),
         "decision 1: record_r: not a record's unique id"),
        (json.dumps({"decisions": [{"record_l": a, "record_r": a, "decision": "match"}]}),
         "decision 1: record_r: is the same record as record_l"),
        (json.dumps({"decisions": [{"record_l": a, "record_r": b, "decision": "match"},
                                   {"record_l": b, "record_r": a, "decision": "non-match"}]}),
         "decision 2: decision: the same pair is decided both ways (decision 1 and decision 2)"),
        (json.dumps({"decisions": [{"record_l": a, "record_r": "ssda903|X|2024|nobody",
                                    "decision": "match"}]}),
         "decision 1: record_r: no such record in the spine or the bundles given"),
        (json.dumps({"spine_version": 99, "decisions": []}),
         "spine_version: 99 is later than this spine's latest version"),
    ]
    for text, message in cases:
        output, path = refused(spine, tmp_path, text)
        assert f"{path}: {message}" in output, (message, output)
        assert "Traceback" not in output and "internal error" not in output
        assert "nobody" not in output and a not in output   # never a record's id
    output, path = refused(spine, tmp_path, "record_l,decision\n", "bad.csv")
    assert f"{path}: row 1: missing column record_r" in output


def test_match_chains_that_join_a_non_match_are_refused(spine, tmp_path):
    (a, b), (c, _) = pick_pairs(spine)
    output, path = refused(spine, tmp_path, json.dumps({"decisions": [
        {"record_l": a, "record_r": c, "decision": "match"},
        {"record_l": c, "record_r": b, "decision": "match"},
        {"record_l": a, "record_r": b, "decision": "non-match"}]}))
    assert (f"{path}: decision 3: decision: non-match, but match decisions join these two "
            "records through a chain of pairs") in output
    # across two files: the same pair decided both ways
    first = decisions_file(tmp_path / "one.json", [(a, b, "match")])
    second = decisions_file(tmp_path / "two.json", [(b, a, "non-match")])
    output = relink(spine, "--decisions", first, "--decisions", second, code=1)
    assert f"{second}: decision 1: decision: the same pair is decided the other way in {first}" \
        in output


def test_a_held_decision_on_withdrawn_records_is_set_aside(linked_spine, tmp_path):
    spine = tmp_path / "spine.duckdb"
    shutil.copy(linked_spine[0], spine)
    join, _ = pick_pairs(spine)
    relink(spine, "--decisions", decisions_file(tmp_path / "d.json", [(*join, "match")]))
    source, provider, period, _ = join[0].split("|")
    con = duckdb.connect(str(spine), read_only=True)
    try:
        inputs = json.loads(con.execute("SELECT inputs FROM spine_version ORDER BY version "
                                        "DESC LIMIT 1").fetchone()[0])
    finally:
        con.close()
    bundle = next(i["bundle"] for i in inputs if i["source"].replace("-", "_") == source
                  and provider in i["provider"] and int(period) in i["periods"])
    summary = relink(spine, "--withdraw", bundle)   # not an error: counted, kept, not applied
    assert summary["decisions"]["set_aside"] == 1 and summary["decisions"]["match"] == 0
    con = duckdb.connect(str(spine), read_only=True)
    try:
        held = con.execute("SELECT record_l, record_r, applied FROM review_decision "
                           "WHERE version = ?", [summary["version"]]).fetchall()
    finally:
        con.close()
    assert held == [(*join, False)]


def test_match_chains_through_a_held_non_match_are_refused(linked_spine, tmp_path):
    spine = tmp_path / "spine.duckdb"
    shutil.copy(linked_spine[0], spine)
    (a, b), (c, _) = pick_pairs(spine)
    relink(spine, "--decisions", decisions_file(tmp_path / "first.json", [(a, b, "non-match")]))
    chain = decisions_file(tmp_path / "chain.json", [(a, c, "match"), (c, b, "match")])
    output = relink(spine, "--decisions", chain, code=1)
    assert (f"{chain}: decision 1: decision: match, but it chains two records a decision the "
            "spine holds calls a non-match") in output
    # the same pair decided again replaces the held decision: then the chain is consistent
    both = decisions_file(tmp_path / "both.json", [(a, c, "match"), (c, b, "match"),
                                                   (a, b, "match")])
    summary = relink(spine, "--decisions", both)
    assert summary["decisions"]["replaced"] == 1
    after = persons(spine)
    assert after[a] == after[b] == after[c]
