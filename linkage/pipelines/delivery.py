"""Hash a whole delivery: every provider source of a plan file, or of a folder laid out as
`linkage synth` writes one, each into its own signed bundle.

The folder layout is the one `linkage synth` writes and a TRE rehearsal mirrors:
``la_<code>/ssda903`` and ``la_<code>/cin`` per LA, ``dfe/school_census/<year>_pupils.csv``
(one bundle per census, as DfE sends them), ``<agency>/asg/asg_children.csv`` and
``asg_adopters.csv``, and any generic source as ``<provider>/generic/<name>/mapping.yaml``
beside its CSV or Parquet files (one bundle per file). A plan file (YAML,
:class:`linkage.config_models.DeliveryPlan`) names each entry's source, provider, files and
bundle instead, and may give each provider its own signing key.

Every entry is tried, so one run reports every problem; the bundles are moved into the output
folder only when every entry succeeded, so a delivery is never half written.
"""

import multiprocessing
import os
import re
import shutil
import tempfile
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, replace
from pathlib import Path

from linkage.bounded_yaml import YamlProblem, read_yaml
from linkage.config import site_folder, use_site_folder
from linkage.pseudonymise.bundle import BundleError, write_bundle
from linkage.pseudonymise.encryption import EncryptionError
from linkage.pseudonymise.keys import KeyError_
from linkage.pseudonymise.roles import ProviderKeys, provider_keys
from linkage.sources import read_source
from linkage.sources.files import read_csv_table
from linkage.sources.generic import load_mapping
from linkage.sources.schema import LA_SOURCES, SourceError, source_kind, source_name

# a generic file's period in the folder layout: its name's leading year (2024.csv)
LEADING_YEAR = re.compile(r"(\d{4})(?!\d)")
# what one entry may fail with and still be a message (anything else is an internal error)
ENTRY_ERRORS = (SourceError, BundleError, EncryptionError, KeyError_, OSError)


class DeliveryError(Exception):
    """The delivery cannot start (a bad plan, folder, output or key): the message names it."""


@dataclass(frozen=True)
class Entry:
    """One bundle to make: one provider's files of one source."""

    source: str                     # a source kind, as `linkage hash --source` takes it
    provider: str
    paths: tuple[Path, ...]
    bundle: str                     # the bundle's folder name under the output folder
    mapping: Path | None = None     # generic sources only
    period: int | None = None
    sign_key: Path | None = None    # this provider's own signing key, if the plan names one

    def describe(self) -> str:
        """How messages name the entry: its bundle, source and provider."""
        return f"{self.bundle} ({self.source}, provider {self.provider})"


@dataclass(frozen=True)
class KeyFiles:
    """Where a delivery's keys are; None: the environment variable (see linkage.pseudonymise.
    roles)."""

    key: Path | None = None
    sign_key: Path | None = None
    to_unit: Path | None = None
    to_custodian: Path | None = None

    def overridden_by(self, given: "KeyFiles") -> "KeyFiles":
        """These files, with each one ``given`` names (a command-line option) instead."""
        return replace(self, **{name: path for name, path in vars(given).items()
                                if path is not None})


@dataclass
class Outcome:
    """What became of one entry: its manifest, or the problem that stopped it."""

    entry: Entry
    manifest: dict | None = None
    problem: str | None = None

    @property
    def ok(self) -> bool:
        return self.problem is None

    def row(self) -> dict:
        """The entry's line of the summary (rows are None for a failed entry)."""
        rows = (self.manifest or {}).get("rows", {})
        return {"provider": self.entry.provider, "source": self.entry.source,
                "bundle": self.entry.bundle, "rows_in": rows.get("in"),
                "rows_out": rows.get("out"), "rejected": rows.get("rejected"),
                "flagged": rows.get("flagged"), "problem": self.problem}


Progress = Callable[[Outcome], None]


# ---------------------------------------------------------------- which entries

def provider_jobs(root: Path) -> list[tuple[str, str, list[Path], str]]:
    """(source kind, provider code, paths, bundle name) for every provider source found in a
    folder laid out as `linkage synth` writes ``providers/``."""
    jobs = []
    for la in sorted(root.glob("la_*")):
        for kind in (source_kind(name) for name in LA_SOURCES):
            if (la / kind).is_dir():
                jobs.append((kind, la.name[3:], [la / kind], f"{la.name}_{kind}"))
    for census in sorted(root.glob("dfe/school_census/*.csv")):
        jobs.append(("school-census", "DFE", [census], f"dfe_school_{census.stem[:4]}"))
    for asg in sorted(root.glob("*/asg")):
        code = _agency_code(asg)
        for kind in ("asg-children", "asg-adopters"):
            path = asg / f"{source_name(kind)}.csv"
            if path.is_file():
                jobs.append((kind, code, [path], f"{asg.parent.name}_{kind}"))
    return jobs


def generic_entries(root: Path) -> list["Entry"]:
    """The generic sources of a folder in the `linkage synth` layout: each
    ``<provider>/generic/<name>/mapping.yaml`` with the CSV and Parquet files beside it, one
    entry per file, bundle ``<provider>_<name>_<file stem>``. The provider is the mapping's,
    else the folder's name in capitals; the period is the file name's leading year
    (``2024.csv``, ``2024_results.csv``), else the mapping's."""
    entries = []
    for mapping in sorted(root.glob("*/generic/*/mapping.yaml")):
        spec = load_mapping(mapping)
        folder, name = mapping.parent.parent.parent.name, mapping.parent.name
        provider = str(spec.get("provider") or folder.upper())
        for data in sorted(mapping.parent.iterdir()):
            if data.is_file() and data.suffix.lower() in (".csv", ".parquet"):
                year = LEADING_YEAR.match(data.stem)
                entries.append(Entry("generic", provider, (data,),
                                     f"{folder}_{name}_{data.stem}", mapping,
                                     int(year.group(1)) if year else None))
    return entries


def _agency_code(asg: Path) -> str:
    """The agency code the ASG files carry (children's file first; an agency may have
    adopters and no child this period), else the folder's name."""
    for name in ("asg_children.csv", "asg_adopters.csv"):
        if (asg / name).is_file():
            agency = read_csv_table(asg / name).get("agency_code")
            if agency is not None and len(agency):
                return str(agency.iloc[0])
    return asg.parent.name.upper()


def folder_entries(folder: Path) -> list[Entry]:
    """The entries of a folder in the `linkage synth` layout: a world, or its providers/."""
    root = folder / "providers" if (folder / "providers").is_dir() else folder
    try:
        jobs = provider_jobs(root)
        generic = generic_entries(root)
    except SourceError as problem:  # an ASG file or a mapping that cannot be read
        raise DeliveryError(str(problem)) from None
    if not jobs and not generic:
        raise DeliveryError(f"{folder}: holds no provider's files in the folder layout "
                            "(la_<code>/ssda903, la_<code>/cin, dfe/school_census/*.csv, "
                            "<agency>/asg/*.csv, <provider>/generic/<name>/mapping.yaml); "
                            "give a plan file instead")
    entries = [Entry(kind, code, tuple(paths), name) for kind, code, paths, name in jobs]
    entries += generic
    first: dict[str, Entry] = {}
    for entry in entries:
        if entry.bundle in first:  # two censuses of one year: 2024_pupils.csv, 2024_extra.csv
            raise DeliveryError(f"{entry.paths[0]}: would make bundle {entry.bundle}, as "
                                f"{first[entry.bundle].paths[0]} does; give a plan file that "
                                "names each bundle")
        first[entry.bundle] = entry
    return entries


def read_plan_yaml(path: Path) -> object:
    """The plan file's YAML, parsed within the bounds every YAML file has (size, depth,
    aliases; ``bounded_yaml``)."""
    try:
        return read_yaml(path)
    except YamlProblem as problem:
        raise DeliveryError(f"{path}: {problem}") from None


def plan_entries(path: Path) -> tuple[list[Entry], KeyFiles]:
    """The entries and key files of a plan file. Relative paths in it are read from the plan
    file's own folder, so a plan works from wherever it is run."""
    from pydantic import ValidationError

    from linkage.config_models import DeliveryPlan, describe_errors

    raw = read_plan_yaml(path)
    if not isinstance(raw, dict):
        raise DeliveryError(f"{path}: must be a mapping with an entries list (see "
                            "docs/providers.md)")
    try:
        plan = DeliveryPlan.model_validate(raw)
    except ValidationError as problem:
        raise DeliveryError(f"{path}: {describe_errors(problem, DeliveryPlan)}") from None
    base = path.parent

    def where(text: str | None) -> Path | None:
        return None if text is None else base / Path(text).expanduser()

    entries = [Entry(e.source, e.provider, tuple(where(p) for p in e.inputs), e.bundle,
                     where(e.mapping), e.period, where(plan.sign_keys.get(e.provider)))
               for e in plan.entries]
    return entries, KeyFiles(where(plan.key), where(plan.sign_key), where(plan.to_unit),
                             where(plan.to_custodian))


def delivery_entries(path: Path) -> tuple[list[Entry], KeyFiles]:
    """The entries of a delivery given as a plan file or as a folder (keys: none named)."""
    if path.is_dir():
        return folder_entries(path), KeyFiles()
    if path.is_file():
        return plan_entries(path)
    raise DeliveryError(f"{path}: no such plan file or folder")


# ---------------------------------------------------------------- keys

def delivery_keys(entries: list[Entry], files: KeyFiles) -> dict[str, ProviderKeys]:
    """Each entry's keys, by bundle name; every key is loaded before any work starts, and
    every key problem is reported together."""
    by_signing_key: dict[Path | None, ProviderKeys] = {}
    problems: dict[str, list[str]] = {}  # each problem once, with the providers it stops
    for entry in entries:
        signing = entry.sign_key or files.sign_key
        if signing in by_signing_key:
            continue
        try:
            by_signing_key[signing] = provider_keys(files.key, signing, files.to_unit,
                                                    files.to_custodian)
        except (KeyError_, EncryptionError) as problem:
            stopped = problems.setdefault(str(problem), [])
            if entry.provider not in stopped:
                stopped.append(entry.provider)
    if problems:
        raise DeliveryError("; ".join(f"{problem} (for provider {', '.join(providers)})"
                                      for problem, providers in problems.items()))
    return {entry.bundle: by_signing_key[entry.sign_key or files.sign_key]
            for entry in entries}


# ---------------------------------------------------------------- hashing

# one entry's work: the entry, its keys, the output folder, the staging folder its bundle is
# made in, and the site config folder (a worker process starts without the parent's state)
Work = tuple[Entry, ProviderKeys, Path, Path, Path | None]


def hash_delivery(entries: list[Entry], keys: dict[str, ProviderKeys], out: Path,
                  workers: int = 2, progress: Progress = lambda _: None) -> list[Outcome]:
    """Hash every entry into its bundle under ``out``; the outcomes, in entry order.

    Every entry is tried even when one fails, so one run reports every problem. The bundles
    are made in a hidden folder beside ``out`` and moved into ``out`` only when every entry
    succeeded: otherwise nothing is written. With ``workers`` > 1 entries are hashed side by
    side in worker processes, largest files first; each bundle is the same as when hashed
    alone. ``progress`` hears of each outcome as it comes.
    """
    if out.exists() and not out.is_dir():
        raise DeliveryError(f"{out}: exists and is not a folder")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{out.name}-delivery-", dir=out.parent))
    except OSError as problem:
        raise DeliveryError(f"{out}: cannot be written ({problem.strerror})") from None
    try:
        work = [(entry, keys[entry.bundle], out, staging, site_folder()) for entry in entries]
        outcomes = _run_all(work, workers, progress)
        if all(outcome.ok for outcome in outcomes):
            _move_into(staging, out, [entry.bundle for entry in entries])
        return outcomes
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _move_into(staging: Path, out: Path, bundles: list[str]) -> None:
    """Move the finished bundles into ``out``; each move is one rename on the same disk."""
    try:
        out.mkdir(exist_ok=True)
        for name in bundles:
            (staging / name).rename(out / name)
    except OSError as problem:
        moved = [name for name in bundles if (out / name).exists()]
        raise DeliveryError(f"{out}: cannot be written ({problem.strerror}); bundles moved "
                            f"there before it: {', '.join(moved) or 'none'}") from None


def _run_all(work: list[Work], workers: int, progress: Progress) -> list[Outcome]:
    outcomes: dict[int, Outcome] = {}
    if workers <= 1 or len(work) < 2:
        for index, one in enumerate(work):
            outcomes[index] = _hash_entry(one)
            progress(outcomes[index])
        return [outcomes[i] for i in range(len(work))]
    largest_first = sorted(range(len(work)), key=lambda i: -_size(work[i][0].paths))
    # workers start from a fresh server process, never forked from this one: a fork of a
    # process whose DuckDB or Arrow threads hold locks can crash (seen in a test run)
    context = multiprocessing.get_context("forkserver")
    with ProcessPoolExecutor(workers, mp_context=context) as pool:
        futures = {pool.submit(_hash_entry, work[i]): i for i in largest_first}
        try:
            for done in as_completed(futures):
                outcomes[futures[done]] = done.result()
                progress(outcomes[futures[done]])
        except BaseException:
            pool.shutdown(cancel_futures=True)
            raise
    return [outcomes[i] for i in range(len(work))]


def _hash_entry(work: Work) -> Outcome:
    """Read and hash one entry into the staging folder; a problem becomes its outcome."""
    entry, keys, out, staging, site = work
    if site != site_folder():  # a worker process: the parent's site config
        use_site_folder(site)
    if (out / entry.bundle).exists():
        return Outcome(entry, problem=f"{out / entry.bundle}: exists already; a bundle is "
                                      "never overwritten (choose another --out)")
    try:
        data = read_source(entry.source, list(entry.paths), entry.mapping, entry.provider,
                           entry.period)
        written = write_bundle(data, keys, staging / entry.bundle, workers=1)
    except ENTRY_ERRORS as problem:
        return Outcome(entry, problem=_message(problem))
    except Exception as problem:
        if os.environ.get("LINKAGE_DEBUG") == "1":
            raise
        # no traceback and no value: the kind of error names it for a report
        return Outcome(entry, problem=f"internal error ({type(problem).__name__}); rerun "
                                      "with LINKAGE_DEBUG=1 for details and report it")
    return Outcome(entry, manifest=written.manifest)


def _message(problem: Exception) -> str:
    # an OSError's own text may quote a path and a number; say it as the other messages do
    if isinstance(problem, OSError):
        return f"{problem.filename or 'a file'}: cannot be read or written ({problem.strerror})"
    return str(problem)


def _size(paths: tuple[Path, ...]) -> int:
    return sum(f.stat().st_size for p in paths if p.exists()
               for f in ([p] if p.is_file() else p.rglob("*")) if f.is_file())


def hash_providers(root: Path, out: Path, keys: ProviderKeys, workers: int = 2,
                   progress: Callable[[str], None] = lambda _: None) -> list[Path]:
    """Every provider source of a synthetic world's folder, hashed with one set of keys (a
    rehearsal: demo and benchmarks); the bundles' paths, in entry order. Raises
    :class:`DeliveryError` naming the first entry that failed."""
    entries = folder_entries(root)
    outcomes = hash_delivery(entries, {entry.bundle: keys for entry in entries}, out, workers,
                             lambda outcome: progress(f"hashed {outcome.entry.bundle}"))
    for outcome in outcomes:
        if not outcome.ok:
            raise DeliveryError(f"{outcome.entry.describe()}: {outcome.problem}")
    return [out / outcome.entry.bundle for outcome in outcomes]

