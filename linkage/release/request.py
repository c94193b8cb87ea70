"""A researcher's extract request (YAML), checked against configs/release.yaml.

Every problem names the request file and the field; identifiers are refused with the reason.
"""

from dataclasses import dataclass
from pathlib import Path

import yaml

from linkage.config import load_config
from linkage.pseudonymise.bundle import linkage_schema

KNOWN_KEYS = {"project", "cohort", "period", "datasets", "family_keys", "tables"}


class RequestError(Exception):
    """The request cannot be served; the message names the file and the field."""


@dataclass
class Request:
    project: str
    cohort: str
    period: int
    datasets: dict[str, list[str]]   # dataset -> fields requested
    family_keys: bool
    raw: dict                        # as written, for the manifest


def load_request(path: Path, catalogue: dict | None = None) -> Request:
    """Read and check a request file."""
    catalogue = catalogue or load_config("release.yaml")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError:
        raise RequestError(f"{path}: cannot be read") from None
    except yaml.YAMLError as problem:
        line = getattr(getattr(problem, "problem_mark", None), "line", None)
        where = f" (line {line + 1})" if line is not None else ""
        raise RequestError(f"{path}: is not valid YAML{where}") from None
    if not isinstance(raw, dict):
        raise RequestError(f"{path}: must be a mapping of project, cohort, period, datasets")
    return _checked(path, raw, catalogue)


def _checked(path: Path, raw: dict, catalogue: dict) -> Request:
    def fail(field: str, problem: str):
        raise RequestError(f"{path}: {field}: {problem}")

    unknown = sorted(set(raw) - KNOWN_KEYS)
    if unknown:
        fail(unknown[0], f"unknown key (known: {', '.join(sorted(KNOWN_KEYS))})")
    project = raw.get("project")
    if not isinstance(project, str) or not project.strip() or not project.isprintable():
        fail("project", "required: the project's id, such as P0001")
    cohort = raw.get("cohort")
    if cohort not in catalogue["cohorts"]:
        fail("cohort", f"{cohort!r} is not a cohort ({', '.join(catalogue['cohorts'])})")
    period = raw.get("period")
    if not isinstance(period, int) or not 1990 <= period <= 2100:
        fail("period", "required: the collection year ending 31 March, such as 2024")
    datasets = raw.get("datasets") or {}
    if not isinstance(datasets, dict):
        fail("datasets", "must map each dataset to a list of fields")
    checked = {}
    for name, fields in datasets.items():
        checked[name] = _checked_fields(name, fields, catalogue, fail)
    family_keys = raw.get("family_keys", False)
    if not isinstance(family_keys, bool):
        fail("family_keys", "must be true or false")
    return Request(project.strip(), cohort, period, checked, family_keys, raw)


def _checked_fields(name, fields, catalogue: dict, fail) -> list[str]:
    if name not in catalogue["datasets"]:
        fail(f"datasets.{name}", f"unknown dataset ({', '.join(catalogue['datasets'])})")
    if not isinstance(fields, list) or not all(isinstance(f, str) for f in fields):
        fail(f"datasets.{name}", "must be a list of field names")
    forbidden = {k.lower(): v for k, v in catalogue["forbidden"].items()}
    tokens = {t.lower() for t in linkage_schema()["tokens"]}
    known = catalogue["datasets"][name]["fields"]
    for field in fields:
        if field.lower() in forbidden:
            fail(f"datasets.{name}.{field}", f"forbidden: {forbidden[field.lower()]}")
        if field.lower() in tokens or field.lower().endswith(("_bloom", "_token")):
            fail(f"datasets.{name}.{field}", "forbidden: a linkage token")
        if field not in known:
            fail(f"datasets.{name}.{field}", f"unknown field (known: {', '.join(known)})")
    return list(dict.fromkeys(fields))
