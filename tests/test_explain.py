"""`linkage explain`: the waterfall of match weights, read back from the spine's agreement
patterns, adds up to the match weight Splink gave each pair."""

import json
import math
import shutil

import duckdb
import pytest
from typer.testing import CliRunner

from linkage.cli import app
from linkage.match.explain import level_table, prior_weight, probability, waterfall
from linkage.match.run import UNIQUE_ID_SQL

runner = CliRunner()


def explain(spine, *args):
    result = runner.invoke(app, ["explain", "--spine", str(spine), "--json", *args])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


@pytest.fixture(scope="module")
def spine_model(linked_spine):
    spine, _ = linked_spine
    con = duckdb.connect(str(spine), read_only=True)
    model = json.loads(con.execute("SELECT model FROM spine_version ORDER BY version DESC "
                                   "LIMIT 1").fetchall()[0][0])
    con.close()
    return spine, model


def test_waterfalls_of_a_thousand_pairs_add_up_to_splinks_match_weight(spine_model):
    spine, model = spine_model
    con = duckdb.connect(str(spine), read_only=True)
    total = con.execute("SELECT count(*) FROM scored_pair").fetchall()[0][0]
    sample = con.execute("SELECT * FROM scored_pair USING SAMPLE 1000 ROWS (reservoir, 7)"
                         ).df().to_dict("records")
    con.close()
    assert total >= 1000 and len(sample) == 1000
    levels = level_table(model).set_index(["comparison", "gamma"])
    for pair in sample:
        steps = waterfall(pair, model)
        # the steps are the model's own level weights, plus the term-frequency bits
        assert steps["prior_weight"] == pytest.approx(prior_weight(model), abs=1e-6)
        for step in steps["comparisons"]:
            expected = levels.loc[(step["comparison"], step["gamma"])].weight
            assert step["level_weight"] == pytest.approx(expected, abs=1e-6)
        added = steps["prior_weight"] + sum(s["weight"] for s in steps["comparisons"])
        assert added == pytest.approx(pair["match_weight"], abs=1e-4)
        assert probability(added) == pytest.approx(pair["match_probability"], abs=1e-6)


def test_every_scored_pair_has_a_level_for_every_comparison(spine_model):
    """Splink keeps each comparison's weight, not its level: each weight must be one of the
    model's levels, or the pattern would be lost."""
    spine, model = spine_model
    names = [c["output_column_name"] for c in model["comparisons"]]
    con = duckdb.connect(str(spine), read_only=True)
    unread = con.execute("SELECT count(*) FROM scored_pair WHERE " + " OR ".join(
        f"gamma_{n} IS NULL" for n in names)).fetchall()[0][0]
    agreeing = con.execute("SELECT count(*) FROM scored_pair WHERE gamma_upn = 1"
                           ).fetchall()[0][0]
    con.close()
    assert unread == 0
    assert agreeing > 0


def test_a_persons_records_are_explained_pair_by_pair(spine_model):
    spine, _ = spine_model
    con = duckdb.connect(str(spine), read_only=True)
    person, size = con.execute("""SELECT person_key, count(*) FROM person_record
        WHERE version = (SELECT max(version) FROM spine_version)
        GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT 1""").fetchall()[0]
    con.close()
    result = explain(spine, "--person", person)
    assert len(result["records"]) == size
    assert len(result["pairs"]) == size * (size - 1) // 2
    assert all(p["same_person"] for p in result["pairs"])
    scored = [p for p in result["pairs"] if p["scored"]]
    assert scored and all(p["verdict"].startswith(("linked", "one person")) for p in scored)
    # a person's records joined only through other records are said to be
    for pair in result["pairs"]:
        if pair["scored"] and not pair["kept"]:
            assert pair["verdict"].startswith("one person through other records")


def test_a_pair_below_the_threshold_in_two_persons_is_said_not_linked(spine_model):
    spine, _ = spine_model
    con = duckdb.connect(str(spine), read_only=True)
    left, right = con.execute(f"""WITH r AS (SELECT record_number, person_key,
            {UNIQUE_ID_SQL} AS uid FROM person_record
            WHERE version = (SELECT max(version) FROM spine_version))
        SELECT a.uid, b.uid FROM scored_pair p JOIN r a ON a.record_number = p.record_l
        JOIN r b ON b.record_number = p.record_r
        WHERE a.person_key <> b.person_key AND p.match_probability < 0.5
        ORDER BY p.record_l, p.record_r LIMIT 1""").fetchall()[0]
    con.close()
    result = explain(spine, left, right)
    (pair,) = result["pairs"]
    assert not pair["same_person"] and pair["scored"] and not pair["kept"]
    assert pair["verdict"].startswith("not linked")
    assert not pair["waterfall"]["above_threshold"]
    # one record alone: every pair scored with it, this one among them
    alone = explain(spine, left)
    assert any(p["record_r"] == right or p["record_l"] == right for p in alone["pairs"])
    assert all(left in (p["record_l"], p["record_r"]) for p in alone["pairs"])


def test_the_html_view_draws_waterfalls_and_names_no_record(spine_model, tmp_path):
    spine, _ = spine_model
    con = duckdb.connect(str(spine), read_only=True)
    person = con.execute("""SELECT person_key FROM person_record GROUP BY 1
        HAVING count(*) BETWEEN 3 AND 6 ORDER BY 1 LIMIT 1""").fetchall()[0][0]
    ids = [row[0] for row in con.execute(
        "SELECT record_id FROM person_record WHERE person_key = ?", [person]).fetchall()]
    con.close()
    page = tmp_path / "explain.html"
    result = runner.invoke(app, ["explain", "--spine", str(spine), "--person", person,
                                 "--html", str(page)])
    assert result.exit_code == 0, result.output
    text = page.read_text()
    assert text.count("<svg") >= 1 and "match weight (bits)" in text
    assert "<script" not in text and "http://" not in text.replace(
        "http://www.w3.org", "")
    assert not any(record_id in text for record_id in ids)


def test_a_person_of_one_record_has_no_pair_and_says_so(spine_model):
    spine, _ = spine_model
    con = duckdb.connect(str(spine), read_only=True)
    person = con.execute("""SELECT person_key FROM person_record GROUP BY 1
        HAVING count(*) = 1 ORDER BY 1 LIMIT 1""").fetchall()[0][0]
    con.close()
    assert explain(spine, "--person", person)["pairs"] == []
    result = runner.invoke(app, ["explain", "--spine", str(spine), "--person", person])
    assert result.exit_code == 0 and "no pair to explain" in result.output


def test_refusals_name_the_problem(spine_model, tmp_path):
    spine, _ = spine_model
    cases = [
        (["cin|000|2020|nothing"], "record 1 given is not a record"),
        ([], "name the records to explain"),
        (["--person", "Pnobody"], "no person of that key"),
    ]
    for args, message in cases:
        result = runner.invoke(app, ["explain", "--spine", str(spine), *args])
        assert result.exit_code == 1, result.output
        assert message in result.output
        assert "Traceback" not in result.output
    # a spine linked before scored pairs were kept is refused, not explained wrongly
    old = tmp_path / "old.duckdb"
    shutil.copy(spine, old)
    con = duckdb.connect(str(old))
    con.execute("DROP TABLE scored_pair")
    con.close()
    result = runner.invoke(app, ["explain", "--spine", str(old), "--person", "P"])
    assert result.exit_code == 1 and "kept no scored pairs" in result.output


def test_probability_and_weight_agree_at_the_extremes():
    assert probability(0.0) == 0.5
    assert probability(40) == pytest.approx(1.0)
    assert probability(-40) == pytest.approx(0.0, abs=1e-11)
    assert math.isclose(probability(math.log2(9)), 0.9)
