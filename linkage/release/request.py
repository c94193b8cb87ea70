"""A researcher's extract request (YAML), checked against configs/release.yaml.

Every problem names the request file and the field; identifiers are refused with the reason.
A dataset the catalogue does not list is a generic dataset (outcome data such as attainment or
health, hashed through a mapping): its name and fields are checked once the bundles are open
(``check_generic``), against the dataset names and field kinds their manifests declare.
"""

import re
from dataclasses import dataclass, field
from pathlib import Path

from linkage.bounded_yaml import YamlProblem, read_yaml
from linkage.config import load_config
from linkage.config_models import Disclosure, name_problem
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
    path: str = ""                   # the request file, named by problems found later
    generic: list[str] = field(default_factory=list)  # datasets the catalogue does not list


def load_request(path: Path, catalogue: dict | None = None) -> Request:
    """Read and check a request file."""
    catalogue = catalogue or load_config("release.yaml")
    if path.is_dir():
        raise RequestError(f"{path}: is a folder; give the request file (YAML)")
    try:
        raw = read_yaml(path)
    except YamlProblem as problem:
        raise RequestError(f"{path}: {problem}") from None
    if raw is None:
        raise RequestError(f"{path}: is empty; a request is a mapping of project, cohort, "
                           "period, datasets")
    if not isinstance(raw, dict):
        raise RequestError(f"{path}: must be a mapping of project, cohort, period, datasets "
                           f"(found {_kind(raw)})")
    return _checked(path, raw, catalogue)


def _kind(value: object) -> str:
    """What a YAML document holds, in words: a list, text, a number."""
    return {list: "a list", str: "text", int: "a number", float: "a number",
            bool: "true or false"}.get(type(value), type(value).__name__)


def _checked(path: Path, raw: dict, catalogue: dict) -> Request:
    def fail(field: str, problem: str):
        # a field is named as the request spells it, which may be anything, of any length
        raise RequestError(f"{path}: {_shortened(field)}: {problem}")

    unknown = sorted(str(key) for key in set(raw) - KNOWN_KEYS)
    rules = sorted(set(unknown) & set(Disclosure.model_fields))
    if rules:
        fail(rules[0], "a request cannot change disclosure control: configs/disclosure.yaml "
             "sets it for every extract")
    if unknown:
        fail(unknown[0], f"unknown key (known: {', '.join(sorted(KNOWN_KEYS))})")
    project = raw.get("project")
    if project is None:
        fail("project", "required: the project's id, such as P0001")
    problem = name_problem(project)
    if problem:
        fail("project", f"{problem}, such as P0001")
    cohort = raw.get("cohort")
    if cohort not in catalogue["cohorts"]:
        fail("cohort", f"{cohort!r} is not a cohort ({', '.join(catalogue['cohorts'])})")
    period = raw.get("period")
    if not isinstance(period, int) or not 1990 <= period <= 2100:
        fail("period", "required: the collection year ending 31 March, such as 2024")
    datasets = raw.get("datasets") or {}
    if not isinstance(datasets, dict):
        fail("datasets", "must map each dataset to a list of fields")
    checked, generic = {}, []
    for name, fields in datasets.items():
        checked[name] = _checked_fields(name, fields, catalogue, fail)
        if name not in catalogue["datasets"]:
            generic.append(name)
    family_keys = raw.get("family_keys", False)
    if not isinstance(family_keys, bool):
        fail("family_keys", "must be true or false")
    return Request(project, cohort, period, checked, family_keys, raw, str(path),
                   generic)


def _shortened(text: str, most: int = 80) -> str:
    return text if len(text) <= most else f"{text[:most - 3]}..."


# A generic dataset's name becomes its file's name in the extract: a plain name, not one of the
# extract's own files.
GENERIC_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")
EXTRACT_FILES = {"persons", "sibling_groups", "adoptions", "adopters", "manifest", "tables"}


def _checked_fields(name, fields, catalogue: dict, fail) -> list[str]:
    if not isinstance(name, str) or not GENERIC_NAME.fullmatch(name) or name in EXTRACT_FILES:
        fail(f"datasets.{name}", f"unknown dataset ({', '.join(catalogue['datasets'])}, or a "
             "generic dataset's name)")
    if not isinstance(fields, list) or not all(isinstance(f, str) for f in fields):
        fail(f"datasets.{name}", "must be a list of field names")
    forbidden = {k.lower(): v for k, v in catalogue["forbidden"].items()}
    tokens = {t.lower() for t in linkage_schema()["tokens"]}
    # a generic dataset's fields are known only from its bundles (check_generic)
    known = catalogue["datasets"].get(name, {}).get("fields")
    for field_name in fields:
        if field_name.lower() in forbidden:
            fail(f"datasets.{name}.{field_name}", f"forbidden: {forbidden[field_name.lower()]}")
        if field_name.lower() in tokens or field_name.lower().endswith(("_bloom", "_token")):
            fail(f"datasets.{name}.{field_name}", "forbidden: a linkage token")
        if known is not None and field_name not in known:
            fail(f"datasets.{name}.{field_name}",
                 f"unknown field (known: {', '.join(known)})")
    return list(dict.fromkeys(fields))


def check_generic(request: Request, offered: dict[str, dict[str, str]],
                  catalogue: dict) -> None:
    """Check the request's generic datasets against those the bundles offer (dataset name ->
    field name -> kind, from their manifests). An unknown dataset or field is refused, and so
    is every field not of kind category, as an identifier: it never left its provider."""
    def fail(field_name: str, problem: str):
        raise RequestError(f"{request.path or 'the request'}: {field_name}: {problem}")

    for name in request.generic:
        if name not in offered:
            known = [*catalogue["datasets"], *sorted(offered)]
            fail(f"datasets.{name}", f"unknown dataset (known: {', '.join(known)}; a generic "
                 "dataset is known when one of the bundles given holds it)")
        kinds = offered[name]
        content = [f for f, kind in kinds.items() if kind == "category"]
        for field_name in request.datasets[name]:
            kind = kinds.get(field_name)
            if kind is not None and kind != "category":
                fail(f"datasets.{name}.{field_name}", f"forbidden: an identifier (a field of "
                     f"kind {kind} in the dataset's mapping; only categories are released)")
            if kind is None:
                fail(f"datasets.{name}.{field_name}",
                     f"unknown field (known: {', '.join(content)})")
