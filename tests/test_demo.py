"""`linkage demo`: the whole flow on a small world, and a leak scan of what it shows."""

import json

import pytest
from typer.testing import CliRunner

from linkage.cli import app
from tests.identifiers import world_identifiers
from tests.test_report import token_values

runner = CliRunner()


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo") / "run"
    result = runner.invoke(app, ["demo", "--out", str(out), "--people", "3000", "--seed", "5",
                                 "--json"])
    assert result.exit_code == 0, result.output
    return out, json.loads(result.stdout)


def test_the_demo_runs_every_stage_and_reports_accuracy(demo):
    out, summary = demo
    for name in ("world", "bundles", "spine", "evaluation", "report", "extract"):
        assert (out / summary["paths"][name].split(str(out) + "/")[1]).exists(), name
    assert summary["records"] > 5000 and summary["persons"] < summary["records"]
    assert summary["pairwise"]["precision"] > 0.99 and summary["pairwise"]["recall"] > 0.95
    assert summary["extract_files"] >= 8
    assert json.loads((out / "evaluation.json").read_text())["pairwise"] == summary["pairwise"]


def test_the_demos_report_holds_no_identifier_or_token(demo):
    out, _ = demo
    text = (out / "report.html").read_text()
    words = set(text.replace("<", " ").replace(">", " ").split())
    identifiers, dobs = world_identifiers(out / "world")
    tokens = token_values(sorted((out / "bundles").iterdir()))
    assert len(identifiers) > 500 and len(tokens) > 500
    assert not [v for v in identifiers | dobs | tokens if v in words or f">{v}<" in text]
    assert str((out / "keys" / "linkage.key").read_text().strip()) not in text


def test_a_quiet_demo_prints_only_the_reports_path(tmp_path):
    result = runner.invoke(app, ["demo", "--out", str(tmp_path / "d"), "--people", "1000",
                                 "--quiet"])
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == str(tmp_path / "d" / "report.html")
    again = runner.invoke(app, ["demo", "--out", str(tmp_path / "d"), "--quiet"])
    assert again.exit_code == 1 and "not empty" in again.output
