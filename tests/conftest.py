"""Shared fixtures: one small synthetic world, generated once per test session."""

from pathlib import Path

import pandas as pd
import pytest

from synthetic.world import build_world, load_config, write_world

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
