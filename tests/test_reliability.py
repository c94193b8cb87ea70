"""Faults and secrets: a killed link, a second operator, token frequencies, keys in output."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest
from typer.testing import CliRunner

from linkage.cli import app
from linkage.spine.lock import spine_lock
from synthetic.world import build_world, load_config, write_world
from tests.conftest import hash_world

runner = CliRunner()
MAX_TOP_SHARE = 0.10   # docs/privacy.md: no token value is this common in a bundle
LINK = [sys.executable, "-c", "from linkage.cli import run; run()", "link"]


@pytest.fixture(scope="module")
def small(tmp_path_factory, linkage_key):
    """A small world hashed, and a spine linked once (version 1)."""
    root = tmp_path_factory.mktemp("small")
    write_world(build_world(1500, 3, load_config()), root / "world")
    bundles = hash_world(root / "world", root / "bundles", linkage_key)
    spine = root / "spine.duckdb"
    done = subprocess.run([*LINK, "--spine", str(spine), "--seed", "1", *map(str, bundles)],
                          capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    return spine, bundles


def versions(spine: Path) -> list[tuple]:
    con = duckdb.connect(str(spine), read_only=True)
    try:
        return con.execute("SELECT version, (SELECT count(*) FROM person_record p WHERE "
                           "p.version = v.version) FROM spine_version v ORDER BY 1").fetchall()
    finally:
        con.close()


@pytest.mark.parametrize("stage, delay", [
    ("linking", 0.5), ("deriving family keys", 0), ("writing version", 0.05),
])
def test_a_link_killed_at_any_stage_leaves_the_spine_usable(small, tmp_path, stage, delay):
    original, bundles = small
    spine = tmp_path / "spine.duckdb"
    shutil.copy(original, spine)
    shutil.copy(original.with_name(original.name + ".model.json"),
                spine.with_name(spine.name + ".model.json"))
    before = versions(spine)
    temporary = tmp_path / "tmp"  # the run's temporary folder: nothing decrypted may stay
    temporary.mkdir()
    env = {**os.environ, "TMPDIR": str(temporary)}
    child = subprocess.Popen([*LINK, "--spine", str(spine), "--seed", "1", *map(str, bundles)],
                             stderr=subprocess.PIPE, text=True, env=env)
    for line in child.stderr:
        if stage in line:
            time.sleep(delay)
            child.send_signal(signal.SIGKILL)
            break
    child.wait(timeout=120)
    assert child.returncode == -signal.SIGKILL, f"{stage} never reached"
    after = versions(spine)
    assert after in (before, [*before, (before[-1][0] + 1, before[-1][1])])  # all or nothing
    json.loads(spine.with_name(spine.name + ".model.json").read_text())  # still whole
    rerun = subprocess.run([*LINK, "--spine", str(spine), "--seed", "1", *map(str, bundles)],
                           capture_output=True, text=True, check=False, env=env)
    assert rerun.returncode == 0, rerun.stderr
    assert versions(spine)[-1][1] == before[-1][1]
    # the linkage parts were opened in memory only: no file left, where it ran or beside it
    assert not [f for f in temporary.rglob("*") if f.is_file()]
    assert not [f for f in tmp_path.iterdir()
                if f.is_file() and not f.name.startswith(spine.name)]


def test_a_second_link_on_a_busy_spine_refuses_clearly(small, tmp_path):
    spine, bundles = small
    with spine_lock(spine):
        started = time.monotonic()
        result = runner.invoke(app, ["link", "--spine", str(spine), "--wait", "1",
                                     *map(str, bundles)])
        assert time.monotonic() - started >= 1
    assert result.exit_code == 1
    assert "another linkage run is updating this spine" in " ".join(result.output.split())
    assert f"process {os.getpid()}" in " ".join(result.output.split())


def test_the_spine_keeps_an_audit_log(small):
    spine, bundles = small
    con = duckdb.connect(str(spine), read_only=True)
    rows = con.execute("SELECT command, version, inputs, config_sha256, outputs FROM audit_log"
                       ).fetchall()
    con.close()
    command, version, inputs, config, outputs = rows[0]
    assert command == "link" and version == 1 and len(config) == 64
    assert {entry["bundle"] for entry in json.loads(inputs)} == {str(b) for b in bundles}
    assert json.loads(outputs)["records"] > 0


def test_no_token_value_is_common_enough_to_stand_out(world_bundles):
    for bundle in world_bundles:
        fields = json.loads((bundle / "manifest.json").read_text())["token_fields"]
        for name, facts in fields.items():
            assert facts["distinct"] <= facts["present"]
            if facts["present"] >= 300:
                assert facts["top_share"] <= MAX_TOP_SHARE, (bundle.name, name)


def test_a_known_key_never_reaches_any_output(world_dir, tmp_path, monkeypatch):
    """Force every kind of error with a known key and scan everything printed."""
    key_hex = "ab" * 32
    key = tmp_path / "known.key"
    key.write_text(key_hex + "\n")
    key.chmod(0o600)
    bad = tmp_path / "bad.csv"
    bad.write_text("agency_code,child_id,dob\nA,1,not a date\n")
    other_key = tmp_path / "other.key"
    runner.invoke(app, ["keygen", "--out", str(other_key)])
    one = tmp_path / "one"
    runner.invoke(app, ["hash", "--source", "cin", "--provider", "336", "--key", str(key),
                        "--out", str(one), str(next(world_dir.glob("providers/la_*/cin")))])
    two = tmp_path / "two"
    runner.invoke(app, ["hash", "--source", "cin", "--provider", "344", "--key",
                        str(other_key), "--out", str(two),
                        str(sorted(world_dir.glob("providers/la_*/cin"))[1])])
    monkeypatch.setenv("LINKAGE_KEY", key_hex)
    attempts = [
        ["hash", "--source", "asg-children", "--provider", "X", "--out", str(tmp_path / "b"),
         str(bad)],
        ["hash", "--source", "cin", "--provider", "1", "--key", str(key), "--out",
         str(tmp_path / "c"), str(tmp_path / "missing")],
        ["link", "--spine", str(tmp_path / "s.duckdb"), str(one), str(two)],
        ["link", "--spine", str(tmp_path / "s.duckdb"), "--model", str(key), str(one)],
        ["extract", "--spine", str(key), "--request", str(key), "--out", str(tmp_path / "e"),
         str(one)],
        ["hash", "--source", "cin", "--provider", "1", "--key", str(bad), "--out",
         str(tmp_path / "d"), str(bad)],
    ]
    for debug in ("", "1"):
        monkeypatch.setenv("LINKAGE_DEBUG", debug)
        for args in attempts:
            result = runner.invoke(app, args)
            text = result.output + repr(result.exception)
            assert key_hex not in text and key_hex.upper() not in text, args
            assert bytes.fromhex(key_hex).decode("latin-1") not in text
