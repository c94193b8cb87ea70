"""Configuration files shared by every party: found in the source tree or the installed package,
or in a site's own config folder, and validated before any reader sees them.

A site's folder (``linkage --config DIR``, or the ``LINKAGE_CONFIG_DIR`` environment variable)
overrides whole files: a file present there replaces the packaged file of the same name; files
absent there are the packaged ones. Every file, packaged or the site's, is checked against its
model in :mod:`linkage.config_models`; a problem is a :class:`ConfigError` naming the file and
the field.
"""

import copy
import difflib
import os
import typing
from pathlib import Path

if typing.TYPE_CHECKING:  # pydantic is imported only when a file is first validated
    from pydantic import BaseModel

_PACKAGE = Path(__file__).resolve().parent
_CANDIDATES = [_PACKAGE / "_configs", _PACKAGE.parent / "configs"]
ENV_VAR = "LINKAGE_CONFIG_DIR"

# set by the CLI's --config for this process; None: the environment variable decides
_site_override: Path | None = None
# (path, model) -> (file size and mtime, the file's mapping): read and validated once
_cache: dict[tuple[Path, type], tuple[tuple[int, int], dict]] = {}


class ConfigError(ValueError):
    """A configuration file or folder cannot be used: the message names it and the problem."""


def config_names() -> list[str]:
    """The configuration files this toolkit knows (and a site folder may hold)."""
    from linkage.config_models import MODELS

    return sorted(MODELS)


def packaged_path(name: str) -> Path:
    """The path of the packaged ``configs/<name>`` (a wheel carries it as ``linkage/_configs``)."""
    for folder in _CANDIDATES:
        if (folder / name).is_file():
            return folder / name
    raise FileNotFoundError(f"configs/{name} is missing from this installation")


def use_site_folder(folder: Path | None) -> list[Path]:
    """Make ``folder`` this process's site config folder (None: back to ``LINKAGE_CONFIG_DIR``)
    and validate every file in it now, so a bad site file stops a command before it starts.

    Returns the site files found. Raises :class:`ConfigError` for a missing folder, a file name
    the toolkit does not know, or a file that fails validation.
    """
    global _site_override
    _site_override = None
    if folder is None:
        return []
    files = site_files(Path(folder))
    _site_override = Path(folder)
    try:
        for path in files:
            load_config(path.name)
    except ConfigError:
        _site_override = None
        raise
    return files


def site_folder() -> Path | None:
    """The site config folder in force: ``--config`` if given, else ``LINKAGE_CONFIG_DIR``."""
    if _site_override is not None:
        return _site_override
    value = os.environ.get(ENV_VAR, "")
    return Path(value) if value else None


def site_files(folder: Path) -> list[Path]:
    """The configuration files in a site folder, after checking the folder and its names.

    Hidden files (a leading dot: editors' and version control's) are ignored; any other file
    must be one the toolkit knows, so that a misspelt name is not silently left unused.
    """
    if not folder.is_dir():
        what = "is not a folder" if folder.exists() else "no such folder"
        raise ConfigError(f"{folder}: {what} (the site config folder, from --config or "
                          f"{ENV_VAR})")
    known = config_names()
    files = []
    for entry in sorted(folder.iterdir()):
        if entry.name.startswith("."):
            continue
        if entry.name not in known or not entry.is_file():
            close = difflib.get_close_matches(entry.name, known, n=1)
            hint = f" (did you mean {close[0]}?)" if close else ""
            raise ConfigError(f"{entry}: not a configuration file this toolkit knows{hint}; a "
                              f"site config folder holds only {', '.join(known)}")
        files.append(entry)
    return files


def config_path(name: str) -> Path:
    """The file in force for ``configs/<name>``: the site folder's copy if it has one, else the
    packaged file."""
    folder = site_folder()
    if folder is not None:
        site = folder / name
        if site in site_files(folder):
            return site
    return packaged_path(name)


def load_config(name: str) -> dict:
    """The validated mapping of ``configs/<name>`` (or the site's copy), as the file has it.

    Read once per file (again if the file changes); each caller gets its own copy.
    """
    return read_config(config_path(name), name)


def read_config(path: Path, name: str | None = None) -> dict:
    """Read and validate the YAML file ``path`` as the configuration file ``name`` (by default
    the file's own name). Raises :class:`ConfigError` naming the file and field."""
    from linkage.config_models import MODELS

    name = name or path.name
    if name not in MODELS:
        raise ConfigError(f"{path}: not a configuration file this toolkit knows "
                          f"({', '.join(sorted(MODELS))})")
    model = MODELS[name]
    try:
        stat = path.stat()
    except OSError:
        raise ConfigError(f"{shown(path)}: cannot be read (no such file?)") from None
    key, signature = (path.resolve(), model), (stat.st_size, stat.st_mtime_ns)
    cached = _cache.get(key)
    if cached is None or cached[0] != signature:
        data = _parsed(path)
        validate(data, model, path)
        cached = _cache[key] = (signature, data)
    # readers may adjust what they are given; the cached mapping must stay as read
    return copy.deepcopy(cached[1])


def shown(path: Path) -> str:
    """``path`` as a message shows it: relative to the working folder when under it."""
    try:
        return str(Path(path).resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def _parsed(path: Path) -> dict:
    """The file's YAML mapping; ConfigError if it is unreadable, not UTF-8, not YAML or beyond
    the limits of :mod:`linkage.bounded_yaml`."""
    from linkage.bounded_yaml import YamlProblem, read_yaml

    try:
        data = read_yaml(path)
    except YamlProblem as problem:
        raise ConfigError(f"{shown(path)}: {problem}") from None
    if not isinstance(data, dict):
        found = "nothing" if data is None else f"a {type(data).__name__}"
        raise ConfigError(f"{shown(path)}: must be a mapping of keys to values (found {found})")
    return data


def validate(data: dict, model: "type[BaseModel]", path: Path) -> None:
    """Check ``data`` against ``model``; ConfigError naming ``path`` and the fields at fault."""
    from pydantic import ValidationError

    from linkage.config_models import describe_errors

    try:
        model.model_validate(data)
    except ValidationError as problem:
        raise ConfigError(f"{shown(path)}: {describe_errors(problem, model)}") from None
