"""`linkage review`: the page of pairs near the threshold, private by design, and a review
round in headless Chromium whose decisions change the next link as decided."""

import itertools
import json
import re
import shutil
import time

import duckdb
import pytest
from typer.testing import CliRunner

from linkage.cli import app
from tests.browser import headless_chromium
from tests.identifiers import public_label_words, world_identifiers
from tests.output import said
from tests.test_report import token_values
from tests.test_review_decisions import persons, relink

runner = CliRunner()
REFERENCE = re.compile(r' data-record-[lr]="[^"]*"')  # the hidden reference a decision needs


def write_page(spine, out, *extra, code=0):
    result = runner.invoke(app, ["review", "--spine", str(spine), "--out", str(out), "--json",
                                 *map(str, extra)])
    assert result.exit_code == code, result.output
    return json.loads(result.stdout) if code == 0 else said(result)


@pytest.fixture(scope="module")
def spine(linked_spine, tmp_path_factory):
    """A copy of the session spine (relinked here, never the original)."""
    copy = tmp_path_factory.mktemp("review_page") / "spine.duckdb"
    shutil.copy(linked_spine[0], copy)
    return copy


@pytest.fixture(scope="module")
def page(spine, tmp_path_factory):
    out = tmp_path_factory.mktemp("page") / "review.html"
    return out, write_page(spine, out)


def test_the_page_shows_pairs_near_the_threshold_closest_first(page, spine):
    out, summary = page
    html = out.read_text()
    assert summary["shown"]["near_threshold"] > 10 and summary["threshold_match_weight"] == 3.17
    weights = [float(w) for w in re.findall(r"match weight (-?[\d.]+) bits", html)]
    near = weights[:summary["shown"]["near_threshold"]]
    gaps = [abs(w - 3.17) for w in near]
    assert all(g <= 2.0 + 0.005 for g in gaps)
    # closest first (weights are shown to 2 places, so two may swap by a hundredth)
    assert all(b >= a - 0.0101 for a, b in itertools.pairwise(gaps))
    assert html.count('<article class="pair"') == sum(summary["shown"].values())
    assert "in two persons now" in html and "in one person now" in html
    assert "DOB and sex agree" in html and "prior" in html and "in a sibling group of" in html
    assert "<script" in html and "http" not in html and "src=" not in html   # offline
    # the same spine gives the same bytes
    again = out.with_name("again.html")
    assert write_page(spine, again)["pairs_sha256"] == summary["pairs_sha256"]
    assert again.read_bytes() == out.read_bytes()
    # a narrower window and a limit
    narrow = write_page(spine, out.with_name("narrow.html"), "--within", "0.5", "--limit", "3")
    assert narrow["shown"]["near_threshold"] == 3
    assert narrow["found"]["near_threshold"] < summary["found"]["near_threshold"]


def test_each_pattern_sums_to_the_pairs_match_weight(spine):
    from linkage.review.pairs import review_pairs

    con = duckdb.connect(str(spine), read_only=True)
    try:
        review = review_pairs(con, str(spine), 2.0, 50)
    finally:
        con.close()
    assert review.pairs
    for pair in review.pairs:
        pattern = pair["pattern"]
        total = pattern["prior_weight"] + sum(s["weight"] for s in pattern["comparisons"])
        assert total == pytest.approx(pattern["splink_match_weight"], abs=1e-4)
    kinds = {pair["kind"] for pair in review.pairs}
    assert kinds == {"near the threshold", "a person whose records disagree"}


def test_no_identifier_token_or_key_is_shown(page, spine, world_dir, world_bundles):
    out, _ = page
    html = out.read_text()
    shown = REFERENCE.sub("", html)   # what a reader sees: the page without its references
    assert len(shown) < len(html)
    words = set(shown.replace("<", " ").replace(">", " ").replace('"', " ").split())
    identifiers, dobs = world_identifiers(world_dir)
    con = duckdb.connect(str(spine), read_only=True)
    try:
        pseudonyms = {r[0] for r in con.execute("SELECT DISTINCT record_id FROM person_record"
                                                ).fetchall()}
        keys = {r[0] for r in con.execute("SELECT person_key FROM person UNION SELECT "
                                          "sibling_group_key FROM sibling_group UNION SELECT "
                                          "household_key FROM adopter_household").fetchall()}
    finally:
        con.close()
    labels = public_label_words()
    leaked = [v for v in identifiers | dobs | token_values(world_bundles) | pseudonyms | keys
              if v not in labels and (v in words or v in shown)]
    assert not leaked


def test_review_refusals(spine, tmp_path):
    out = tmp_path / "page.html"
    assert "--within 0.0: must be more than 0" in write_page(spine, out, "--within", "0",
                                                             code=1)
    bare = tmp_path / "bare.duckdb"
    shutil.copy(spine, bare)
    con = duckdb.connect(str(bare))
    con.execute("DROP TABLE scored_pair")
    con.close()
    output = write_page(bare, out, code=1)
    assert f"{bare}: holds no scored pairs of its latest version" in output
    site = tmp_path / "site"
    site.mkdir()
    (site / "review.yaml").write_text("within_bits: 2\nlimit: 0\ndisagreeing_comparisons: []\n")
    result = runner.invoke(app, ["--config", str(site), "review", "--spine", str(spine),
                                 "--out", str(out)])
    assert result.exit_code == 1 and "review.yaml" in said(result) and "limit" in said(result)
    assert not out.exists()


def browser_with_downloads(tmp_path):
    """Debian's headless Chromium, saving downloads to tmp_path/downloads unasked."""
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    return headless_chromium(tmp_path, downloads), downloads


def downloaded(folder, wait=20.0):
    """The one file downloaded into ``folder``, once Chromium has finished writing it."""
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        done = [p for p in folder.iterdir() if not p.name.endswith(".crdownload")]
        if done:
            return done[0]
        time.sleep(0.2)
    raise AssertionError("no download")


def test_a_review_round_in_chromium_changes_the_next_link_as_decided(page, spine, tmp_path):
    from selenium.webdriver.common.by import By

    out, summary = page
    browser, downloads = browser_with_downloads(tmp_path)
    try:
        browser.get(out.as_uri())
        pairs = browser.find_elements(By.CSS_SELECTOR, "article.pair")
        assert len(pairs) == sum(summary["shown"].values())
        apart = next(p for p in pairs if "in two persons now" in p.text)
        together = next(p for p in pairs if "in one person now" in p.text)
        skipped = next(p for p in pairs if p not in (apart, together))
        for pair, label in ((apart, "Match"), (together, "Non-match"), (skipped, "Skip")):
            button = pair.find_element(By.XPATH, f".//button[text()='{label}']")
            browser.execute_script("arguments[0].scrollIntoView({block: 'center'})", button)
            button.click()
        counter = browser.find_element(By.ID, "counter").text
        assert counter.startswith(f"2 of {len(pairs)} decided (1 match, 1 non-match, 1 skip")
        heads = [p.find_element(By.CSS_SELECTOR, ".head").text for p in (apart, together)]
        joined = (apart.get_attribute("data-record-l"), apart.get_attribute("data-record-r"))
        split = (together.get_attribute("data-record-l"),
                 together.get_attribute("data-record-r"))
        browser.find_element(By.ID, "save").click()
        saved = downloaded(downloads)
        assert not [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
    finally:
        browser.quit()
    decisions = json.loads(saved.read_text())
    assert saved.name == "decisions-v1.json" and decisions["spine_version"] == 1
    assert decisions["pairs_sha256"] == summary["pairs_sha256"]
    assert decisions["decisions"] == [
        {"record_l": joined[0], "record_r": joined[1], "decision": "match"},
        {"record_l": split[0], "record_r": split[1], "decision": "non-match"},
    ] or decisions["decisions"] == [
        {"record_l": split[0], "record_r": split[1], "decision": "non-match"},
        {"record_l": joined[0], "record_r": joined[1], "decision": "match"}]

    before = persons(spine)
    assert before[joined[0]] != before[joined[1]] and before[split[0]] == before[split[1]]
    result = relink(spine, "--decisions", saved)
    after = persons(spine)
    assert after[joined[0]] == after[joined[1]]      # decided a match: now one person
    assert after[split[0]] != after[split[1]]        # decided a non-match: now two
    assert result["decisions"]["match"] == 1 and result["decisions"]["non_match"] == 1
    touched = set(before[list(joined + split)])
    others = before.index[~before.isin(touched)]
    assert (after[others] == before[others]).all()   # nobody else moved
    # the next page leaves the decided pairs out: the spine applies them at every link
    second = write_page(spine, tmp_path / "second.html")
    html = (tmp_path / "second.html").read_text()
    assert second["version"] == 2 and second["found"]["already_decided"] == 2
    for pair in (joined, split):
        assert f'data-record-l="{pair[0]}" data-record-r="{pair[1]}"' not in html
    # explain says why: the reviewer's decision, whatever the evidence
    for pair, outcome in ((joined, "one person: a reviewer decided match"),
                          (split, "kept apart: a reviewer decided non-match")):
        explained = CliRunner().invoke(app, ["explain", "--spine", str(spine), "--json",
                                             *pair])
        assert explained.exit_code == 0, explained.output
        (entry,) = json.loads(explained.stdout)["pairs"]
        assert entry["verdict"].startswith(outcome)
    sizes = after.value_counts()
    print(json.dumps({  # the round's figures, for the record (pytest -s shows them)
        "pairs": len(pairs), "decided": heads,
        "merged_from_records": [int((before == before[r]).sum()) for r in joined],
        "merged_into_records": int(sizes[after[joined[0]]]),
        "split_from_records": int((before == before[split[0]]).sum()),
        "split_into_records": [int(sizes[after[r]]) for r in split],
        "key_changes": result["key_changes"], "persons_before": int(before.nunique()),
        "persons_after": int(after.nunique()), "records": len(after)}))
