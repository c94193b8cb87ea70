"""The `linkage synth` command: determinism, summary output, and clean errors."""

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import yaml
from typer.testing import CliRunner

from linkage.cli import app
from tests.output import said

runner = CliRunner()


def tree_digest(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def synth(*args: str):
    return runner.invoke(app, ["synth", *args])


def test_same_seed_gives_byte_identical_files(tmp_path):
    first, second = tmp_path / "a", tmp_path / "b"
    assert synth("--people", "1500", "--seed", "3", "--out", str(first), "--quiet").exit_code == 0
    assert synth("--people", "1500", "--seed", "3", "--out", str(second), "--quiet").exit_code == 0
    digest = tree_digest(first)
    assert len(digest) > 20
    # the care events' files too: outcome tables, plans, episodes and UASC truth
    assert any(name.endswith("/oc2.csv") for name in digest)
    assert {"truth/cpp_plans.parquet", "truth/cla_episodes.parquet", "truth/uasc.parquet",
            "truth/outcomes_oc3.parquet"} <= set(digest)
    assert digest == tree_digest(second)


def test_another_seed_gives_another_world(tmp_path):
    synth("--people", "1500", "--seed", "3", "--out", str(tmp_path / "a"), "--quiet")
    synth("--people", "1500", "--seed", "4", "--out", str(tmp_path / "b"), "--quiet")
    a = tree_digest(tmp_path / "a")
    b = tree_digest(tmp_path / "b")
    assert a["truth/persons.parquet"] != b["truth/persons.parquet"]


def test_json_summary_on_stdout(tmp_path):
    result = synth("--people", "1200", "--seed", "5", "--out", str(tmp_path / "w"), "--json")
    assert result.exit_code == 0
    summary = json.loads(result.stdout)
    assert summary["people"] == 1200
    assert summary["persons"]["children"] == 1200
    assert summary == json.loads((tmp_path / "w" / "world.json").read_text())


def test_config_file_changes_the_world(tmp_path):
    config = yaml.safe_load(Path("configs/synthetic.yaml").read_text())
    config["calendar"]["years"] = 2
    path = tmp_path / "two_years.yaml"
    path.write_text(yaml.safe_dump(config))
    result = synth("--people", "1200", "--out", str(tmp_path / "w"), "--config", str(path),
                   "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["collection_years"] == [2020, 2021]
    assert len(list((tmp_path / "w/providers/dfe/school_census").iterdir())) == 2


def test_missing_config_is_a_clean_error(tmp_path):
    result = synth("--out", str(tmp_path / "w"), "--config", str(tmp_path / "nope.yaml"))
    assert result.exit_code == 1
    assert "nope.yaml" in said(result)
    assert "Traceback" not in result.output


def test_refuses_to_write_into_an_unrelated_folder(tmp_path):
    (tmp_path / "precious.txt").write_text("keep me")
    result = synth("--people", "1200", "--out", str(tmp_path))
    assert result.exit_code == 1
    assert (tmp_path / "precious.txt").read_text() == "keep me"


def test_console_script_prints_help():
    done = subprocess.run([sys.executable, "-m", "linkage.cli", "--help"], capture_output=True,
                          text=True, check=False)
    assert done.returncode == 0
    assert "synth" in done.stdout
