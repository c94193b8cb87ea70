"""`linkage report`: sections, disclosure, no identifier or token, and a real browser."""

import json
import shutil
from html import unescape
from itertools import pairwise
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from linkage.cli import app
from linkage.pseudonymise.bundle import linkage_schema
from tests.browser import headless_chromium
from tests.identifiers import public_label_words, world_identifiers

runner = CliRunner()
SECTIONS = ["summary", "sources", "identifiers", "weights", "threshold", "model", "unlinked",
            "combinations", "bias", "families", "changes", "accuracy"]


@pytest.fixture(scope="module")
def report(linked_spine, world_dir, world_bundles, keyring, tmp_path_factory) -> Path:
    """The custodian's report: breakdowns by group from the bundles' content parts."""
    spine, _ = linked_spine
    out = tmp_path_factory.mktemp("report") / "report.html"
    result = runner.invoke(app, ["report", "--spine", str(spine), "--truth",
                                 str(world_dir / "truth"), "--key", str(keyring.linkage_key),
                                 "--custodian-key", str(keyring.custodian_key), "--out",
                                 str(out), *map(str, world_bundles)])
    assert result.exit_code == 0, result.output
    return out


def test_the_report_has_every_section_and_hides_small_counts(report, linked_spine):
    html = report.read_text()
    for section in SECTIONS:
        assert f'<section id="{section}">' in html
    assert html.count("<svg") >= 4 and "<script" not in html and "http" not in html.replace(
        "http://www.w3.org/2000/svg", "")
    assert "pairwise precision" in html and "largest gap" in html
    # the template escapes every text (an apostrophe too): read the text as a browser does
    assert "by the true person's group" in unescape(html) and "<th>ethnic group</th>" in html
    assert "95% interval" in html and "WBRI" not in html   # labels, never codes
    assert "<th></th>" not in html   # every table's header names its columns
    spine, _ = linked_spine
    data = json.loads(runner.invoke(app, ["report", "--spine", str(spine), "--out",
                                          str(report.with_name("again.html")), "--json"]).stdout)
    # the linkage unit's own report: no breakdown it cannot compute without content
    assert set(data["groups"]) == {"la", "moved_la"} and not data["groups_by_custodian"]
    bias = html[html.index('<section id="bias">'):html.index('<section id="families">')]
    assert "<h3>ethnic group</h3>" in bias  # the custodian's report (the fixture) has them
    # changes since the last version: another test may have relinked the session spine
    changes = data["changes"]
    if changes["previous_version"] is None:
        assert data["version"] == 1
    else:  # relinking the same bundles keeps every key (test_link)
        assert changes["records_before"] == data["records"] and changes["kinds"] == []
    small = [u for u in data["unlinked"] if 0 < u["records"] < 6]
    assert small, "the world should have some small counts to hide"
    for row in small:  # a small count is never printed
        assert (f'<td>{row["source"]}</td><td class="text">{row["reason"]}</td><td>c</td>'
                in html)


def token_values(bundles: list[Path], keys=None) -> set[str]:
    """Every token value of the bundles' linkage parts, opened with the linkage unit's keys
    (the test session's by default)."""
    from linkage.pseudonymise.bundle import open_bundles
    from linkage.pseudonymise.roles import unit_keys

    names = set(linkage_schema()["tokens"])
    values = set()
    for bundle in open_bundles(bundles, keys or unit_keys()):
        tokens = bundle.tokens()
        for column in tokens:
            if column in names or column.endswith(("_date", "_week", "_dob")):
                values |= {str(v) for v in tokens[column].dropna()
                           if not isinstance(v, bytes)}
    return values


def test_no_identifier_or_token_value_is_in_the_report(report, world_dir, world_bundles):
    text = report.read_text()
    words = set(text.replace("<", " ").replace(">", " ").split())
    identifiers, dobs = world_identifiers(world_dir)
    tokens = token_values(world_bundles)
    assert len(tokens) > 1000
    labels = public_label_words()
    leaked = [v for v in identifiers | dobs | tokens
              if v not in labels and (v in words or f">{v}<" in text)]
    assert not leaked


def test_the_report_renders_in_a_browser_without_errors(report, tmp_path):
    from selenium.webdriver.common.by import By

    browser = headless_chromium(tmp_path)
    try:
        browser.get(report.as_uri())
        for section in SECTIONS:
            element = browser.find_element(By.ID, section)
            assert element.is_displayed() and element.size["height"] > 20, section
        charts = browser.find_elements(By.CSS_SELECTOR, "svg.chart")
        assert len(charts) >= 4
        for chart in charts:
            assert chart.size["width"] > 100 and chart.size["height"] > 20
        bars = browser.find_elements(By.CSS_SELECTOR, "svg.chart g.mark-rect.role-mark path")
        assert sum(1 for bar in bars if bar.size["width"] > 0 and bar.size["height"] > 0) > 10
        errors = [entry for entry in browser.get_log("browser") if entry["level"] == "SEVERE"]
        assert not errors
        shot = tmp_path / "report.png"
        assert browser.save_screenshot(str(shot)) and shot.stat().st_size > 10_000
    finally:
        browser.quit()


def test_groups_read_in_order_with_intervals_and_a_gap_only_beyond_chance():
    import duckdb

    from linkage.quality.report import _gap, _match_rates, wilson_interval

    low, high = wilson_interval(15, 30)
    assert (round(low, 4), round(high, 4)) == (0.3315, 0.6685)   # by hand: 0.5 +- 0.1685
    records = pd.DataFrame({
        "person_key": [f"p{i}" for i in range(200)], "source": "ssda903",
        "age_band": ["10-15"] * 50 + ["5-9"] * 50 + ["1-4"] * 49 + ["under 1"] + ["18+"] * 50,
        "ethnicity": ["WBRI"] * 100 + ["BAFR"] * 60 + ["CHNE"] * 40,
        "cross_source": [True] * 45 + [False] * 5 + [True] * 25 + [False] * 125, "n": 1})
    con = duckdb.connect()  # the rates are counted by DuckDB, as on the spine
    con.register("records", records)
    bands = _match_rates(con, "age_band", "records")
    assert [g["group"] for g in bands] == ["under 1", "1-4", "5-9", "10-15", "18+"]
    assert [g["linked"] for g in bands] == [0, 0, 25, 45, 0]
    ethnic = _match_rates(con, "ethnicity", "records")
    assert [g["group"] for g in ethnic] == ["White", "Asian or Asian British",
                                            "Black, Black British, Caribbean or African"]
    # 90% of 50 against 0% of 50: the intervals are far apart, so the gap is called out
    assert _gap(bands)["points"] == 90.0
    # 16 of 30 against 14 of 30: the intervals overlap, so no gap is claimed
    near = [{"group": g, "records": 30, "rate": k / 30,
             "ci_low": wilson_interval(k, 30)[0], "ci_high": wilson_interval(k, 30)[1]}
            for g, k in (("a", 16), ("b", 14))]
    assert _gap(near) is None


def test_recall_and_precision_by_group_counted_by_hand():
    from linkage.quality.evaluate import _recall_by_group

    persons = pd.DataFrame({"person_id": [1, 2], "dob": ["2012-05-01", "2013-06-01"],
                            "ethnicity": ["WBRI", "BAFR"], "sex": ["F", "M"],
                            "moved_la": [False, False]})
    # person 1 has records a, b, c; person 2 has d, e; the spine put d with a and b
    joined = pd.DataFrame({"person_id": [1, 1, 1, 2, 2],
                           "person_key": ["A", "A", "B", "A", "C"]})
    groups = _recall_by_group(joined, persons)["ethnic_group"]
    # White: 1 of its 3 true pairs linked (a-b); cluster A (mostly person 1) predicts 3 pairs
    assert groups["White"] == {"true_pairs": 3, "recall": round(1 / 3, 6),
                               "precision": round(1 / 3, 6)}
    # Black: its one pair (d-e) missed, and no cluster stands for person 2's group
    assert groups["Black, Black British, Caribbean or African"] == {
        "true_pairs": 1, "recall": 0.0, "precision": None}


# the rebuilt page: charts with axes, figures from DuckDB, curves, completeness, determinism ----

def charts_of(html: str) -> list[str]:
    import re

    return re.findall(r"<svg .*?</svg>", html, flags=re.S)


def test_every_chart_has_titled_axes_and_labels(report):
    charts = charts_of(report.read_text())
    assert len(charts) >= 10
    for chart in charts:
        # Vega draws each axis as a group with its title and tick labels
        assert chart.count('class="mark-text role-axis-title"') >= 2, chart[:300]
        assert 'class="mark-text role-axis-label"' in chart
        assert 'class="mark-text role-title-text"' in chart
        assert "<script" not in chart and "xlink:href" not in chart


def test_age_bands_read_in_order_in_the_chart(report):
    chart = next(c for c in charts_of(report.read_text())
                 if 'aria-label="Linked to another source, by age band' in c)
    bands = ["under 1", "1-4", "5-9", "10-15", "16-17"]
    at = [chart.find(f">{band}<") for band in bands]
    assert all(i > 0 for i in at) and at == sorted(at)


def unit_report(spine: Path, out: Path, *extra: str) -> dict:
    result = runner.invoke(app, ["report", "--spine", str(spine), "--out", str(out), "--json",
                                 *extra])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_the_same_spine_gives_a_byte_identical_page(linked_spine, tmp_path):
    spine, _ = linked_spine
    unit_report(spine, tmp_path / "one.html")
    unit_report(spine, tmp_path / "two.html")
    assert (tmp_path / "one.html").read_bytes() == (tmp_path / "two.html").read_bytes()


def test_threshold_curves_are_monotone_and_measured_with_truth(linked_spine, world_dir,
                                                               keyring, tmp_path):
    spine, _ = linked_spine
    data = unit_report(spine, tmp_path / "truth.html", "--truth", str(world_dir / "truth"),
                       "--key", str(keyring.linkage_key))
    curves = data["curves"]
    assert curves["source"] == "scored_pair" and curves["measured"]
    rows = curves["rows"]
    assert len(rows) > 10
    pairs = [r["pairs"] for r in rows]
    for name, values in {"pairs": pairs,
                         "expected recall": [r["expected_recall"] for r in rows],
                         "measured recall": [r["recall"] for r in rows]}.items():
        assert all(a >= b for a, b in pairwise(values)), name  # raising t drops pairs
    # probability rises with weight, so the mean over the pairs kept can only rise
    precision = [r["expected_precision"] for r in rows]
    assert all(b >= a - 1e-9 for a, b in pairwise(precision))
    assert rows[0]["expected_recall"] == 1.0 and 0 < rows[-1]["expected_recall"] < 1
    at = curves["at_threshold"]
    assert at["threshold"] == pytest.approx(curves["threshold"])
    assert at["recall"] > 0.8 and at["precision"] > 0.9 and curves["true_pairs"] > 1000


def test_curves_fall_back_to_the_weight_bins_without_scored_pairs(linked_spine, tmp_path):
    import duckdb

    spine, _ = linked_spine
    old = tmp_path / "old.duckdb"
    shutil.copy(spine, old)
    con = duckdb.connect(str(old))
    con.execute("DROP TABLE scored_pair")
    con.close()
    curves = unit_report(old, tmp_path / "old.html")["curves"]
    assert curves["source"] == "match_weights" and not curves["measured"]
    assert [r["threshold"] for r in curves["rows"]] == sorted(r["threshold"]
                                                              for r in curves["rows"])
    assert curves["rows"][0]["expected_recall"] == 1.0


def test_completeness_equals_a_count_made_from_the_bundles(linked_spine, world_bundles,
                                                           tmp_path):
    from linkage.pseudonymise.bundle import open_bundles
    from linkage.pseudonymise.roles import unit_keys
    from linkage.release.content import source_of

    spine, _ = linked_spine
    identifiers = unit_report(spine, tmp_path / "r.html")["identifiers"]
    assert identifiers["recorded"]
    reported = {(c["source"], c["column"]): (c["holding"], c["records"])
                for c in identifiers["completeness"]}
    columns = {column for _, column in reported}
    assert {"upn", "dob", "postcode", "forename_bloom", "surname_bloom"} <= columns
    held: dict = {}
    totals: dict = {}
    for bundle in open_bundles(world_bundles, unit_keys()):
        tokens = bundle.tokens()
        source = source_of(bundle)
        totals[source] = totals.get(source, 0) + len(tokens)
        for column in columns:
            n = int(tokens[column].notna().sum()) if column in tokens else 0
            held[source, column] = held.get((source, column), 0) + n
    assert {(s, c): (held[s, c], totals[s]) for s, c in reported} == reported
    unlinkable = {u["source"]: u for u in identifiers["unlinkable"]}
    assert set(unlinkable) == set(totals)
    assert all(0 <= u["unlinkable"] <= u["records"] for u in unlinkable.values())


def test_best_weight_is_the_prior_plus_each_held_comparisons_strongest_level(linked_spine):
    import duckdb

    from linkage.match.explain import level_table, prior_weight
    from linkage.quality.profile import best_weights, unlinkables

    spine, _ = linked_spine
    con = duckdb.connect(str(spine), read_only=True)
    model = json.loads(con.execute("SELECT model FROM spine_version ORDER BY version DESC "
                                   "LIMIT 1").fetchall()[0][0])
    con.close()
    levels = level_table(model)
    strongest = levels[levels.gamma >= 0].sort_values("gamma").groupby("comparison").last()
    upn, dob = strongest.weight["upn"], strongest.weight["date_of_birth"]
    patterns = [{"source": "school_census", "present": [], "records": 7},
                {"source": "school_census", "present": ["upn"], "records": 3},
                {"source": "school_census", "present": ["dob", "sex_dob", "upn"],
                 "records": 5}]
    weights = best_weights(patterns, model)
    # a pupil record holding nothing fills no comparison but the LA's own id, where it falls
    # in the else level (a school record is no LA's case record): the prior and that is left
    other = levels[(levels.comparison == "la_record_id") & (levels.gamma == 0)].weight.item()
    prior = prior_weight(model) + other
    assert weights[0] == pytest.approx(prior)
    assert weights[1] == pytest.approx(prior + upn)
    assert weights[2] == pytest.approx(prior + upn + dob)   # DOB and sex agree: its top level
    threshold = weights[1] + 0.01   # between the UPN-only and the UPN-and-DOB records
    assert unlinkables(patterns, model, threshold) == [
        {"source": "school_census", "records": 15, "unlinkable": 10, "share": 0.6667}]


def test_an_old_spine_without_identifier_patterns_says_so(linked_spine, tmp_path):
    import duckdb

    spine, _ = linked_spine
    old = tmp_path / "old.duckdb"
    shutil.copy(spine, old)
    con = duckdb.connect(str(old))
    counts = json.loads(con.execute("SELECT counts FROM spine_version ORDER BY version DESC "
                                    "LIMIT 1").fetchall()[0][0])
    counts.pop("identifier_patterns")
    con.execute("UPDATE spine_version SET counts = ? WHERE version = (SELECT max(version) "
                "FROM spine_version)", [json.dumps(counts)])
    con.close()
    data = unit_report(old, tmp_path / "old.html")
    assert data["identifiers"] == {"recorded": False}
    html = (tmp_path / "old.html").read_text()
    section = html[html.index('<section id="identifiers">'):html.index('<section id="weights">')]
    assert "did not record which identifiers" in section and "<svg" not in section


def test_every_level_is_explained_and_an_unknown_comparison_gets_the_generic_sentence():
    from linkage.config import load_config
    from linkage.quality.page import level_sentence

    explanations = load_config("model_explanations.yaml")
    sector = {"comparison": "postcode", "level": "Exact match on postcode_sector",
              "kind": "agreement", "m": 0.001, "u": 0.004, "weight": -2.0}
    text = level_sentence(sector, explanations)
    assert text.startswith(explanations["comparisons"]["postcode"]["levels"][
        "Exact match on postcode_sector"])
    assert "4.0 times likelier to be two people than one (-2.00 bits)" in text
    unknown = {"comparison": "shoe_size", "level": "shoe size agrees", "kind": "agreement",
               "m": 0.5, "u": 0.125, "weight": 2.0}
    assert level_sentence(unknown, explanations).startswith(
        "The records agree (shoe size agrees)")
    assert "4.0 times likelier to be one person than two" in level_sentence(unknown,
                                                                            explanations)
    missing = {**unknown, "kind": "missing", "m": None, "u": None, "weight": 0.0}
    assert level_sentence(missing, explanations) == explanations["generic"]["missing"]


def test_the_page_template_ships_inside_the_package():
    from importlib.resources import files

    template = files("linkage.quality") / "templates" / "report.html.j2"
    assert template.is_file() and "<script" not in template.read_text()


def test_every_chart_specification_is_valid_vega_lite(linked_spine, world_dir, keyring,
                                                      monkeypatch):
    from linkage.pseudonymise.keys import load_key
    from linkage.quality import charts
    from linkage.quality.page import render
    from linkage.quality.report import report_data

    monkeypatch.setattr(charts, "VALIDATE", True)  # the report skips the check for speed
    spine, _ = linked_spine
    data = report_data(spine, world_dir / "truth", None, load_key(keyring.linkage_key))
    assert len(charts_of(render(data))) >= 10


def test_a_share_never_gives_away_a_small_count():
    from linkage.config import load_config
    from linkage.quality.page import _share_label

    rules = load_config("disclosure.yaml")
    assert _share_label(3, 1000, rules) == "x"          # 0.3% of 1,000 would tell 3
    assert _share_label(4, 5, rules) == "x"             # a whole under the minimum count
    assert _share_label(6, 1_000_000, rules) == "<1%"   # not a rounded 0%
    assert _share_label(0, 1000, rules) == "0%" and _share_label(500, 1000, rules) == "50%"
    assert _share_label(20, 731, rules, digits=1) == "2.7%"
