"""Shared fixtures: one small synthetic world, generated once per test session."""

import os

# a wide console, set before rich reads it: messages naming long temporary paths (a worker's
# own folder under pytest-xdist) are then not broken inside a word
os.environ["COLUMNS"] = "400"

from pathlib import Path

import pandas as pd
import pytest
from hypothesis import settings

from synthetic.world import build_world, load_config, write_world

# property tests check behaviour, not speed: on a busy two-core machine an example can take
# longer than hypothesis's default 200 ms deadline, which would fail a correct test
settings.register_profile("linkage", deadline=None)
settings.load_profile("linkage")

WORLD_PEOPLE = 6000
WORLD_SEED = 11


@pytest.fixture(scope="session")
def world_dir(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("world")
    world = build_world(WORLD_PEOPLE, WORLD_SEED, load_config())
    write_world(world, out)
    return out


@pytest.fixture(scope="session")
def truth_records(world_dir) -> pd.DataFrame:
    return pd.read_parquet(world_dir / "truth" / "records.parquet")


@pytest.fixture(scope="session")
def truth_persons(world_dir) -> pd.DataFrame:
    return pd.read_parquet(world_dir / "truth" / "persons.parquet")


def hash_world(world: Path, out: Path, key_file: Path) -> list[Path]:
    """Hash every provider's files of a synthetic world as that provider would (the CLI): its
    built-in sources. The world's attainment files (a generic source) are left out, so that the
    session spine stays the size the other tests expect and test_generic's own attainment
    dataset is the only one; test_delivery and test_readme link them."""
    from typer.testing import CliRunner

    from linkage.cli import app
    from linkage.pipelines.delivery import provider_jobs

    runner = CliRunner()
    bundles = []
    for kind, code, paths, name in provider_jobs(world / "providers"):
        result = runner.invoke(app, ["hash", "--source", kind, "--provider", code, "--key",
                                     str(key_file), "--out", str(out / name),
                                     *map(str, paths)])
        assert result.exit_code == 0, result.output
        bundles.append(out / name)
    return bundles


@pytest.fixture(scope="session")
def keyring(tmp_path_factory):
    """Every role's keys for the test session (a rehearsal: one folder holds them all)."""
    from linkage.pseudonymise.roles import Keyring

    return Keyring.create(tmp_path_factory.mktemp("keys") / "ring")


@pytest.fixture(scope="session", autouse=True)
def role_keys_in_environment(keyring):
    """Commands find the signing, recipients' and register keys through the environment, as
    an operator's shell would set them; the linkage key is given with --key where needed."""
    import os

    saved = dict(os.environ)
    os.environ.update({k: v for k, v in keyring.env().items() if k != "LINKAGE_KEY"})
    yield
    os.environ.clear()
    os.environ.update(saved)


@pytest.fixture(scope="session")
def linkage_key(keyring) -> Path:
    return keyring.linkage_key


@pytest.fixture(scope="session")
def world_bundles(world_dir, linkage_key, tmp_path_factory) -> list[Path]:
    return hash_world(world_dir, tmp_path_factory.mktemp("bundles"), linkage_key)


@pytest.fixture(scope="session")
def linked_spine(world_bundles, tmp_path_factory) -> tuple[Path, dict]:
    """The world's bundles linked into a spine by the CLI (seed 1): the spine and summary."""
    import json

    from typer.testing import CliRunner

    from linkage.cli import app

    spine = tmp_path_factory.mktemp("spine") / "spine.duckdb"
    result = CliRunner().invoke(app, ["link", "--spine", str(spine), "--seed", "1", "--json",
                                      *map(str, world_bundles)])
    assert result.exit_code == 0, result.output
    return spine, json.loads(result.stdout)
