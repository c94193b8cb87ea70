"""Hash a folder of providers' files, each provider's sources into its own bundles.

The layout is the one `linkage synth` writes and a TRE rehearsal mirrors: ``la_<code>/ssda903``
and ``la_<code>/cin`` per LA, ``dfe/school_census/<year>_pupils.csv`` (one bundle per census,
as DfE sends them), and ``<agency>/asg/asg_children.csv`` and ``asg_adopters.csv``.
"""

import multiprocessing
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

from linkage.pseudonymise.bundle import write_bundle
from linkage.pseudonymise.roles import ProviderKeys
from linkage.sources import read_source
from linkage.sources.files import read_csv_table
from linkage.sources.schema import LA_SOURCES, source_kind, source_name

Progress = Callable[[str], None]


def provider_jobs(root: Path) -> list[tuple[str, str, list[Path], str]]:
    """(source kind, provider code, paths, bundle name) for every provider source found."""
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


def _agency_code(asg: Path) -> str:
    """The agency code the ASG files carry (children's file first; an agency may have
    adopters and no child this period), else the folder's name."""
    for name in ("asg_children.csv", "asg_adopters.csv"):
        if (asg / name).is_file():
            agency = read_csv_table(asg / name).get("agency_code")
            if agency is not None and len(agency):
                return str(agency.iloc[0])
    return asg.parent.name.upper()


_KEYS: ProviderKeys | None = None  # what forked workers inherit (keys cannot be pickled)


def hash_providers(root: Path, out: Path, keys: ProviderKeys, workers: int = 2,
                   progress: Progress = lambda _: None) -> list[Path]:
    """One bundle per provider source under ``out``; returns their paths, in job order.
    ``progress`` hears of each bundle as it is written.

    With ``workers`` > 1 the providers are hashed side by side in forked processes, largest
    files first, as they would be at their own sites; each bundle is the same as when hashed
    alone."""
    global _KEYS
    out.mkdir(parents=True, exist_ok=True)
    jobs = provider_jobs(root)
    _KEYS = keys
    try:
        if workers <= 1 or len(jobs) < 2:
            bundles = []
            for job in jobs:
                bundles.append(_hash_one(job, out))
                progress(f"hashed {job[3]}")
            return bundles
        return _hash_side_by_side(jobs, out, workers, progress)
    finally:
        _KEYS = None


def _hash_side_by_side(jobs: list, out: Path, workers: int, progress: Progress) -> list[Path]:
    largest_first = sorted(range(len(jobs)), key=lambda i: -_size(jobs[i][2]))
    context = multiprocessing.get_context("fork")
    with ProcessPoolExecutor(workers, mp_context=context) as pool:
        futures = {pool.submit(_hash_one, jobs[i], out): i for i in largest_first}
        try:
            for done in as_completed(futures):
                done.result()  # a provider's bad file stops the rest
                progress(f"hashed {jobs[futures[done]][3]}")
        except BaseException:
            pool.shutdown(cancel_futures=True)
            raise
        paths = {futures[f]: f.result() for f in futures}
    return [paths[i] for i in range(len(jobs))]


def _hash_one(job: tuple[str, str, list[Path], str], out: Path) -> Path:
    kind, code, paths, name = job
    data = read_source(kind, paths, provider=code)
    return write_bundle(data, _KEYS, out / name, workers=1).path


def _size(paths: list[Path]) -> int:
    return sum(f.stat().st_size for p in paths
               for f in ([p] if p.is_file() else p.rglob("*")) if f.is_file())
