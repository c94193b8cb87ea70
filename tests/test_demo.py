"""`linkage demo`: the whole flow on a small world, and a leak scan of what it shows."""

import json

import pytest
from typer.testing import CliRunner

from linkage.cli import app
from tests.identifiers import public_label_words, world_identifiers
from tests.output import said
from tests.test_report import token_values

runner = CliRunner()
WRITTEN = ["world", "bundles", "spine.duckdb", "evaluation.json", "report.html",
           "extracts/DEMO01/manifest.json", "request.yaml"]


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo") / "run"
    result = runner.invoke(app, ["demo", "--out", str(out), "--people", "3000", "--seed", "5",
                                 "--quiet"])
    assert result.exit_code == 0, result.output
    return out, result.stdout


def test_the_demo_runs_every_stage_and_prints_the_reports_path(demo):
    out, printed = demo
    assert printed.strip() == str(out / "report.html")  # --quiet: the path alone
    for name in WRITTEN:
        assert (out / name).exists(), name
    scores = json.loads((out / "evaluation.json").read_text())
    assert scores["pairwise"]["precision"] > 0.99 and scores["pairwise"]["recall"] > 0.95
    assert scores["child_adopter"]["precision"] >= 0.9
    assert len(list((out / "extracts" / "DEMO01").glob("*.parquet"))) >= 5
    again = runner.invoke(app, ["demo", "--out", str(out), "--quiet"])
    assert again.exit_code == 1 and "not empty" in said(again)


def test_the_demos_report_holds_no_identifier_or_token(demo):
    out, _ = demo
    text = (out / "report.html").read_text()
    words = set(text.replace("<", " ").replace(">", " ").split())
    identifiers, dobs = world_identifiers(out / "world")
    from linkage.pseudonymise.roles import Keyring

    tokens = token_values(sorted((out / "bundles").iterdir()), Keyring(out / "keys").for_unit())
    assert len(identifiers) > 500 and len(tokens) > 500
    labels = public_label_words()
    assert not [v for v in identifiers | dobs | tokens
                if v not in labels and (v in words or f">{v}<" in text)]
    assert str((out / "keys" / "linkage.key").read_text().strip()) not in text
