"""Duplicate and blank record ids: flagged, made unique deterministically, never a failed link."""

import json
from pathlib import Path

import pandas as pd
import yaml
from typer.testing import CliRunner

from linkage.cli import app
from linkage.sources import read_source

runner = CliRunner()


def clinic_file(folder: Path) -> tuple[Path, Path]:
    """Six records: id a twice (a child entered twice), two blank ids, b and c once."""
    folder.mkdir(parents=True, exist_ok=True)
    csv = folder / "clinic.csv"
    pd.DataFrame({
        "id": ["a", "b", "a", "", "c", " "],
        "given": ["amy", "ben", "amy", "cat", "dan", "eve"],
        "family": ["hall", "wood", "hall", "khan", "shaw", "reid"],
        "born": ["2015-01-02", "2014-05-06", "2015-01-02", "2013-07-08", "2016-03-04",
                 "2012-09-10"],
        "town": ["leeds", "york", "leeds", "hull", "bath", "ely"]}).to_csv(csv, index=False)
    mapping = folder / "clinic.yaml"
    mapping.write_text(yaml.safe_dump({"record_id": "id", "provider": "clinic", "fields": [
        {"name": "forename", "column": "given", "kind": "name"},
        {"name": "surname", "column": "family", "kind": "name"},
        {"name": "dob", "column": "born", "kind": "date"},
        {"name": "town", "column": "town", "kind": "exact"}]}))
    return csv, mapping


def test_repeated_and_blank_ids_are_kept_flagged_and_made_unique(tmp_path):
    csv, mapping = clinic_file(tmp_path)
    data = read_source("generic", [csv], mapping, "clinic")
    records = data.records
    assert len(records) == 6
    assert records.record_id.tolist() == ["a", "b", "a~2", "~0:5", "c", "~0:7"]
    assert ["record_id_duplicate" in f for f in records["flags"]] == [True, False, True, False,
                                                                  False, False]
    assert ["record_id_missing" in f for f in records["flags"]] == [False, False, False, True,
                                                                False, True]
    # the same file gives the same ids, every time
    again = read_source("generic", [csv], mapping, "clinic").records
    assert again.record_id.tolist() == records.record_id.tolist()


def test_a_return_with_repeated_and_blank_ids_links(tmp_path, linkage_key):
    csv, mapping = clinic_file(tmp_path)
    checked = runner.invoke(app, ["check", "--source", "generic", "--mapping", str(mapping),
                                  "--provider", "clinic", str(csv)])
    assert checked.exit_code == 0, checked.output
    assert "record_id_duplicate" in checked.output
    bundle = tmp_path / "bundle"
    hashed = runner.invoke(app, ["hash", "--source", "generic", "--mapping", str(mapping),
                                 "--provider", "clinic", "--key", str(linkage_key), "--out",
                                 str(bundle), "--json", "--quiet", str(csv)])
    assert hashed.exit_code == 0, hashed.output
    assert json.loads(hashed.stdout)["rows"]["out"] == 6
    linked = runner.invoke(app, ["link", "--spine", str(tmp_path / "s.duckdb"), "--json",
                                 "--seed", "1", str(bundle)])
    assert linked.exit_code == 0, linked.output
    assert json.loads(linked.stdout.strip().splitlines()[-1])["records"] == 6
