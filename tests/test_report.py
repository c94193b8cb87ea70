"""`linkage report`: sections, disclosure, no identifier or token, and a real browser."""

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from linkage.cli import app
from linkage.pseudonymise.bundle import linkage_schema
from tests.identifiers import public_label_words, world_identifiers

runner = CliRunner()
SECTIONS = ["summary", "sources", "weights", "model", "unlinked", "combinations", "bias",
            "families", "changes", "accuracy"]


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
    assert "by the true person's group" in html and "<th>ethnic group</th>" in html
    assert "95% interval" in html and "WBRI" not in html   # labels, never codes
    assert "<th></th>" not in html   # every table's header names its columns
    spine, _ = linked_spine
    data = json.loads(runner.invoke(app, ["report", "--spine", str(spine), "--out",
                                          str(report.with_name("again.html")), "--json"]).stdout)
    # the linkage unit's own report: no breakdown it cannot compute without content
    assert set(data["groups"]) == {"la", "moved_la"} and not data["groups_by_custodian"]
    assert "ethnicity" in html  # the custodian's report (the fixture) has them
    # changes since the last version: another test may have relinked the session spine
    changes = data["changes"]
    if changes["previous_version"] is None:
        assert data["version"] == 1
    else:  # relinking the same bundles keeps every key (test_link)
        assert changes["records_before"] == data["records"] and changes["kinds"] == []
    small = [u for u in data["unlinked"] if 0 < u["records"] < 6]
    assert small, "the world should have some small counts to hide"
    for row in small:  # a small count is never printed
        assert f"<td>{row['source']}</td><td>{row['reason']}</td><td>c</td>" in html


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
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By

    chromium, driver_path = shutil.which("chromium"), shutil.which("chromedriver")
    assert chromium and driver_path, "install Debian's chromium and chromium-driver (.ci/run)"
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage",
                 f"--user-data-dir={tmp_path / 'profile'}", "--window-size=1100,1400"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    browser = webdriver.Chrome(service=Service(driver_path), options=options)
    try:
        browser.get(report.as_uri())
        for section in SECTIONS:
            element = browser.find_element(By.ID, section)
            assert element.is_displayed() and element.size["height"] > 20, section
        charts = browser.find_elements(By.CSS_SELECTOR, "svg.chart")
        assert len(charts) >= 4
        for chart in charts:
            assert chart.size["width"] > 100 and chart.size["height"] > 20
        bars = browser.find_elements(By.CSS_SELECTOR, "svg.chart rect.bar")
        assert sum(1 for bar in bars if float(bar.get_attribute("width") or 0) > 0) > 10
        errors = [entry for entry in browser.get_log("browser") if entry["level"] == "SEVERE"]
        assert not errors
        shot = tmp_path / "report.png"
        assert browser.save_screenshot(str(shot)) and shot.stat().st_size > 10_000
    finally:
        browser.quit()


def test_groups_read_in_order_with_intervals_and_a_gap_only_beyond_chance():
    from linkage.quality.report import _gap, _match_rates, wilson_interval

    low, high = wilson_interval(15, 30)
    assert (round(low, 4), round(high, 4)) == (0.3315, 0.6685)   # by hand: 0.5 +- 0.1685
    records = pd.DataFrame({
        "person_key": [f"p{i}" for i in range(200)], "source": "ssda903",
        "age_band": ["10-15"] * 50 + ["5-9"] * 50 + ["1-4"] * 49 + ["under 1"] + ["18+"] * 50,
        "ethnicity": ["WBRI"] * 100 + ["BAFR"] * 60 + ["CHNE"] * 40,
        "cross_source": [True] * 45 + [False] * 5 + [True] * 25 + [False] * 125})
    bands = _match_rates(records, "age_band")
    assert [g["group"] for g in bands] == ["under 1", "1-4", "5-9", "10-15", "18+"]
    ethnic = _match_rates(records, "ethnicity")
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
