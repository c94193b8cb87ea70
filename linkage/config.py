"""Configuration files shared by every party: found in the source tree or the installed package."""

from pathlib import Path

import yaml

_PACKAGE = Path(__file__).resolve().parent
_CANDIDATES = [_PACKAGE / "_configs", _PACKAGE.parent / "configs"]


def config_path(name: str) -> Path:
    """The path of ``configs/<name>`` (a wheel carries it as ``linkage/_configs``)."""
    for folder in _CANDIDATES:
        if (folder / name).is_file():
            return folder / name
    raise FileNotFoundError(f"configs/{name} is missing from this installation")


def load_config(name: str) -> dict:
    with open(config_path(name), encoding="utf-8") as handle:
        return yaml.safe_load(handle)
